#!/bin/bash
# bench/fleet_ansible.sh: the no-op of a 50-step recipe on 1, 10 and 50 hosts
# over ssh (issue 15), provision against ansible-playbook on the same hosts
# and against the floor: as many `ssh HOST true` at once, each a fresh
# connection (no master), the least any ssh-based tool pays. The hosts are
# tests/fixtures/sshd's containers on 127.0.0.1 with python3 (--python: what
# Ansible needs there); one machine: the hosts share its cores with the
# controller.
#   provision: bench/fleet.sh's recipe (25 fs.directory + 25 fs.file under
#              ./bench-out), --host h1,...; warm: its master connections up
#              (an untimed run first when they are gone)
#   ansible:   the same 50 steps as tasks (25 file state=directory + 25 copy
#              content=) under /root/ansible-out; gather_facts: false, forks
#              = hosts, pipelining, ControlMaster=auto ControlPersist=60s,
#              ansible_python_interpreter set (no discovery), absolute paths
#              and remote_tmp (a ~ costs it one more ssh round trip a task);
#              warm too (its masters from its previous run)
#   floor:     N parallel ssh -o ControlMaster=no -o ControlPath=none HOST true
# After a first apply each way, rounds alternate provision, ansible, floor;
# every timed run must change nothing on any host (checked: it stops
# otherwise). Medians of RUNS rounds (default 5); ansible runs in the first
# RUNS_ANSIBLE of them (default 3: 50 hosts take a while).
#   bash bench/fleet_ansible.sh [N...]   (default: 1 10 50; needs a Docker
#                                         engine and ansible-playbook)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v ansible-playbook > /dev/null 2>&1; then
    echo "bench/fleet_ansible.sh: ansible-playbook is missing; install Ansible first" >&2
    echo "  (Debian/Ubuntu: apt-get install -y ansible; the README's figures are Debian 12's, ansible-core 2.14)" >&2
    exit 1
fi
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/sshd/hosts.sh"
PROVISION_REQUIRE_DOCKER=1 docker_require "bench/fleet_ansible.sh"
RUNS=${RUNS:-5}
RUNS_ANSIBLE=${RUNS_ANSIBLE:-3}
[ "$RUNS_ANSIBLE" -le "$RUNS" ] || RUNS_ANSIBLE=$RUNS
sizes=${*:-1 10 50}
max=0; for n in $sizes; do [ "$n" -gt "$max" ] && max=$n; done

ssh_hosts_start "$max" --libs-of "$P" --python > /dev/null || exit 1
export PROVISION_SSH="ssh -F $SSH_CONFIG"
mkdir -p r
{ echo 'recipe { name = "fleet-bench" }'
  for i in $(seq 1 25); do
      echo "step \"dir $i\" { fs.directory \"./bench-out/d$i\" }"
      echo "step \"file $i\" { fs.file { path = \"./bench-out/d$i/f\", content = \"$i\\n\" } }"
  done; } > r/bench.lua
{ echo '- hosts: all'
  echo '  gather_facts: false'
  echo '  tasks:'
  for i in $(seq 1 25); do
      echo "    - name: dir $i"
      echo "      ansible.builtin.file: { path: /root/ansible-out/d$i, state: directory }"
      echo "    - name: file $i"
      echo "      ansible.builtin.copy: { dest: /root/ansible-out/d$i/f, content: \"$i\\n\" }"
  done; } > bench.yml
mkdir -p ansible-cp
cat > ansible.cfg <<EOF
[defaults]
host_key_checking = True
interpreter_python = /usr/bin/python3
remote_tmp = /tmp/.ansible/tmp
retry_files_enabled = False
nocows = 1
[ssh_connection]
ssh_args = -F $SSH_CONFIG -o ControlMaster=auto -o ControlPersist=60s
control_path_dir = $SANDBOX/ansible-cp
pipelining = True
EOF
export ANSIBLE_CONFIG="$SANDBOX/ansible.cfg"

