#!/bin/sh
# bench/airflow.sh: the Airflow quick start on the stand-in images
# (tests/fixtures/airflow-standins; offline: the real compose file of
# VERSION served from a local HTTP server), with the Compose provision finds
# (PROVISION_COMPOSE=docker-compose for v1):
#   1. start to healthy BY HAND, the quick start's own commands: folders,
#      the compose file, .env, `compose up airflow-init`, `compose up -d`,
#      then wait until every container's healthcheck says healthy (polled
#      every 0.2 s, as provision polls the engine) -- then `down --volumes`;
#   2. the same with provision (its apply also runs the recipe's endpoint
#      checks: health JSON, the REST API with that release's auth);
#   3. the no-op re-run, stack up: median of RUNS, and the processes it
#      starts (strace -f: execve calls after provision's own);
#   4. plan, stack up (median); 5. teardown.
#   sh bench/airflow.sh                        2.1.3, RUNS=15
#   VERSION=3.2.0 sh bench/airflow.sh          PROVISION_COMPOSE=docker-compose VERSION=3.2.0 sh bench/airflow.sh
#   BASE=/path/to/older/provision VERSION=3.2.0 sh bench/airflow.sh
#                                              also that binary's no-op, alternating with
#                                              this one's on the same stack (before/after);
#                                              it runs its own tree's recipe when it is in
#                                              one (BASE_RECIPE= another)
# Needs Docker and ports 8080/5555 free. DOCS_BASE=http://... serves another
# copy of the compose file instead.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=${PROVISION:-$ROOT/provision}
RUNS=${RUNS:-15}
VERSION=${VERSION:-2.1.3}
work=$(mktemp -d /tmp/provision-bench-airflow.XXXXXX)
export PROVISION_STATE_DIR=$work/.provision NO_COLOR=1
DIR=$work/airflow-bench
HAND=$work/airflow-hand
if [ -n "${PROVISION_COMPOSE:-}" ]; then COMPOSE=$PROVISION_COMPOSE
elif docker compose version > /dev/null 2>&1; then COMPOSE="docker compose"
else COMPOSE=docker-compose; fi
server=""
cleanup() {
    [ -d "$HAND" ] && (cd "$HAND" && $COMPOSE down --volumes --remove-orphans > /dev/null 2>&1) || true
    "$P" teardown recipes/airflow-quickstart.lua $V -q > /dev/null 2>&1 || true
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$work"
}
V="-e dir=$DIR -e version=$VERSION -e docs_base=${DOCS_BASE:-http://127.0.0.1:1}"
if [ -n "${BASE:-}" ] && [ -z "${BASE_RECIPE:-}" ]; then
    BASE_RECIPE=recipes/airflow-quickstart.lua
    [ -f "$(dirname "$BASE")/recipes/airflow-quickstart.lua" ] && BASE_RECIPE=$(dirname "$BASE")/recipes/airflow-quickstart.lua
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
sh tests/fixtures/airflow-standins/build.sh "$VERSION" > /dev/null
if [ -z "${DOCS_BASE:-}" ]; then
    mkdir -p "$work/www/docs/apache-airflow/$VERSION"
    cp "tests/fixtures/airflow/docker-compose-$VERSION.yaml" "$work/www/docs/apache-airflow/$VERSION/docker-compose.yaml"
    python3 tests/servers/httpd.py --root "$work/www" > "$work/port" 2>/dev/null &
    server=$!
    i=0; while [ ! -s "$work/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    DOCS_BASE=http://127.0.0.1:$(cat "$work/port")/static/docs/apache-airflow
fi
V="-e dir=$DIR -e version=$VERSION -e docs_base=$DOCS_BASE"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# 1. by hand
t0=$(date +%s%N)
mkdir -p "$HAND/dags" "$HAND/logs" "$HAND/plugins"
curl -sfo "$HAND/docker-compose.yaml" "$DOCS_BASE/$VERSION/docker-compose.yaml"
printf 'AIRFLOW_UID=%s\nAIRFLOW_GID=0\n' "$(id -u)" > "$HAND/.env"
(cd "$HAND" && $COMPOSE up airflow-init > "$work/hand.log" 2>&1) || { cat "$work/hand.log"; exit 1; }
(cd "$HAND" && $COMPOSE up -d >> "$work/hand.log" 2>&1) || { cat "$work/hand.log"; exit 1; }
project=$(basename "$HAND")
while :; do
    states=$(docker ps -q --filter "label=com.docker.compose.project=$project" \
        | xargs docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}')
    case "$states" in *starting* | *unhealthy*) sleep 0.2 ;; *) break ;; esac
done
hand=$(ms "$t0")
(cd "$HAND" && $COMPOSE down --volumes --remove-orphans > /dev/null 2>&1)

# 2. provision
t0=$(date +%s%N)
"$P" recipes/airflow-quickstart.lua $V -q > "$work/apply.log" 2>&1 || { cat "$work/apply.log"; exit 1; }
first=$(ms "$t0")

