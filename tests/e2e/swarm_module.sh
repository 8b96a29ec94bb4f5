#!/bin/bash
# End to end: swarm.manager and swarm.worker on a real two-node swarm
# (tests/fixtures/swarm/node.sh: node 1 the default engine, node 2 a second
# dockerd in a netns), through the Engine API of each node: plan, init +
# join + labels, the no-op (no process), labels edited by hand put back, a
# node in another swarm refused, a manager that is a worker refused, a
# swarm made by hand kept by teardown (its labels put back), a node that
# joined outside the recipe keeps the manager in its swarm, and teardown
# leaving both nodes as they were. The join token is never printed.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
docker_require "swarm module"
. "$ROOT/tests/fixtures/swarm/lib.sh"
P=$PROVISION
swarm_node2_up "swarm module" strace || exit 1
cleanup_add "docker swarm leave --force > /dev/null 2>&1; docker -H '$NODE2_HOST' swarm leave --force > /dev/null 2>&1"

export PROVISION_STATE_DIR="$SANDBOX/state" NO_COLOR=1
R="$SANDBOX/swarm.lua"
cat > "$R" <<'EOF'
recipe { name = "swarm-test" }
local v = vars { node2 = "", advertise = "", role = "manager", pool = "worker" }
step "manager" { swarm.manager { advertise = v.advertise, labels = { role = v.role } } }
step "worker" { swarm.worker { engine = v.node2, labels = { airflow = v.pool } } }
EOF
V="-e node2=$NODE2_HOST -e advertise=$NODE1_ADDR"
label() { # ENGINE-ARGS NODE KEY
    docker node inspect -f "{{index .Spec.Labels \"$2\"}}" "$1" 2>/dev/null
}

run "$P" plan "$R" $V
expect "plan: the manager would init a swarm, the worker would join after it" \
    eval '[ $RC = 3 ] && has "$OUT" "init a swarm on unix:///var/run/docker.sock, advertising $NODE1_ADDR" && has "$OUT" "swarm unix:///var/run/docker.sock would change first"'
expect "plan changed nothing: both nodes out of any swarm" \
    eval '[ "$(docker info --format "{{.Swarm.LocalNodeState}}")/$(n2 info --format "{{.Swarm.LocalNodeState}}")" = inactive/inactive ]'

run "$P" "$R" $V -v
expect "apply: exit 0, both steps changed" eval '[ $RC = 0 ] && has "$OUT" "changed=2"'
expect "apply: the join token is never printed" eval '! has "$OUT$ERR" "SWMTKN"'
run docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'
expect "docker node ls: node 1 the leader, node 2 a Ready worker" \
    eval 'has "$OUT" " Ready Leader$" && has "$OUT" "^$NODE2_NAME Ready $"'
expect "node 1 advertises the address asked for" \
    eval '[ "$(docker info --format "{{.Swarm.NodeAddr}}")" = "$NODE1_ADDR" ]'
N1=$(docker info --format '{{.Swarm.NodeID}}'); N2=$(n2 info --format '{{.Swarm.NodeID}}')
expect "labels: role=manager on node 1, airflow=worker on node 2" \
    eval '[ "$(label "$N1" role)/$(label "$N2" airflow)" = manager/worker ]'

run "$P" "$R" $V
expect "re-run: a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'
if command -v strace > /dev/null 2>&1; then
    run strace -f -qq -e trace=execve -o "$SANDBOX/st" "$P" "$R" $V
    expect "the no-op starts no process (strace: its own execve only)" \
        eval '[ $RC = 0 ] && has "$OUT" "changed=0" && [ "$(grep -c "execve(" "$SANDBOX/st")" = 1 ]'
else
    fail "the no-op starts no process" "strace is not installed (apt-get install strace)"
fi
# GET /info runs runc --version and more on each call (7-10 ms): the no-op
# asks none; each node's state comes from GET /swarm (the manager's
# answer, the worker's refusal naming it a worker) and GET /nodes/ID on the
# manager (the nodes the last apply recorded)
run strace -f -qq -e trace=sendto,sendmsg,write -s 40 -o "$SANDBOX/st" "$P" "$R" $V
expect "the no-op asks no GET /info: GET /swarm of both nodes, /nodes/ID of the manager" \
    eval '[ $RC = 0 ] && [ "$(grep -c "GET /info " "$SANDBOX/st")" = 0 ] && [ "$(grep -c "GET /swarm " "$SANDBOX/st")" -ge 2 ] && grep -q "GET /nodes/" "$SANDBOX/st"'

