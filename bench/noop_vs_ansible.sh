#!/bin/bash
# bench/noop_vs_ansible.sh: a no-op re-run of an Airflow-shaped recipe
# (bench/recipes/airflow-shaped.lua: a folder, a downloaded compose file with
# its checksum, dags/ logs/ plugins/, .env, a running compose stack) against
# the shell script doing the same checks (bench/recipes/airflow-shaped.sh)
# and against ansible-playbook with the equivalent tasks
# (bench/ansible/airflow-shaped.yml, Debian's ansible). All three work on the
# same folder and the same running stack, which is brought up once before
# timing; each must find nothing to do (checked before timing). Medians of
# RUNS runs (ANSIBLE_RUNS for ansible), rounds interleaved, one run.
#   bash bench/noop_vs_ansible.sh [RUNS=21] [ANSIBLE_RUNS=7]
# Needs: make, a Docker engine, docker-compose, busybox-static, and ansible
# (installed here with apt-get when missing: a bench-only dependency).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=${PROVISION:-$ROOT/provision}
RUNS=${1:-21}
ANSIBLE_RUNS=${2:-7}
B=$ROOT/bench

if ! command -v ansible-playbook >/dev/null 2>&1; then
    echo "ansible-playbook is missing: installing Debian's ansible (apt-get install -y ansible)..." >&2
    if ! { apt-get install -y ansible >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y ansible >/dev/null 2>&1; }; }; then
        echo "bench/noop_vs_ansible.sh: cannot install ansible (apt-get install -y ansible failed; are you root, with Debian's archive reachable?)" >&2
        exit 1
    fi
fi
docker info >/dev/null 2>&1 || { echo "bench/noop_vs_ansible.sh: no Docker engine answers" >&2; exit 1; }

W=$(mktemp -d /tmp/provision-bench.XXXXXX)
TAG="provision-bench/busybox:noop$$"
PROJ="airflowbench$$"
DIR="$W/airflow"
HTTPD_PID=""
cleanup() {
    [ -d "$DIR" ] && (cd "$DIR" && docker-compose -p "$PROJ" down -v --remove-orphans >/dev/null 2>&1 || true)
    docker image rm -f "$TAG" >/dev/null 2>&1 || true
    [ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
sh "$ROOT/tests/fixtures/stack/busybox-rootfs.sh" "$W/rootfs.tar"
"$P" --script "$ROOT/tests/fixtures/stack/image.lua" "$W/rootfs.tar" "$TAG" >/dev/null
python3 "$ROOT/tests/servers/httpd.py" --root "$B/recipes" > "$W/port" 2>/dev/null &
HTTPD_PID=$!
until grep -q '^[0-9]' "$W/port" 2>/dev/null; do sleep 0.05; done
URL="http://127.0.0.1:$(cat "$W/port")/static/docker-compose.yaml"
SHA=$(sha256sum "$B/recipes/docker-compose.yaml" | cut -c1-64)
export PROVISION_STATE_DIR="$W/state" ANSIBLE_NOCOWS=1 ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False

prov() { "$P" "$B/recipes/airflow-shaped.lua" -e "dir=$DIR" -e "url=$URL" -e "sha256=$SHA" -e "image=$TAG" -e "project=$PROJ" "$@"; }
shell() { sh "$B/recipes/airflow-shaped.sh" "$DIR" "$URL" "$SHA" "$TAG" "$PROJ"; }
ansible() {
    ansible-playbook -i localhost, -c local "$B/ansible/airflow-shaped.yml" \
        -e "dir=$DIR" -e "url=$URL" -e "sha256=$SHA" -e "image=$TAG" -e "project=$PROJ"
}

# bring it all up once, then each contender must find nothing to do
prov -q > /dev/null
out=$(prov) || { echo "provision's no-op run failed: $out" >&2; exit 1; }
echo "$out" | grep -q 'changed=0 failed=0' || { echo "provision's re-run is not a no-op: $out" >&2; exit 1; }
before=$(stat -c '%Y %i' "$DIR/.env" "$DIR/docker-compose.yaml")
shell || { echo "the shell script's no-op run failed" >&2; exit 1; }
out=$(ansible) || { echo "ansible-playbook failed: $out" >&2; exit 1; }
echo "$out" | grep -q 'changed=0 .*failed=0' || { echo "ansible's re-run is not a no-op: $out" >&2; exit 1; }
[ "$(stat -c '%Y %i' "$DIR/.env" "$DIR/docker-compose.yaml")" = "$before" ] \
    || { echo "the shell script or ansible rewrote .env or the compose file: not the same checks" >&2; exit 1; }
out=$(prov) && echo "$out" | grep -q 'changed=0 failed=0' \
    || { echo "after the shell script and ansible, provision's run is not a no-op: $out" >&2; exit 1; }

now() { date +%s%N; }
time_one() { local t0; t0=$(now); "$@" > /dev/null 2>&1; echo $(( ($(now) - t0) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f\n", m / 1000}'; }
: > "$W/p"; : > "$W/s"; : > "$W/a"
for i in $(seq 1 "$RUNS"); do
    time_one prov >> "$W/p"
    time_one shell >> "$W/s"
    [ "$i" -le "$ANSIBLE_RUNS" ] && time_one ansible >> "$W/a"
done
p=$(median < "$W/p"); s=$(median < "$W/s"); a=$(median < "$W/a")
echo "no-op re-run of an Airflow-shaped recipe (stack up and healthy), medians:"
printf '  %-40s %10s ms  (%d runs)\n' "provision" "$p" "$RUNS" "shell script (same checks)" "$s" "$RUNS" \
    "ansible-playbook (equivalent tasks)" "$a" "$ANSIBLE_RUNS"
awk -v p="$p" -v s="$s" -v a="$a" 'BEGIN {
    printf "  ansible-playbook / provision: %.0fx   (target: >= 100x)\n", a / p
    printf "  shell script / provision:     %.1fx\n", s / p }'
echo "  $(ansible-playbook --version | head -1); $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
