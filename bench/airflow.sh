#!/bin/sh
# bench/airflow.sh: the cost of a no-op re-run of recipes/airflow-quickstart.lua
# with the stack up (every check in-process: stat, hashes, the Engine API,
# three HTTP checks), and of `plan`; medians of RUNS runs. Offline: the real
# 2.1.3 compose file from a local server and the stand-in images
# (tests/fixtures/airflow-standins). Needs Docker, ports 8080/5555/6379.
#   sh bench/airflow.sh            RUNS=20 sh bench/airflow.sh
# DOCS_BASE=http://... serves another copy of the compose file instead.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=${PROVISION:-$ROOT/provision}
RUNS=${RUNS:-15}
work=$(mktemp -d /tmp/provision-bench-airflow.XXXXXX)
export PROVISION_STATE_DIR=$work/.provision NO_COLOR=1
DIR=$work/airflow-bench
server=""
cleanup() {
    "$P" teardown recipes/airflow-quickstart.lua -e dir="$DIR" -e docs_base="${DOCS_BASE:-http://127.0.0.1:1}" -q > /dev/null 2>&1 || true
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
sh tests/fixtures/airflow-standins/build.sh > /dev/null
if [ -z "${DOCS_BASE:-}" ]; then
    mkdir -p "$work/www/docs/apache-airflow/2.1.3"
    cp tests/fixtures/airflow/docker-compose-2.1.3.yaml "$work/www/docs/apache-airflow/2.1.3/docker-compose.yaml"
    python3 tests/servers/httpd.py --root "$work/www" > "$work/port" 2>/dev/null &
    server=$!
    i=0; while [ ! -s "$work/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    DOCS_BASE=http://127.0.0.1:$(cat "$work/port")/static/docs/apache-airflow
fi
V="-e dir=$DIR -e docs_base=$DOCS_BASE"

t0=$(date +%s%N)
"$P" recipes/airflow-quickstart.lua $V -q > "$work/apply.log" 2>&1 || { cat "$work/apply.log"; exit 1; }
first=$(( ($(date +%s%N) - t0) / 1000000 ))

median() { # VERB...: median wall time in ms of RUNS runs
    i=0; : > "$work/times"
    while [ $i -lt "$RUNS" ]; do
        t0=$(date +%s%N)
        "$P" "$@" $V -q > /dev/null 2>&1 || { echo "run failed: $*" >&2; exit 1; }
        echo $(( ($(date +%s%N) - t0) / 1000 )) >> "$work/times"
        i=$((i + 1))
    done
    sort -n "$work/times" | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f ms (min %.1f, max %.1f)\n", m / 1000, a[1] / 1000, a[NR] / 1000 }'
}
echo "first apply (init + up + healthy + checks): $first ms"
echo "no-op re-run, stack up, median of $RUNS: $(median apply recipes/airflow-quickstart.lua)"
echo "plan, stack up, median of $RUNS:         $(median plan recipes/airflow-quickstart.lua)"
t0=$(date +%s%N)
"$P" recipes/airflow-teardown.lua -e dir="$DIR" -q > /dev/null 2>&1
echo "teardown recipe (down --volumes, folder): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
