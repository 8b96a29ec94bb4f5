# tests/e2e/airflow_quickstart_293.sh: recipes/airflow-quickstart.lua end to
# end for Airflow 2.9.3 (a late 2.x: airflow-webserver, /health with a
# triggerer, /api/v1/pools with basic auth, Flower behind the profile
# "flower", the later airflow.sh), offline: the REAL 2.9.3 compose file
# against the stand-in images (tests/fixtures/airflow-standins/). The steps
# are in airflow_quickstart_e2e (tests/fixtures/airflow-standins/lib.sh);
# this one ends with recipes/airflow-teardown.lua.
# Compose v2 only: v1 runs the oldest and the newest release's file
# (airflow_quickstart.sh, airflow_quickstart_320.sh: their compose-matrix
# lines), and this one's second pass was two of CI's minutes.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/airflow-standins/lib.sh"

airflow_quickstart_e2e 2.9.3 6 recipe
