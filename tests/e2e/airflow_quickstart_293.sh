# tests/e2e/airflow_quickstart_293.sh: recipes/airflow-quickstart.lua end to
# end for Airflow 2.9.3 (a late 2.x: airflow-webserver, /health with a
# triggerer, /api/v1/pools with basic auth, Flower behind the profile
# "flower", the later airflow.sh), offline: the REAL 2.9.3 compose file
# against the stand-in images (tests/fixtures/airflow-standins/). The steps
# are in airflow_quickstart_e2e (tests/fixtures/airflow-standins/lib.sh);
# this one ends with recipes/airflow-teardown.lua.
# compose-matrix
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/airflow-standins/lib.sh"

airflow_quickstart_e2e 2.9.3 6 recipe