# q WORD: WORD quoted for bench/alternate.py, which splits its commands by
# the shell's rules (shlex): a path with a space or a quote stays one word
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\"'\"'/g")"; }
median() { # VERB...: median wall time in ms of RUNS runs, each spawned and timed
    # by bench/alternate.py (no shell and no date(1) around it: each of those
    # is a fork and an exec, 2-3 ms here, that the run would be charged with)
    python3 bench/alternate.py "$RUNS" "$(q "$P") $* $V -q" | sed -n 's/.*median \([0-9.]*\) ms  min \([0-9.]*\) ms/\1 ms (min \2)/p'
}
echo "Airflow $VERSION, $COMPOSE $($COMPOSE version --short 2>/dev/null || true), engine $(docker version --format '{{.Server.Version}}')"
echo "start to healthy by hand (init, up -d, healthchecks):       $hand ms"
echo "provision first apply (the same, plus the endpoint checks): $first ms ($(awk -v a="$first" -v b="$hand" 'BEGIN { printf "%.2f", a / b }')x by hand)"
echo "no-op re-run, stack up, median of $RUNS: $(median apply recipes/airflow-quickstart.lua)"
strace -f -qq -e trace=execve,open,openat -o "$work/strace" "$P" recipes/airflow-quickstart.lua $V -q > /dev/null 2>&1
echo "processes the no-op starts: $(( $(grep -c 'execve(' "$work/strace") - 1 )); libcurl opened: $(grep -E 'open(at)?\(.*libcurl[^"]*\.so' "$work/strace" | grep -vc ENOENT)"
# where a no-op's time goes: the endpoint checks wait on the stand-ins'
# HTTP (tests/fixtures/airflow-standins/src/standin.c: a few ms), the rest
# is provision's own
# split N OUT: the runs of command N that bench/alternate.py kept in
# $work/alt; one "total-without-checks checks total" line (us) a run to OUT
split() {
    : > "$2"
    awk -v n="$1" '$1 == n { print $2, $3 }' "$work/alt/times" | while read -r round total; do
        http=$(grep '"event":"step"' "$work/alt/$1.$round" | grep -E '"name":"(web server health|REST API|Flower)"' \
            | sed -n 's/.*"ms":\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s * 1000 + 0 }')
        total=$(awk -v t="$total" 'BEGIN { printf "%d", t * 1000 }')
        echo "$(( total - http )) $http $total" >> "$2"
    done
}
mkdir -p "$work/alt"
if [ -n "${BASE:-}" ]; then   # the base's recipe file owns a copy of the state (the stack is the same)
    base_file=$(cd "$(dirname "$BASE_RECIPE")" && pwd)/$(basename "$BASE_RECIPE")
    cp -a "$PROVISION_STATE_DIR" "$work/.provision-base"
    sed -i "s|\"recipe_file\":\"$ROOT/recipes/airflow-quickstart.lua\"|\"recipe_file\":\"$base_file\"|" \
        "$work/.provision-base/airflow-quickstart.json"
    ALT_OUT=$work/alt python3 bench/alternate.py "$RUNS" "$(q "$P") recipes/airflow-quickstart.lua $V --json" \
        "PROVISION_STATE_DIR=$(q "$work/.provision-base") $(q "$BASE") $(q "$BASE_RECIPE") $V --json" > /dev/null
    split 2 "$work/split.base"
else
    ALT_OUT=$work/alt python3 bench/alternate.py "$RUNS" "$(q "$P") recipes/airflow-quickstart.lua $V --json" > /dev/null
fi
split 1 "$work/split"
sort -n "$work/split" | awk '{ a[NR] = $1; h[NR] = $2 } END { m = (NR + 1) / 2; m = int(m); printf "no-op without the endpoint checks, median of %d: %.1f ms (the checks: %.1f ms waiting on the stand-ins)\n", NR, a[m] / 1000, h[m] / 1000 }'
if [ -n "${BASE:-}" ]; then
    for f in split split.base; do
        printf '  %-4s ' "$([ $f = split ] && echo this || echo base)"
        sort -k3,3n "$work/$f" | awk '{ t[NR] = $3 } END { m = int((NR + 1) / 2); printf "no-op %.1f ms (min %.1f), ", t[m] / 1000, t[1] / 1000 }'
        sort -n "$work/$f" | awk '{ a[NR] = $1; h[NR] = $2 } END { m = int((NR + 1) / 2); printf "without the checks %.1f ms (min %.1f), the checks %.1f ms\n", a[m] / 1000, a[1] / 1000, h[m] / 1000 }'
    done
    echo "  (alternating, $RUNS runs each: base $BASE)"
fi
echo "plan, stack up, median of $RUNS:         $(median plan recipes/airflow-quickstart.lua)"
t0=$(date +%s%N)
"$P" recipes/airflow-teardown.lua -e dir="$DIR" -q > /dev/null 2>&1
echo "teardown recipe (down --volumes, folder): $(ms "$t0") ms"
