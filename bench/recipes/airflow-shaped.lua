-- bench/recipes/airflow-shaped.lua: the Airflow quick start's shape without
-- Airflow: a folder, the compose file downloaded with a checksum, dags/,
-- logs/, plugins/, .env, the stack up and healthy. bench/noop_vs_ansible.sh
-- times its no-op re-run against bench/recipes/airflow-shaped.sh and
-- bench/ansible/airflow-shaped.yml, which do the same.
recipe { name = "airflow-shaped", description = "folder, compose file, three folders, .env, a running stack" }

local v = vars {
  dir = "./airflow",
  url = "http://127.0.0.1:8000/static/docker-compose.yaml",
  sha256 = "",
  image = "provision-bench/busybox:1",
  project = "airflowbench",
}

check "docker engine" { docker.engine { min_version = "20.10" } }
step "project directory" { fs.directory(v.dir) }
step "compose file" { http.file { url = v.url, dest = v.dir .. "/docker-compose.yaml", sha256 = v.sha256 } }
step "mounted folders" { fs.directory { v.dir .. "/dags", v.dir .. "/logs", v.dir .. "/plugins" } }
step "environment" { fs.env_file { path = v.dir .. "/.env",
  values = { AIRFLOW_UID = 0, AIRFLOW_GID = 0, STACK_IMAGE = v.image } } }
step "start" { compose.up { project_dir = v.dir, project = v.project, wait = "healthy" } }

teardown {
  compose.down { project_dir = v.dir, project = v.project, volumes = true, remove_orphans = true },
  fs.absent(v.dir),
}