# the run's own timing: output kept in $SANDBOX/.last for the checks
ms_of() {
    local t0 t1 rc; t0=$(date +%s%N); "$@" > "$SANDBOX/.last" 2>&1; rc=$?; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 )); return $rc
}
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
die() { echo "bench/fleet_ansible.sh: $1" >&2; sed 's/^/  | /' "$SANDBOX/.last" | tail -n 40 >&2; exit 1; }
prov() { "$P" -q r/bench.lua --host "$list"; }
# bounded: a client of a master whose host went away waits for ever
ans() { timeout 1800 ansible-playbook -i "inventory-$n" -f "$n" bench.yml; }
# (a connection refused would be quicker than a real one: each must succeed)
floor() {
    local h pids=() rc=0
    for h in $hs; do ssh -F "$SSH_CONFIG" -o ControlMaster=no -o ControlPath=none "$h" true & pids+=($!); done
    for h in "${pids[@]}"; do wait "$h" || rc=1; done
    return $rc
}
# every host in the recap with changed=0 and nothing failed
prov_noop() { [ "$(grep -cE '^h[0-9]+ +ok +ok=50 changed=0 failed=0$' "$SANDBOX/.last")" = "$n" ]; }
ans_noop() { [ "$(grep -cE '^h[0-9]+ +: ok=50 +changed=0 +unreachable=0 +failed=0 ' "$SANDBOX/.last")" = "$n" ]; }
# provision's masters (its ControlPath) up on every host, else an untimed run
prov_warm() {
    local h
    for h in $hs; do
        ssh -F "$SSH_CONFIG" -o ControlPath="$HOME/.cache/provision/ssh/%C" -O check "$h" 2> /dev/null || {
            prov > "$SANDBOX/.last" 2>&1 || die "provision's warm-up run failed on $n hosts"; return; }
    done
}

printf '%-6s %16s %14s %10s %18s %16s\n' hosts "provision no-op" "ansible no-op" floor "ansible/provision" "provision/floor"
for n in $sizes; do
    hs=$(echo $HOSTS | tr ' ' '\n' | head -n "$n" | tr '\n' ' ')
    list=$(echo $hs | tr ' ' ',')
    { echo '[bench]'; printf '%s\n' $hs; echo '[bench:vars]'; echo 'ansible_python_interpreter=/usr/bin/python3'; } > "inventory-$n"
    ms_of prov > /dev/null || die "provision's first apply failed on $n hosts"
    ms_of ans > /dev/null || die "ansible-playbook's first apply failed on $n hosts"
    ms_of prov > /dev/null && prov_noop || die "provision's second run on $n hosts is not a no-op"
    ms_of ans > /dev/null && ans_noop || die "ansible-playbook's second run on $n hosts is not a no-op"
    p=() a=() f=()
    for i in $(seq 1 "$RUNS"); do
        prov_warm
        t=$(ms_of prov) && prov_noop || die "a timed provision run on $n hosts was not a no-op"
        p+=("$t")
        if [ "$i" -le "$RUNS_ANSIBLE" ]; then
            t=$(ms_of ans) && ans_noop || die "a timed ansible-playbook run on $n hosts was not a no-op"
            a+=("$t")
        fi
        t=$(ms_of floor) || die "an ssh of the floor failed on $n hosts"
        f+=("$t")
    done
    mp=$(med "${p[@]}"); ma=$(med "${a[@]}"); mf=$(med "${f[@]}")
    printf '%-6s %16s %14s %10s %18s %16s\n' "$n" "$mp" "$ma" "$mf" \
        "$(awk -v a="$ma" -v b="$mp" 'BEGIN { printf "%.0fx", a / b }')" \
        "$(awk -v a="$mp" -v b="$mf" 'BEGIN { printf "%.2f", a / b }')"
done
echo "(ms; medians of $RUNS runs, ansible $RUNS_ANSIBLE; 50 steps per host; load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "(RUNS=$RUNS RUNS_ANSIBLE=$RUNS_ANSIBLE bash bench/fleet_ansible.sh $sizes; $(ansible-playbook --version | head -n 1))"

# the results are real: both folders on the first and the last host
expect_files=$(for i in $(seq 1 25); do echo "d$i/f:$i"; done)
for h in h1 "h$max"; do
    for d in bench-out ansible-out; do
        got=$(ssh -F "$SSH_CONFIG" "$h" "cd /root/$d && for i in $(seq -s ' ' 1 25); do printf 'd%s/f:%s\n' \$i \"\$(cat d\$i/f)\"; done" 2>&1)
        [ "$got" = "$expect_files" ] || { echo "bench/fleet_ansible.sh: $h:/root/$d does not hold the 25 expected files: $got" >&2; exit 1; }
    done
done
echo "(checked: /root/bench-out and /root/ansible-out hold d1/f..d25/f on h1 and h$max)"
