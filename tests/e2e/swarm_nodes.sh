#!/bin/bash
# End to end: the two-node Docker Swarm fixture (tests/fixtures/swarm/node.sh)
# works: node 2 (a second dockerd in a netns) starts, the two nodes form a
# swarm (node 1, the default engine, is the manager) and are both Ready, a
# busybox image is on both, a global dnsrr service on an attachable overlay
# network runs a task on each node, and those tasks reach each other across
# the nodes by DNS name (tasks.SERVICE: two addresses, each answering with
# its node's hostname; each task by its own name) and through host-mode published ports on each node's
# address; then stop leaves nothing: no netns, no veth, no second dockerd,
# node 1 out of the swarm, no docker_gwbridge it did not have.
# No skip beyond lib_docker's (CI sets PROVISION_REQUIRE_DOCKER=1): a
# missing tool is a FAIL. No IPVS here: no VIPs, no ingress mesh (dnsrr and
# host-mode ports only).
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
docker_require "swarm fixture"
NODE="$ROOT/tests/fixtures/swarm/node.sh"

[ "$(id -u)" = 0 ] || { fail "swarm fixture" "needs root (network namespaces, a second dockerd)"; exit 1; }
for c in ip nsenter unshare setsid dockerd busybox curl; do
    command -v "$c" > /dev/null 2>&1 \
        || { fail "swarm fixture" "$c is not installed (apt-get install iproute2 util-linux docker.io busybox-static curl)"; exit 1; }
done
before=$(docker info --format '{{.Swarm.LocalNodeState}}')
[ "$before" = inactive ] \
    || { fail "swarm fixture" "node 1 (the default engine) is in a swarm already ($before): not touching it"; exit 1; }
gw_before=no; docker network inspect docker_gwbridge > /dev/null 2>&1 && gw_before=yes

DIR=$(mktemp -d /tmp/pvsw.XXXXXX)   # short: node 2's unix socket lives in it
cleanup_add "sh '$NODE' stop '$DIR'"
TAG="provision-test/busybox:swarm$$"
SVC="pvsw$$"
NET="pvswnet$$"

# wait_for SECONDS COMMAND...: until COMMAND succeeds (0) or SECONDS pass (1)
wait_for() {
    t=$(( $1 * 2 )); shift
    until "$@"; do t=$((t - 1)); [ $t -gt 0 ] || return 1; sleep 0.5; done
}

run sh "$NODE" start "$DIR"
expect "node.sh start: node 2's dockerd answers in its netns" eval '[ $RC = 0 ] && [ -f "$DIR/env" ]'
[ "$RC" = 0 ] || exit 1
. "$DIR/env"
n2() { docker -H "$NODE2_HOST" "$@"; }
expect "node 2 is a separate engine (its own name $NODE2_NAME, its own root)" \
    eval '[ "$(n2 info --format "{{.Name}} {{.DockerRootDir}}")" = "$NODE2_NAME $DIR/data" ]'

run sh "$NODE" swarm "$DIR"
expect "node.sh swarm: node 1 inits, node 2 joins (ids printed)" \
    eval '[ $RC = 0 ] && has "$OUT" "NODE1_ID=" && has "$OUT" "NODE2_ID="'
[ "$RC" = 0 ] || exit 1
. "$DIR/env"
run docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'
expect "docker node ls: 2 nodes, both Ready and Active" \
    eval '[ "$(printf "%s\n" "$OUT" | grep -c " Ready Active$")" = 2 ] && has "$OUT" "^$NODE2_NAME "'
run n2 info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'
expect "node 2 is in the swarm as a worker" test "$OUT" = "active false"
run sh "$NODE" swarm "$DIR"
expect "node.sh swarm again: a no-op (same ids)" eval '[ $RC = 0 ] && has "$OUT" "NODE2_ID=$NODE2_ID"'

busybox_image "$TAG" || { fail "busybox image on node 1" "busybox_image $TAG failed"; exit 1; }
run sh "$NODE" load-image "$DIR" "$TAG"
expect "node.sh load-image: the busybox image on both nodes (same id)" \
    eval '[ $RC = 0 ] && [ "$(n2 image inspect -f "{{.Id}}" "$TAG")" = "$(docker image inspect -f "{{.Id}}" "$TAG")" ]'

run docker network create -d overlay --attachable "$NET"
expect "an attachable overlay network" test "$RC" = 0
PORT=$(free_port)
# each task serves its node's hostname (the --hostname template) on 8080, and
# on PORT of its node's addresses (a host-mode published port)
run docker service create -d --no-resolve-image --name "$SVC" --mode global --endpoint-mode dnsrr \
    --network "$NET" --hostname '{{.Node.Hostname}}' --stop-grace-period 1s \
    --publish "mode=host,target=8080,published=$PORT" \
    "$TAG" sh -c 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'