# the node left the swarm by hand: the checks see it (no answer from memory)
n2 swarm leave --force > /dev/null 2>&1
run "$P" plan "$R" $V
expect "node 2 left by hand: plan says it joins again (exit 3)" \
    eval '[ $RC = 3 ] && has "$OUT" "$NODE2_HOST joins the swarm of unix:///var/run/docker.sock as a worker"'
run "$P" "$R" $V
expect "... and apply joins it again, labelled" \
    eval '[ $RC = 0 ] && [ "$(n2 info --format "{{.Swarm.LocalNodeState}}")" = active ]'
N2=$(n2 info --format '{{.Swarm.NodeID}}')
expect "... labelled airflow=worker again" eval '[ "$(label "$N2" airflow)" = worker ]'
expect "... and the node entry it left behind is gone from the manager's list (2 nodes)" \
    eval '[ "$(docker node ls -q | wc -l)" = 2 ]'

docker node update --label-add airflow=other "$N2" > /dev/null
run "$P" plan "$R" $V
expect "a label changed by hand: plan names it (exit 3: changes to make)" \
    eval '[ $RC = 3 ] && has "$OUT" "label airflow=worker on node $NODE2_NAME (now other)"'
run "$P" "$R" $V
expect "apply puts the label back" eval '[ $RC = 0 ] && [ "$(label "$N2" airflow)" = worker ]'
run "$P" "$R" $V -e pool=batch
expect "-e pool=batch: the label follows" eval '[ $RC = 0 ] && [ "$(label "$N2" airflow)" = batch ]'

run "$P" plan --teardown "$R" $V
expect "plan --teardown: exit 3, node 2 would leave, then node 1 the swarm it made, labels named" \
    eval '[ $RC = 3 ] && has "$OUT" "- $NODE2_HOST: leaves the swarm of unix:///var/run/docker.sock" \
        && has "$OUT" ": unix:///var/run/docker.sock leaves it (this step made it)" && has "$OUT" "- label airflow on node $NODE2_NAME"'
expect "... and changed nothing: both nodes still in the swarm, the labels on" \
    eval '[ "$(docker info --format "{{.Swarm.LocalNodeState}}")/$(n2 info --format "{{.Swarm.LocalNodeState}}")" = active/active ] && [ "$(label "$N2" airflow)" = batch ]'
run "$P" teardown "$R" $V
expect "teardown: exit 0" test "$RC" = 0
expect "teardown: both nodes out of the swarm (the recipe made it)" \
    eval '[ "$(docker info --format "{{.Swarm.LocalNodeState}}")/$(n2 info --format "{{.Swarm.LocalNodeState}}")" = inactive/inactive ]'

# node 2 in a swarm of its own: the worker step refuses, naming it
n2 swarm init --advertise-addr "$NODE2_ADDR" > /dev/null 2>&1
run "$P" "$R" $V
expect "a node in another swarm: refused, named" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "$NODE2_HOST is in another swarm" && has "$OUT$ERR" "docker swarm leave"'
expect "... and node 2 is left in its own swarm" \
    eval '[ "$(n2 info --format "{{.Swarm.ControlAvailable}}")" = true ]'
# node 1 a worker of node 2's swarm: the manager step refuses
"$P" teardown "$R" $V > /dev/null 2>&1
docker swarm join --token "$(n2 swarm join-token -q worker)" --advertise-addr "$NODE1_ADDR" "$NODE2_ADDR:2377" > /dev/null 2>&1
run "$P" plan "$R" $V
expect "a manager that is a worker elsewhere: refused" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "is a worker in a swarm (managers: $NODE2_ADDR:2377), not a manager"'
docker swarm leave --force > /dev/null 2>&1
n2 swarm leave --force > /dev/null 2>&1

# a swarm made by hand: the recipe only adds labels, and teardown keeps the swarm
run sh "$NODE" swarm "$DIR"
expect "node.sh swarm: a swarm made outside the recipe" test "$RC" = 0
. "$DIR/env"
run "$P" "$R" $V
expect "apply on that swarm: only the labels change" \
    eval '[ $RC = 0 ] && has "$OUT" "changed=2" && [ "$(label "$NODE2_ID" airflow)" = worker ]'
