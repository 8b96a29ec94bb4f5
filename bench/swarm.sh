#!/bin/sh
# bench/swarm.sh: Airflow on a two-node Docker Swarm (issue 17), on the
# stand-in images (tests/fixtures/airflow-standins) and the real two-node
# fixture (tests/fixtures/swarm/node.sh: this engine plus a second dockerd
# in a network namespace); offline, the compose file of VERSION served from
# a local HTTP server. No IPVS here: dnsrr and host-mode ports.
#   1. BY HAND: the swarm compose file recipes/airflow-swarm.lua writes,
#      deployed with `docker stack deploy` (.env exported first: stack deploy
#      does not read it), then polled every 0.25 s until every service has
#      its replicas running (healthy where it has a healthcheck) and the
#      init job completed -- the health provision waits for; `stack rm`.
#   2. provision recipes/airflow-swarm.lua on the same swarm: folders, the
#      compose file, .env, the swarm file, then stack.deployed (depends_on
#      honoured: init completes before the rest is created), then the
#      quick start's endpoint checks.
#   3. the no-op re-run, stack up: median of RUNS, and the processes it
#      starts (strace -f: execve calls after provision's own).
#   4. teardown.
#   sh bench/swarm.sh            VERSION=3.2.0 sh bench/swarm.sh       (RUNS=15)
# Needs root, Docker, and ports 8080/5555 free.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=${PROVISION:-$ROOT/provision}
RUNS=${RUNS:-15}
VERSION=${VERSION:-2.1.3}
NODE="$ROOT/tests/fixtures/swarm/node.sh"
work=$(mktemp -d /tmp/pvbs.XXXXXX)   # short: node 2's socket lives in it
export PROVISION_STATE_DIR=$work/.provision NO_COLOR=1
DIR=$work/airflow
HAND=$work/hand
STACK=airflow-hand
server=""
[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = inactive ] \
    || { echo "bench/swarm.sh: this engine is in a swarm already; not touching it" >&2; exit 1; }
