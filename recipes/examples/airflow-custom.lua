-- recipes/examples/airflow-custom.lua: customizing the quick start in Lua.
--
--   provision recipes/examples/airflow-custom.lua
--   provision teardown recipes/examples/airflow-custom.lua
--
-- It includes recipes/airflow-quickstart.lua and
--   1. pins another Airflow release (2.9.3) and its own project folder;
--   2. turns the example DAGs off: the downloaded compose file is kept as
--      docker-compose.upstream.yaml and docker-compose.yaml is written from
--      it with AIRFLOW__CORE__LOAD_EXAMPLES set to 'false' in every service
--      (yaml.load / yaml.dump: anchors and "<<" merges come out expanded);
--   3. adds a DAG file of its own to dags/;
--   4. drops the Flower check: from 2.2 on, Flower is behind the compose
--      profile "flower" and does not start by default.
-- Every variable of the quick start still works with -e (dir, docs_base, ...).
include("../airflow-quickstart.lua", { version = "2.9.3", dir = "./airflow-custom" })

recipe {
  name = "airflow-custom",
  description = "The Airflow quick start, pinned to 2.9.3, without the example DAGs, with a DAG of our own",
}

local v = vars { dir = "", docs_base = "", version = "" }   -- the included recipe's values
local upstream = v.dir .. "/docker-compose.upstream.yaml"
local compose_file = v.dir .. "/docker-compose.yaml"

replace_step "compose file" {
  http.file { url = v.docs_base .. "/" .. v.version .. "/docker-compose.yaml", dest = upstream },
}

-- the compose file we want: upstream's, with the example DAGs off
local function without_examples()
  local text, err = fs.read(upstream)
  if not text then return nil, err end
  local doc, yerr = yaml.load(text, upstream)
  if not doc then return nil, yerr end
  local n = 0
  for _, service in pairs(doc.services or {}) do
    local env = service.environment
    if type(env) == "table" and env.AIRFLOW__CORE__LOAD_EXAMPLES ~= nil then
      env.AIRFLOW__CORE__LOAD_EXAMPLES = "false"
      n = n + 1
    end
  end
  if n == 0 then return nil, upstream .. ": no service sets AIRFLOW__CORE__LOAD_EXAMPLES" end
  doc["x-airflow-common"] = nil   -- merged into the services already
  return "# written by recipes/examples/airflow-custom.lua from docker-compose.upstream.yaml\n" ..
    "# (AIRFLOW__CORE__LOAD_EXAMPLES: 'false')\n" .. yaml.dump(doc)
end

step "no example DAGs" {
  after = "compose file",
  describe = compose_file .. " without the example DAGs",
  check = function()
    local want, err = without_examples()
    if not want then return nil, err end
    if fs.read(compose_file) == want then return true end
    return false, "write " .. compose_file .. " with AIRFLOW__CORE__LOAD_EXAMPLES: 'false'"
  end,
  apply = function()
    local want, err = without_examples()
    if not want then return nil, err end
    return fs.write(compose_file, want, "0644")
  end,
}

step "hello DAG" {
  after = "mounted folders",
  fs.file {
    path = v.dir .. "/dags/hello.py",
    mode = "0644",
    content = [[
# Added by recipes/examples/airflow-custom.lua.
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("hello", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    BashOperator(task_id="hello", bash_command="echo hello from provision")
]],
  },
}

remove_step "Flower"
