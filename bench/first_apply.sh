#!/bin/bash
# bench/first_apply.sh: the first apply of recipes/demo-stack.lua (a busybox
# image built and imported, compose file, .env, a one-shot init run to
# completion, the stack up and healthy, its two HTTP endpoints answering)
# against the plain sequence of commands a person would type for the same:
# build the root filesystem and tar it, `docker import`, copy the compose
# file, write .env, `docker-compose up init`, `docker-compose up -d`, poll
# `docker inspect` until web and worker are healthy, poll curl until both
# endpoints answer. Fresh state each round (folder, image, volumes, state
# gone); order alternating; RUNS rounds; medians and their ratio.
#   bash bench/first_apply.sh [RUNS=5]       (needs make, Docker, docker-compose, busybox-static)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=${PROVISION:-$ROOT/provision}
RUNS=${1:-5}
SRC=$ROOT/recipes/demo-stack
BB=/bin/busybox
W=$(mktemp -d /tmp/provision-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
PW=demo-stack-password
GREETING="hello from the provision demo stack"
down() { # dir tag
    [ -d "$1" ] && (cd "$1" && docker-compose -p "$(basename "$1")" down -v --remove-orphans >/dev/null 2>&1 || true)
    docker image rm -f "$2" >/dev/null 2>&1 || true
    rm -rf "$1" "$1.state"
}
cleanup() {
    for d in "$W"/p* "$W"/h*; do
        case "$d" in *.state|*'*') continue ;; esac
        [ -d "$d" ] && down "$d" "provision-bench/demo:$(basename "$d")$$"
    done
    rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

by_provision() { # dir tag -> ms
    local t0; t0=$(now)
    PROVISION_STATE_DIR="$1.state" "$P" "$ROOT/recipes/demo-stack.lua" -q -e "dir=$1" -e "image=$2" \
        -e "web_port=$PORT" -e host=127.0.0.1 -e "busybox=$BB" >/dev/null
    ms "$t0" "$(now)"
}
by_hand() { # dir tag -> ms
    local d=$1 tag=$2 name r a; name=$(basename "$d")
    local t0; t0=$(now)
    r=$d/image/rootfs
    mkdir -p "$r"/bin "$r"/etc "$r"/tmp "$r"/app "$r"/data "$r"/proc "$r"/sys "$r"/dev "$r"/root "$r"/usr
    chmod 1777 "$r/tmp"
    cp "$BB" "$r/bin/busybox"
    for a in $("$BB" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
    ln -s bin "$r/sbin"; ln -s ../bin "$r/usr/bin"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
    install -m 0755 "$SRC/init.sh" "$SRC/web.sh" "$SRC/worker.sh" "$r/app/"
    tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$d/image/rootfs.tar" .
    docker import "$d/image/rootfs.tar" "$tag" >/dev/null
    cp "$SRC/docker-compose.yaml" "$d/"
    (umask 077; printf 'DEMO_IMAGE=%s\nGREETING=%s\nWEB_PASSWORD=%s\nWEB_PORT=%s\nWEB_USER=demo\n' \
        "$tag" "$GREETING" "$PW" "$PORT" > "$d/.env")
    (cd "$d" && docker-compose -p "$name" up init >/dev/null 2>&1)
    (cd "$d" && docker-compose -p "$name" up -d >/dev/null 2>&1)
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "${name}_web_1" "${name}_worker_1" 2>/dev/null | sort -u)" = healthy ]; do
        sleep 0.1
    done
    until curl -fsS "http://127.0.0.1:$PORT/health" 2>/dev/null | grep -q '"worker"'; do sleep 0.1; done
    until curl -fsS -u "demo:$PW" "http://127.0.0.1:$PORT/api/hello" 2>/dev/null | grep -q "$GREETING"; do sleep 0.1; done
    ms "$t0" "$(now)"
}

# the first round checks that both end in the same place
d=$W/pcheck; tag="provision-bench/demo:pcheck$$"
by_provision "$d" "$tag" > /dev/null
out=$(PROVISION_STATE_DIR="$d.state" "$P" "$ROOT/recipes/demo-stack.lua" -e "dir=$d" -e "image=$tag" -e "web_port=$PORT" -e host=127.0.0.1 -e "busybox=$BB")
echo "$out" | grep -q 'changed=0 failed=0' || { echo "demo-stack: the re-run is not a no-op: $out" >&2; exit 1; }
down "$d" "$tag"
: > "$W/prov.txt"; : > "$W/hand.txt"
for i in $(seq 1 "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
        a=$(by_provision "$W/p$i" "provision-bench/demo:p$i$$"); down "$W/p$i" "provision-bench/demo:p$i$$"
        b=$(by_hand "$W/h$i" "provision-bench/demo:h$i$$"); down "$W/h$i" "provision-bench/demo:h$i$$"
    else
        b=$(by_hand "$W/h$i" "provision-bench/demo:h$i$$"); down "$W/h$i" "provision-bench/demo:h$i$$"
        a=$(by_provision "$W/p$i" "provision-bench/demo:p$i$$"); down "$W/p$i" "provision-bench/demo:p$i$$"
    fi
    echo "$a" >> "$W/prov.txt"; echo "$b" >> "$W/hand.txt"
    echo "round $i: provision ${a} ms, by hand ${b} ms" >&2
done
p=$(median < "$W/prov.txt"); h=$(median < "$W/hand.txt")
echo "first apply of recipes/demo-stack.lua (image built and imported, init, stack healthy, endpoints answering), medians of $RUNS:"
printf '  %-46s %8s ms\n' "provision recipes/demo-stack.lua" "$p" "plain commands (docker, docker-compose, curl)" "$h"
awk -v p="$p" -v h="$h" 'BEGIN { printf "  provision / plain: %.3f   (target: <= 1.10)\n", p / h }'
echo "  $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