run "$P" teardown "$R" $V
expect "teardown: the swarm made by hand stays, the labels are gone" \
    eval '[ $RC = 0 ] && [ "$(n2 info --format "{{.Swarm.LocalNodeState}}")" = active ] && [ -z "$(label "$NODE2_ID" airflow)" ] && [ -z "$(label "$NODE1_ID" role)" ]'
n2 swarm leave --force > /dev/null 2>&1
docker node rm --force "$NODE2_ID" > /dev/null 2>&1
docker swarm leave --force > /dev/null 2>&1

# the recipe makes the swarm, a node joins by hand: the manager stays for it
M="$SANDBOX/manager.lua"
cat > "$M" <<'EOF'
recipe { name = "swarm-manager" }
local v = vars { advertise = "" }
step "manager" { swarm.manager { advertise = v.advertise } }
EOF
run "$P" "$M" -e advertise="$NODE1_ADDR"
expect "manager only: the swarm made" eval '[ $RC = 0 ] && [ "$(docker info --format "{{.Swarm.ControlAvailable}}")" = true ]'
n2 swarm join --token "$(docker swarm join-token -q worker)" "$NODE1_ADDR:2377" > /dev/null 2>&1
run "$P" teardown "$M" -e advertise="$NODE1_ADDR"
expect "teardown with a node the recipe did not join: refused, naming it, the swarm kept" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "still manages nodes this recipe did not join ($NODE2_NAME)" && [ "$(docker info --format "{{.Swarm.LocalNodeState}}")" = active ]'
n2 swarm leave --force > /dev/null 2>&1
docker node rm --force "$(n2 info --format '{{.Name}}')" > /dev/null 2>&1
for i in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(docker node ls -q | wc -l)" = 1 ] && break
    docker node ls --format '{{.ID}} {{.Hostname}}' | awk -v h="$NODE2_NAME" '$2 == h { print $1 }' | xargs -r docker node rm --force > /dev/null 2>&1
    sleep 0.5
done
run "$P" teardown "$M" -e advertise="$NODE1_ADDR"
expect "... once it left: teardown leaves the swarm it made" \
    eval '[ $RC = 0 ] && [ "$(docker info --format "{{.Swarm.LocalNodeState}}")" = inactive ]'

# the swarm the step made, left and made again by hand: another swarm, not
# taken for the recorded one (the quick GET /swarm check falls back to /info)
run "$P" "$M" -e advertise="$NODE1_ADDR"
expect "manager only, again: the swarm made" eval '[ $RC = 0 ] && has "$OUT" "changed=1"'
docker swarm leave --force > /dev/null 2>&1
docker swarm init --advertise-addr "$NODE1_ADDR" > /dev/null 2>&1
run "$P" plan "$M" -e advertise="$NODE1_ADDR"
expect "a swarm made again by hand: the check fails, naming both swarms" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "manages swarm $(docker info --format "{{.Swarm.Cluster.ID}}"), not swarm" && has "$OUT$ERR" "this step made"'
run "$P" teardown "$M" -e advertise="$NODE1_ADDR"
expect "... teardown leaves that swarm alone (not the one it made)" \
    eval '[ $RC = 0 ] && [ "$(docker info --format "{{.Swarm.LocalNodeState}}")" = active ]'
docker swarm leave --force > /dev/null 2>&1

# bad input: load-time errors, nothing changed
B="$SANDBOX/bad.lua"
printf 'recipe { name = "b" }\nstep "w" { swarm.worker { engine = "unix:///var/run/docker.sock" } }\n' > "$B"
run "$P" "$B"
expect "a worker whose engine is its manager: exit 2, named" \
    eval '[ $RC = 2 ] && has "$OUT$ERR" "engine and manager are one engine"'
printf 'recipe { name = "b" }\nstep "m" { swarm.manager { labels = { x = {} } } }\n' > "$B"
run "$P" "$B"
expect "a label that is not a string: exit 2, named" \
    eval '[ $RC = 2 ] && has "$OUT$ERR" "labels: x must be a string"'
expect "bad input changed nothing" eval '[ "$(docker info --format "{{.Swarm.LocalNodeState}}")" = inactive ]'
