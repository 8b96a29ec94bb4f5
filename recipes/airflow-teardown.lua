-- recipes/airflow-teardown.lua: undo recipes/airflow-quickstart.lua, as the
-- quick start's "Cleaning up" section does by hand:
--   docker compose down --volumes --remove-orphans     (-e purge=true: --rmi all)
--   rm -rf airflow
-- `provision teardown recipes/airflow-quickstart.lua` does the same. The
-- volumes go as Compose created them (by label), not by name: a volume that
-- was there before under the same name is kept (see compose.down).
-- The same for every release the quick start runs (2.1.x, later 2.x, 3.x):
-- the compose file in the folder says which services there are, and .env
-- still names the "flower" profile when -e flower=true started Flower, so
-- `down` takes it too (tests/e2e/airflow_quickstart_293.sh checks it).
recipe {
  name = "airflow-teardown",
  description = "Take the Airflow quick start stack down and remove its folder",
}

local v = vars {
  dir = "./airflow",   -- the quick start's project folder
  purge = false,       -- also remove the images the stack used (--rmi all)
}

check "docker engine" {
  describe = "a Docker engine answers",
  check = function()
    local ok, err = docker.ping()
    if ok then return true end
    return false, ("no Docker engine: run provision recipes/docker-host.lua (%s)"):format(err)
  end,
}

step "stack down" {
  compose.down { project_dir = v.dir, volumes = true, remove_orphans = true, rmi = v.purge and "all" or false },
}

step "project folder removed" { fs.absent(v.dir) }