cleanup() {
    docker stack rm "$STACK" > /dev/null 2>&1 || true
    [ -n "${V:-}" ] && "$P" teardown recipes/airflow-swarm.lua $V -q > /dev/null 2>&1 || true
    [ -n "$server" ] && kill "$server" 2>/dev/null
    sh "$NODE" stop "$work/node" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

sh tests/fixtures/airflow-standins/build.sh "$VERSION" > /dev/null
mkdir -p "$work/node" "$work/www/docs/apache-airflow/$VERSION"
cp "tests/fixtures/airflow/docker-compose-$VERSION.yaml" "$work/www/docs/apache-airflow/$VERSION/docker-compose.yaml"
python3 tests/servers/httpd.py --root "$work/www" > "$work/port" 2>/dev/null &
server=$!
i=0; while [ ! -s "$work/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
DOCS=http://127.0.0.1:$(cat "$work/port")/static/docs/apache-airflow
sh "$NODE" start "$work/node" > /dev/null
. "$work/node/env"
images=$(sed -n 's/^ *image: *//p; s/.*AIRFLOW_IMAGE_NAME:-\([^}]*\)}.*/\1/p' "tests/fixtures/airflow/docker-compose-$VERSION.yaml" | grep -v '\$' | sort -u)
sh "$NODE" load-image "$work/node" $images "apache/airflow:$VERSION" > /dev/null
V="-e dir=$DIR -e version=$VERSION -e docs_base=$DOCS -e nodes=$NODE2_HOST -e advertise=$NODE1_ADDR
   -e endpoint_mode=dnsrr -e published_mode=host -e workers=2"

# the swarm file the recipe writes, for the by-hand run: plan nothing, make the files only
"$P" recipes/airflow-swarm.lua $V --only 'project folder' --only 'compose file' --only 'mounted folders' \
    --only environment --only 'swarm compose file' -q > /dev/null
mkdir -p "$HAND"
cp -a "$DIR/." "$HAND/"
"$P" teardown recipes/airflow-swarm.lua $V -q > /dev/null   # the folder goes; provision starts from nothing below

# in the form docker stack deploy takes (bench/swarm_stack_deploy.lua)
"$P" --script bench/swarm_stack_deploy.lua "$HAND/docker-compose.swarm.yaml" > "$HAND/docker-compose.stack-deploy.yaml"

# 1. by hand, on a swarm made beforehand (node.sh swarm) -- the recipe's
# swarm steps then find it there and change only the node labels
sh "$NODE" swarm "$work/node" > /dev/null
ready() { # every service: its replicas running (swarm: healthy first, with a
    # healthcheck), or, for a one-shot one (restart: "no"), its task complete
    list=$(docker service ls --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Name}} {{.Replicas}}')
    [ -n "$list" ] || return 1
    printf '%s\n' "$list" | while read -r name reps; do
        states=$(docker service ps --format '{{.DesiredState}} {{.CurrentState}}' "$name")
        if printf '%s\n' "$states" | grep -q '^Shutdown Complete' && ! printf '%s\n' "$states" | grep -q '^Running'; then
            continue
        fi
        r=${reps%% *}
        [ "${r%/*}" = "${r#*/}" ] && [ "${r%/*}" != 0 ] || echo no
    done | grep -q no && return 1
    return 0
}
t0=$(date +%s%N)
(cd "$HAND" && set -a && . ./.env && set +a && docker stack deploy -c docker-compose.stack-deploy.yaml "$STACK" > "$work/hand.log" 2>&1) || { cat "$work/hand.log"; exit 1; }
i=0
until ready; do
    sleep 0.25; i=$((i + 1))
    [ $i -lt 2400 ] || { echo "by hand: not ready after 10 minutes" >&2; docker stack ps "$STACK" >&2; exit 1; }
done
hand=$(ms "$t0")
stack_gone() {
    docker stack rm "$STACK" > /dev/null
    i=0; while [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ] && [ $i -lt 240 ]; do sleep 0.25; i=$((i + 1)); done
    docker -H "$NODE2_HOST" ps -aq --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker -H "$NODE2_HOST" rm -f > /dev/null
    i=0; while [ -n "$(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK")" ] && [ $i -lt 120 ]; do
        docker network ls -q --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker network rm > /dev/null 2>&1 || true
        sleep 0.25; i=$((i + 1))
    done
}
stack_gone

# 1b. by hand WITH the ordering: level 1 of depends_on deployed and waited
# for, then levels 1-2 (the same stack, updated), ... -- what a user who
# wants init done before the rest does with stack deploy
levels=$("$P" --script bench/swarm_stack_deploy.lua "$HAND/docker-compose.swarm.yaml" levels)
t0=$(date +%s%N)
n=1
while [ $n -le "$levels" ]; do
    "$P" --script bench/swarm_stack_deploy.lua "$HAND/docker-compose.swarm.yaml" $n > "$HAND/level.yaml"
    (cd "$HAND" && set -a && . ./.env && set +a && docker stack deploy -c level.yaml "$STACK" >> "$work/hand.log" 2>&1) \
        || { cat "$work/hand.log"; exit 1; }
    i=0
    until ready; do
        sleep 0.25; i=$((i + 1))
        [ $i -lt 2400 ] || { echo "by hand, ordered: level $n not ready after 10 minutes" >&2; exit 1; }
    done
    n=$((n + 1))
done
ordered=$(ms "$t0")
stack_gone

# 2. provision
t0=$(date +%s%N)
"$P" recipes/airflow-swarm.lua $V -q > "$work/apply.log" 2>&1 || { cat "$work/apply.log"; exit 1; }
first=$(ms "$t0")

# 3. no-op
i=0; : > "$work/times"
while [ $i -lt "$RUNS" ]; do
    t0=$(date +%s%N)
    "$P" recipes/airflow-swarm.lua $V -q > /dev/null 2>&1 || { echo "no-op run failed" >&2; exit 1; }
    echo $(( ($(date +%s%N) - t0) / 1000 )) >> "$work/times"
    i=$((i + 1))
done
noop=$(sort -n "$work/times" | awk '{ a[NR] = $1 } END { printf "%.1f ms (min %.1f, max %.1f)", a[int((NR + 1) / 2)] / 1000, a[1] / 1000, a[NR] / 1000 }')
strace -f -qq -e trace=execve -o "$work/st" "$P" recipes/airflow-swarm.lua $V -q > /dev/null 2>&1
procs=$(( $(grep -c 'execve(' "$work/st") - 1 ))

# 4. teardown
t0=$(date +%s%N)
"$P" teardown recipes/airflow-swarm.lua $V -q > /dev/null
down=$(ms "$t0")

echo "Airflow $VERSION on a two-node swarm (stand-ins), engine $(docker version -f '{{.Server.Version}}'), $(date -u '+%Y-%m-%d %H:%M')"
echo "by hand: docker stack deploy, polled to running/healthy/complete:  $hand ms"
echo "by hand with the ordering (stack deploy level by level, each waited for): $ordered ms ($levels levels)"
echo "provision apply (files, ordering, wait, endpoint checks):          $first ms ($(awk -v a="$first" -v b="$hand" 'BEGIN { printf "%.2f", a / b }')x stack deploy, $(awk -v a="$first" -v b="$ordered" 'BEGIN { printf "%.2f", a / b }')x ordered by hand)"
echo "no-op re-run, stack up, median of $RUNS: $noop"
echo "processes the no-op starts: $procs"
echo "teardown (stack, networks, folder; the swarm was there before: kept): $down ms"
