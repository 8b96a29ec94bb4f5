# tests/e2e/airflow_quickstart_320.sh: recipes/airflow-quickstart.lua end to
# end for Airflow 3.2.0 (airflow-apiserver, a dag-processor,
# /api/v2/monitor/health, the token flow of POST /auth/token then
# /api/v2/pools with a bearer token, Flower behind the profile "flower", the
# later airflow.sh), offline: the REAL 3.2.0 compose file against the
# stand-in images (tests/fixtures/airflow-standins/). The steps are in
# airflow_quickstart_e2e (tests/fixtures/airflow-standins/lib.sh); this one
# ends with `provision teardown -e purge=true` (the 3.2.0 images go too).
# compose-matrix
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/airflow-standins/lib.sh"

airflow_quickstart_e2e 3.2.0 7 purge
