#!/bin/bash
# bench/compose.sh: the compose stack of tests/fixtures/stack (init one-shot,
# web with a healthcheck behind a published port, worker).
#   1. start to healthy: `provision recipe.lua` vs the same docker-compose
#      commands by hand with a polling loop; same run, alternating order,
#      RUNS rounds, medians (and the ratio of the medians)
#   2. the no-op re-run of the recipe with the stack up and healthy: median
#      wall time of NOOP runs, and the processes it spawns (strace -f)
# Usage: bash bench/compose.sh [RUNS=5] [NOOP=20]   (needs make, a Docker engine)
#   BASE=/path/to/older/provision bash bench/compose.sh ...   the no-op re-run
#   of that binary too, alternating with this one on the same stack and state
#   (before/after a change)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=${PROVISION:-$ROOT/provision}
RUNS=${1:-5}
NOOP=${2:-20}
W=$(mktemp -d /tmp/provision-bench.XXXXXX)
TAG="provision-test/busybox:bench$$"
STACK=$ROOT/tests/fixtures/stack
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cleanup() {
    for d in "$W"/p*/ "$W"/h*/; do
        [ -d "$d" ] && (cd "$d" && docker-compose -p "$(basename "$d")" down -v --remove-orphans >/dev/null 2>&1 || true)
    done
    docker image rm -f "$TAG" >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT
sh "$STACK/busybox-rootfs.sh" "$W/rootfs.tar"
"$P" --script "$STACK/image.lua" "$W/rootfs.tar" "$TAG" >/dev/null
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

by_provision() { # dir -> ms
    local d=$1
    local t0; t0=$(now)
    PROVISION_STATE_DIR="$d.state" "$P" "$STACK/recipe.lua" -q -e "dir=$d" -e "src=$STACK" \
        -e "rootfs=$W/rootfs.tar" -e "image=$TAG" -e "port=$PORT" >/dev/null
    ms "$t0" "$(now)"
}
by_hand() { # dir -> ms: the same steps with docker-compose and a polling loop
    local d=$1 name; name=$(basename "$d")
    local t0; t0=$(now)
    mkdir -p "$d/www"
    cp "$STACK/docker-compose.yaml" "$STACK/httpd.conf" "$d/"; cp "$STACK"/www/* "$d/www/"
    printf 'STACK_IMAGE=%s\nWEB_PORT=%s\nGREETING=hello\n' "$TAG" "$PORT" > "$d/.env"
    (cd "$d" && docker-compose -p "$name" up -d init >/dev/null 2>&1)
    until [ "$(docker inspect -f '{{.State.Status}}' "${name}_init_1")" = exited ]; do sleep 0.1; done
    (cd "$d" && docker-compose -p "$name" up -d >/dev/null 2>&1)
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "${name}_web_1" 2>/dev/null)" = healthy ]; do sleep 0.1; done
    ms "$t0" "$(now)"
}
down() { (cd "$1" && docker-compose -p "$(basename "$1")" down -v --remove-orphans >/dev/null 2>&1); }

: > "$W/prov.txt"; : > "$W/hand.txt"
for i in $(seq 1 "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
        a=$(by_provision "$W/p$i"); down "$W/p$i"; b=$(by_hand "$W/h$i"); down "$W/h$i"
    else
        b=$(by_hand "$W/h$i"); down "$W/h$i"; a=$(by_provision "$W/p$i"); down "$W/p$i"
    fi
    echo "$a" >> "$W/prov.txt"; echo "$b" >> "$W/hand.txt"
    echo "round $i: provision ${a} ms, by hand ${b} ms"
done
mp=$(median < "$W/prov.txt"); mh=$(median < "$W/hand.txt")
echo "start to healthy, median of $RUNS: provision ${mp} ms, docker-compose by hand ${mh} ms, ratio $(awk -v a="$mp" -v b="$mh" 'BEGIN{printf "%.3f", a/b}')"

# no-op re-run on a converged stack
D="$W/pnoop"
by_provision "$D" >/dev/null
noop_by() { local bin=$1; shift; PROVISION_STATE_DIR="$D.state" "$bin" "$STACK/recipe.lua" "$@" -e "dir=$D" \
        -e "src=$STACK" -e "rootfs=$W/rootfs.tar" -e "image=$TAG" -e "port=$PORT"; }
noop() { noop_by "$P" "$@"; }
noop -q > /dev/null   # the state is settled
out=$(noop); echo "$out" | tail -1
: > "$W/noop.txt"; : > "$W/noop-base.txt"
for i in $(seq 1 "$NOOP"); do
    t0=$(now); noop -q > /dev/null; t1=$(now)
    echo $(( (t1 - t0) / 1000 )) >> "$W/noop.txt"
    if [ -n "${BASE:-}" ]; then
        t0=$(now); noop_by "$BASE" -q > /dev/null; t1=$(now)
        echo $(( (t1 - t0) / 1000 )) >> "$W/noop-base.txt"
    fi
done
mn=$(median < "$W/noop.txt" | awk '{printf "%.1f", $1/1000}')
echo "no-op re-run, median of $NOOP: $mn ms wall"
if [ -n "${BASE:-}" ]; then
    mb=$(median < "$W/noop-base.txt" | awk '{printf "%.1f", $1/1000}')
    echo "  base $BASE: $mb ms wall (alternating); ratio this/base $(awk -v a="$mn" -v b="$mb" 'BEGIN{printf "%.3f", a/b}')"
fi
if command -v strace >/dev/null; then
    noop -q > /dev/null 2>&1
    n=$(PROVISION_STATE_DIR="$D.state" strace -f -e trace=execve -o "$W/strace.txt" \
        "$P" "$STACK/recipe.lua" -q -e "dir=$D" -e "src=$STACK" -e "rootfs=$W/rootfs.tar" -e "image=$TAG" -e "port=$PORT" >/dev/null 2>&1; \
        grep -c 'execve(' "$W/strace.txt")
    echo "no-op re-run: $((n - 1)) processes spawned (execve calls under strace -f, less provision's own)"
else
    echo "no-op re-run: strace not installed, process count not measured"
fi
down "$D"
