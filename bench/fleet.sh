#!/bin/bash
# bench/fleet.sh: the no-op of a 50-step recipe on 1, 10 and 50 hosts over
# ssh (issue 15), against the floor: as many `ssh HOST true` at once, each
# a fresh connection (no master), the least any ssh-based tool pays. The
# hosts are tests/fixtures/sshd's containers on 127.0.0.1 (one machine: the
# hosts share its 2 cores with the controller).
#   provision, warm: the re-run soon after another (ssh's master connection
#                    kept 60 s: no handshake)
#   provision, cold: the master connections closed first (a handshake each)
# Medians of RUNS runs (default 7). Also the first apply (the binary sent to
# every host once) and a second apply on hosts that have it.
#   bash bench/fleet.sh [N...]          (default: 1 10 50; needs a Docker engine)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/sshd/hosts.sh"
. "$ROOT/bench/lib.sh"
PROVISION_REQUIRE_DOCKER=1 docker_require "bench/fleet.sh"
RUNS=${RUNS:-7}
sizes=${*:-1 10 50}
max=0; for n in $sizes; do [ "$n" -gt "$max" ] && max=$n; done

ssh_hosts_start "$max" --libs-of "$P" > /dev/null || exit 1
export PROVISION_SSH="ssh -F $SSH_CONFIG"
{ echo 'recipe { name = "fleet-bench" }'
  for i in $(seq 1 25); do
      echo "step \"dir $i\" { fs.directory \"./bench-out/d$i\" }"
      echo "step \"file $i\" { fs.file { path = \"./bench-out/d$i/f\", content = \"$i\\n\" } }"
  done; } > bench.lua
mkdir -p r && mv bench.lua r/

ms_of() { local t0 t1; t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
close_masters() { for h in $1; do ssh -F "$SSH_CONFIG" -o ControlPath="$HOME/.cache/provision/ssh/%C" -O exit "$h" 2>/dev/null; done; }
floor() { for h in $1; do ssh -F "$SSH_CONFIG" -o ControlMaster=no -o ControlPath=none "$h" true & done; wait; }

printf '%-6s %12s %12s %12s %12s %12s %10s\n' hosts "apply 1st" "apply 2nd" "no-op warm" "no-op cold" "floor" "warm/floor"
for n in $sizes; do
    hs=$(echo $HOSTS | tr ' ' '\n' | head -n "$n" | tr '\n' ' ')
    list=$(echo $hs | tr ' ' ',')
    for h in $hs; do ssh -F "$SSH_CONFIG" "$h" 'rm -rf /root/bench-out /root/.provision /root/.cache/provision' ; done
    first=$(ms_of "$P" -q r/bench.lua --host "$list")
    for h in $hs; do ssh -F "$SSH_CONFIG" "$h" 'rm -rf /root/bench-out /root/.provision'; done
    second=$(ms_of "$P" -q r/bench.lua --host "$list")
    "$P" -q r/bench.lua --host "$list" > /dev/null 2>&1 || { echo "the no-op run failed on $n hosts"; exit 1; }
    w=() c=() f=()
    for i in $(seq 1 "$RUNS"); do
        w+=("$(ms_of "$P" -q r/bench.lua --host "$list")")
        close_masters "$hs"
        c+=("$(ms_of "$P" -q r/bench.lua --host "$list")")
        f+=("$(ms_of floor "$hs")")
    done
    mw=$(med "${w[@]}"); mc=$(med "${c[@]}"); mf=$(med "${f[@]}")
    printf '%-6s %12s %12s %12s %12s %12s %10s\n' "$n" "$first" "$second" "$mw" "$mc" "$mf" \
        "$(awk -v a="$mw" -v b="$mf" 'BEGIN { printf "%.2f", a / b }')"
done
echo "(ms; medians of $RUNS; 50 steps per host; load average $(cut -d' ' -f1-3 /proc/loadavg))"