expect "a global dnsrr service created" test "$RC" = 0
running() { [ "$(docker service ps --filter desired-state=running --format '{{.CurrentState}}' "$SVC" | grep -c '^Running')" = 2 ]; }
wait_for 30 running
expect "its tasks run, one on each node" eval '[ "$(docker service ps --filter desired-state=running --format "{{.Node}}" "$SVC" | sort -u | wc -l)" = 2 ]'
c1=$(docker ps -q --filter "label=com.docker.swarm.service.name=$SVC")
c2=$(n2 ps -q --filter "label=com.docker.swarm.service.name=$SVC")
[ -n "$c1" ] && [ -n "$c2" ] || { fail "a task container on each node" "node 1: [$c1] node 2: [$c2]: $(docker service ps --no-trunc "$SVC" 2>&1)"; exit 1; }
NODE1_NAME=$(docker info --format '{{.Name}}')

# the names tasks.SVC resolves to, seen from node 1's task (dnsrr: one
# address per task, no VIP); busybox nslookup lists them after "Name:"
addrs() { docker exec "$c1" nslookup "tasks.$SVC" 2>/dev/null | awk '/^Name:/ { f = 1 } f && /^Address/ { print $2 }' | sort -u; }
two_addrs() { [ "$(addrs | wc -l)" = 2 ]; }
wait_for 20 two_addrs
A=$(addrs)
expect "tasks.$SVC resolves to two addresses on the overlay: $(printf "%s " $A)" test "$(printf '%s\n' "$A" | grep -c .)" = 2
# busybox-static 1.35's wget -T segfaults (exit 139): the timeout applet instead
from1=""; from2=""
for a in $A; do
    from1="$from1 $(docker exec "$c1" timeout 5 wget -q -O - "http://$a:8080/" 2>/dev/null)"
    from2="$from2 $(n2 exec "$c2" timeout 5 wget -q -O - "http://$a:8080/" 2>/dev/null)"
done
expect "node 1's task reaches node 2's by address across the overlay ($from1 )" has "$from1 " " $NODE2_NAME "
expect "node 2's task reaches node 1's by address across the overlay ($from2 )" has "$from2 " " $NODE1_NAME "
# by name across the nodes: each task's own name (SVC.NODEID.TASKID) is a
# DNS name on the overlay. (Not tasks.SVC for this: the embedded DNS shuffles
# its two answers, but getaddrinfo sorts them (RFC 6724, longest prefix
# first), so a client in the same subnet always takes one, here its own.)
name1=$(docker ps --format '{{.Names}}' --filter "label=com.docker.swarm.service.name=$SVC")
name2=$(n2 ps --format '{{.Names}}' --filter "label=com.docker.swarm.service.name=$SVC")
got=$(docker exec "$c1" timeout 5 wget -q -O - "http://$name2:8080/" 2>&1)
expect "node 1's task reaches node 2's by its name $name2 ($got)" test "$got" = "$NODE2_NAME"
got=$(n2 exec "$c2" timeout 5 wget -q -O - "http://$name1:8080/" 2>&1)
expect "node 2's task reaches node 1's by its name $name1 ($got)" test "$got" = "$NODE1_NAME"
expect "host-mode published port on node 1 ($NODE1_ADDR:$PORT) answers from node 1" \
    test "$(curl -s -m 5 "http://$NODE1_ADDR:$PORT/")" = "$NODE1_NAME"
expect "host-mode published port on node 2 ($NODE2_ADDR:$PORT) answers from node 2" \
    test "$(curl -s -m 5 "http://$NODE2_ADDR:$PORT/")" = "$NODE2_NAME"

# stop: nothing of node 2 left, node 1 out of the swarm
pid=$(cat "$DIR/run.pid")
run sh "$NODE" stop "$DIR"
expect "node.sh stop: exit 0, DIR removed" eval '[ $RC = 0 ] && [ ! -e "$DIR" ]'
expect "no netns $NS left" test ! -e "/run/netns/$NS"
expect "no veth ${NS}h left" eval '! ip link show "${NS}h" > /dev/null 2>&1'
expect "node 2's dockerd (pid $pid) is gone" eval '! kill -0 "$pid" 2> /dev/null'
expect "nothing mounted under $DIR" eval '! grep -qF " $DIR/" /proc/self/mountinfo'
expect "node 1 is out of the swarm (inactive, as before)" test "$(docker info --format '{{.Swarm.LocalNodeState}}')" = inactive
gw_after=no; docker network inspect docker_gwbridge > /dev/null 2>&1 && gw_after=yes
expect "docker_gwbridge on node 1 as before ($gw_before)" test "$gw_after" = "$gw_before"
expect "no container of the service left on node 1" test -z "$(docker ps -aq --filter "label=com.docker.swarm.service.name=$SVC")"
run sh "$NODE" stop "$DIR"
expect "node.sh stop again: a no-op" test "$RC" = 0
