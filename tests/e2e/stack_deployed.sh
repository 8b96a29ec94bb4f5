#!/bin/bash
# End to end: stack.deployed on a real two-node Docker Swarm
# (tests/fixtures/swarm/node.sh: node 1 the default engine and manager,
# node 2 a second dockerd in a netns), through the manager's Engine API.
# The stack (tests/fixtures/stack-swarm): db with a healthcheck, init a job
# depending on it (service_healthy), web depending on init
# (service_completed_successfully, a host-mode port), worker with 2 replicas
# at most 1 per node. Covers: plan, apply in dependency order (init's log
# shows db answered, init created after db ran, web after init completed),
# docker stack ls / ps, the no-op (no process: strace), a .env edit planned
# and applied as one service's update (the others' versions unchanged, the
# job not run again), a job run again when its own spec changed, a change
# by hand seen and put back, a foreign service in the stack's namespace
# refused, a missing bind source refused at plan time, a service dropped
# from the files removed, a service that
# never turns healthy failing within its timeout with its task error, node
# and log tail, and teardown (purge = true) leaving nothing of the stack on
# either node, its named volume included.
# No IPVS here: endpoint_mode dnsrr, published_mode host.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
docker_require "stack.deployed"
. "$ROOT/tests/fixtures/swarm/lib.sh"
P=$PROVISION
swarm_node2_up "stack.deployed" strace python3 curl || exit 1
run sh "$NODE" swarm "$DIR"
expect "the two nodes form a swarm" test "$RC" = 0
[ "$RC" = 0 ] || exit 1
. "$DIR/env"
TAG="provision-test/busybox:stack$$"
busybox_image "$TAG" || { fail "busybox image" "busybox_image $TAG failed"; exit 1; }
run sh "$NODE" load-image "$DIR" "$TAG"
expect "the busybox image on both nodes" test "$RC" = 0

ST="pvst$$"; BAD="pvsb$$"
PORT=$(free_port)
cp -r "$ROOT/tests/fixtures/stack-swarm" "$SANDBOX/proj"
export PROVISION_STATE_DIR="$SANDBOX/state"
R="$SANDBOX/stack.lua"
cat > "$R" <<'EOF'
local v = vars { name = "", dir = "", image = "", port = "", node2 = "", profile = "workers" }
step "stack" { stack.deployed { v.name, dir = v.dir, endpoint_mode = "dnsrr", published_mode = "host",
  timeout = "90s", env = { IMAGE = v.image, WEB_PORT = v.port }, nodes = { v.node2 }, profiles = { v.profile },
  purge = true } }
EOF
RB="$SANDBOX/bad.lua"
cat > "$RB" <<'EOF'
local v = vars { name = "", dir = "", image = "", node2name = "", node2 = "" }
step "bad" { stack.deployed { v.name, dir = v.dir, endpoint_mode = "dnsrr", timeout = "20s",
  env = { IMAGE = v.image, NODE2 = v.node2name }, nodes = { v.node2 } } }
EOF
V="-e name=$ST -e dir=$SANDBOX/proj -e image=$TAG -e port=$PORT -e node2=$NODE2_HOST"
VB="-e name=$BAD -e dir=$SANDBOX/proj/bad -e image=$TAG -e node2name=$NODE2_NAME -e node2=$NODE2_HOST"
cleanup_add "'$P' teardown '$R' $V > /dev/null 2>&1; '$P' teardown '$RB' $VB > /dev/null 2>&1"

# api PATH: GET from the manager's Engine API; py EXPR on its JSON (j)
api() { curl -s --unix-socket /var/run/docker.sock "http://localhost$1"; }
# norm: an RFC 3339 time with its fraction padded to 9 digits (Go trims
# trailing zeros), so that two compare as text
py() { python3 -c "import json,sys
def norm(s): d, _, f = s.rstrip('Z').partition('.'); return d + '.' + f.ljust(9, '0')
j=json.load(sys.stdin); print($1)"; }
svc_field() { docker service inspect -f "$2" "${ST}_$1"; }
# the earliest Status.Timestamp of SERVICE's tasks in STATE; a service's CreatedAt
task_time() { api "/tasks?filters=%7B%22service%22:%5B%22${ST}_$1%22%5D%7D" \
    | py "min(norm(t['Status']['Timestamp']) for t in j if t['Status']['State']=='$2')"; }
created() { api "/services/${ST}_$1" | py "norm(j['CreatedAt'])"; }
later() { python3 -c "import sys; sys.exit(0 if sys.argv[1] > sys.argv[2] else 1)" "$1" "$2"; }

run "$P" plan "$R" $V
expect "plan: every service, the network, config and secret to create (rc 3)" eval '[ $RC = 3 ] && has "$OUT" "would-change" \
    && has "$OUT" "config ${ST}_webconf: to create" && has "$OUT" "secret ${ST}_token: to create" \
    && has "$OUT" "service db: to create" && has "$OUT" "service init: to create" && has "$OUT" "service web: to create" \
    && has "$OUT" "service worker: to create" && has "$OUT" "network ${ST}_default: to create"'

t0=$(date +%s)
run "$P" apply "$R" $V
t1=$(date +%s)
expect "apply: the stack deployed (rc 0, changed, $((t1 - t0)) s)" eval '[ $RC = 0 ] && has "$OUT" "changed=1 failed=0"'
applied="$OUT$ERR"
[ "$RC" = 0 ] || exit 1
run docker service logs --raw "${ST}_init"
expect "init (a job) reached db by name over the overlay once db was healthy" \
    eval 'has "$OUT" "db-says-hello" && has "$OUT" "init-done"'
db_run=$(task_time db running); init_made=$(created init); init_done=$(task_time init complete); web_made=$(created web)
expect "init created after db ran healthy ($init_made > $db_run)" later "$init_made" "$db_run"
expect "web created after init completed ($web_made > $init_done)" later "$web_made" "$init_done"
expect "init is a job that completed" test "$(svc_field init '{{if .Spec.Mode.ReplicatedJob}}job{{end}}')" = job
db_node=$(docker service ps --filter desired-state=running --format '{{.Node}}' "${ST}_db")
# db's container is where the scheduler put it, node 1 or node 2 (and its
# named volume with it): asked of that node's engine
dbf="label=com.docker.swarm.service.name=${ST}_db"
if [ -n "$(docker ps -q --filter "$dbf")" ]; then
    h=$(docker inspect -f '{{.State.Health.Status}}' $(docker ps -q --filter "$dbf") 2>/dev/null | head -1)
    db_engine=unix:///var/run/docker.sock
else
    h=$(n2 inspect -f '{{.State.Health.Status}}' $(n2 ps -q --filter "$dbf") 2>/dev/null | head -1)
    db_engine=$NODE2_HOST
fi
expect "db's container is healthy (on $db_node)" test "$h" = healthy
run docker service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' "${ST}_worker"
expect "worker: 2 tasks running, one on each node" eval '[ "$(printf "%s\n" "$OUT" | grep -c " Running")" = 2 ] \
    && [ "$(printf "%s\n" "$OUT" | cut -d" " -f1 | sort -u | wc -l)" = 2 ] && has "$OUT" "^$NODE2_NAME "'
run docker stack ls --format '{{.Name}} {{.Services}}'
expect "docker stack ls shows the stack with its 4 services" has "$OUT" "^$ST 4$"
run docker stack ps "$ST" --filter desired-state=running --format '{{.Name}}'
expect "docker stack ps shows its running tasks (db, web, 2 workers)" test "$(printf '%s\n' "$OUT" | grep -c .)" = 4
web=""
for a in $NODE1_ADDR $NODE2_ADDR; do web="$web$(curl -s -m 3 "http://$a:$PORT/")"; done
expect "web answers on its host-mode port ($web)" test "$web" = web-1
conf=""; tok=""
for a in $NODE1_ADDR $NODE2_ADDR; do
    conf="$conf$(curl -s -m 3 "http://$a:$PORT/conf.txt")"; tok="$tok$(curl -s -m 3 "http://$a:$PORT/token.txt")"
done
expect "web has the config's content ($conf) and the secret ($tok)" test "$conf $tok" = "conf-from-file has-token"
expect "the secret's content is in no output and not in the state" \
    eval '! grep -rq s3cr3t-token "$PROVISION_STATE_DIR" && ! has "$applied" s3cr3t-token'

vol="${ST}_dbdata"
expect "db's named volume on its node ($db_node)" eval 'docker volume inspect "$vol" > /dev/null 2>&1 || n2 volume inspect "$vol" > /dev/null 2>&1'

run strace -f -e trace=execve -o "$SANDBOX/trace" "$P" apply "$R" $V
expect "re-apply is a no-op (rc 0, changed=0)" eval '[ $RC = 0 ] && has "$OUT" "ok=1 changed=0 failed=0"'
expect "the no-op spawns nothing (one execve: provision's own)" test "$(grep -c 'execve(' "$SANDBOX/trace")" = 1

v_db=$(svc_field db '{{.Version.Index}}'); v_init=$(svc_field init '{{.Version.Index}}')
v_worker=$(svc_field worker '{{.Version.Index}}'); v_web=$(svc_field web '{{.Version.Index}}')
sed -i 's/^WEB_VERSION=1$/WEB_VERSION=2/' "$SANDBOX/proj/.env"
run "$P" plan "$R" $V
expect "plan after a .env edit: only web changes" eval '[ $RC = 3 ] && has "$OUT" "service web: spec changed" \
    && [ "$(printf "%s\n" "$OUT" | grep -o "service [a-z]*:" | sort -u)" = "service web:" ]'
run "$P" apply "$R" $V
expect "apply updates web" eval '[ $RC = 0 ] && has "$OUT" "changed=1 failed=0"'
expect "db, init, worker untouched (Version.Index $v_db $v_init $v_worker)" test \
    "$(svc_field db '{{.Version.Index}}') $(svc_field init '{{.Version.Index}}') $(svc_field worker '{{.Version.Index}}')" \
    = "$v_db $v_init $v_worker"
expect "web updated (Version.Index was $v_web)" test "$(svc_field web '{{.Version.Index}}')" != "$v_web"
expect "the job did not run again (one init-done)" test "$(docker service logs --raw "${ST}_init" | grep -c init-done-)" = 1
web=""
for a in $NODE1_ADDR $NODE2_ADDR; do web="$web$(curl -s -m 3 "http://$a:$PORT/")"; done
expect "web answers with the new .env's value ($web)" test "$web" = web-2
run "$P" apply "$R" $V
expect "then a no-op again" eval '[ $RC = 0 ] && has "$OUT" "ok=1 changed=0 failed=0"'

# a job whose spec changed runs again (and only it changes)
v_web=$(svc_field web '{{.Version.Index}}')
sed -i 's/^INIT_RUN=1$/INIT_RUN=2/' "$SANDBOX/proj/.env"
run "$P" plan "$R" $V
expect "plan after INIT_RUN changed: only init" eval '[ $RC = 3 ] \
    && [ "$(printf "%s\n" "$OUT" | grep -o "service [a-z]*:" | sort -u)" = "service init:" ]'
run "$P" apply "$R" $V
expect "apply runs the job again (init-done-2 in its log)" eval '[ $RC = 0 ] && has "$OUT" "changed=1 failed=0" \
    && docker service logs --raw "${ST}_init" | grep -qx init-done-2'
expect "db, worker, web untouched" test \
    "$(svc_field db '{{.Version.Index}}') $(svc_field worker '{{.Version.Index}}') $(svc_field web '{{.Version.Index}}')" \
    = "$v_db $v_worker $v_web"

docker service update -q --detach --replicas 1 "${ST}_worker" > /dev/null
run "$P" plan "$R" $V
expect "a change by hand is seen (worker scaled to 1)" eval '[ $RC = 3 ] \
    && has "$OUT" "service worker: changed on the engine since it was deployed (Mode.Replicated.Replicas)"'
run "$P" apply "$R" $V
expect "apply puts it back (2 replicas running)" eval '[ $RC = 0 ] && has "$OUT" "changed=1 failed=0" \
    && [ "$(docker service ps --filter desired-state=running --format "{{.CurrentState}}" "${ST}_worker" | grep -c ^Running)" = 2 ]'

# a bind mount whose source is missing: refused at plan time, nothing created
cat > "$SANDBOX/bind.lua" <<'EOF'
local v = vars { dir = "", image = "" }
step "bind" { stack.deployed { "pvbind", dir = v.dir, env = { IMAGE = v.image } } }
EOF
run "$P" plan "$SANDBOX/bind.lua" -e dir="$SANDBOX/proj/bind" -e image="$TAG"
expect "a missing bind source is a plan-time error naming it" eval '[ $RC = 1 ] \
    && has "$OUT$ERR" "service a: bind mount source $SANDBOX/proj/bind/missing-folder does not exist on this machine" \
    && [ -z "$(docker service ls -q --filter label=com.docker.stack.namespace=pvbind)" ]'

# a service of the stack's namespace that provision did not deploy: refused, untouched
docker service create -q --detach --no-resolve-image --name "${ST}_foreign" --label "com.docker.stack.namespace=$ST" \
    "$TAG" sleep 1000 > /dev/null
run "$P" plan "$R" $V
expect "a foreign service in the stack's namespace: the check fails naming it" eval '[ $RC != 0 ] && [ $RC != 3 ] \
    && has "$OUT$ERR" "service ${ST}_foreign of stack $ST was not deployed by provision"'
docker service rm "${ST}_foreign" > /dev/null

# a service no longer in the files (its profile off) is removed, as --prune
run "$P" plan "$R" $V -e profile=none
expect "plan without the workers profile: worker to remove" eval '[ $RC = 3 ] \
    && has "$OUT" "service ${ST}_worker: not in the compose file: to remove"'
run "$P" apply "$R" $V -e profile=none
expect "apply removes it, nothing else" eval '[ $RC = 0 ] && has "$OUT" "changed=1 failed=0" \
    && ! docker service inspect "${ST}_worker" > /dev/null 2>&1 && [ "$(svc_field db "{{.Version.Index}}")" = "$v_db" ]'
run "$P" apply "$R" $V -e profile=none
expect "then a no-op" eval '[ $RC = 0 ] && has "$OUT" "ok=1 changed=0 failed=0"'

t0=$(date +%s)
run "$P" apply "$RB" $VB
t1=$(date +%s)
expect "a service that never turns healthy: exit 1 within its timeout (20s: took $((t1 - t0)) s)" \
    eval '[ $RC = 1 ] && [ $((t1 - t0)) -le 30 ]'
all="$OUT$ERR"
expect "the failure names the service, its task's error and node 2" eval 'has "$all" "service sick: " \
    && has "$all" "on node $NODE2_NAME" && has "$all" "unhealthy container"'
expect "and the service's log tail from node 2" has "$all" "sick-service-says-hi"
run "$P" teardown "$RB" $VB
expect "teardown of the failed stack" test "$RC" = 0

run "$P" plan --teardown "$R" $V
expect "plan --teardown: exit 3, the services, networks and the volume on db's node (purge) named" \
    eval '[ $RC = 3 ] && has "$OUT" "- service ${ST}_web" && has "$OUT" "- network ${ST}_" && has "$OUT" "- volume $vol on $db_engine"'
expect "... and changed nothing: the services are there" test -n "$(docker service ls -q --filter "label=com.docker.stack.namespace=$ST")"
run "$P" teardown "$R" $V
expect "teardown: rc 0" test "$RC" = 0
lbl="label=com.docker.stack.namespace=$ST"
expect "no service of the stack left" test -z "$(docker service ls -q --filter "$lbl")"
expect "no volume of the stack on node 1 or node 2 (purge = true)" \
    eval '! docker volume inspect "$vol" > /dev/null 2>&1 && ! n2 volume inspect "$vol" > /dev/null 2>&1'
expect "no config or secret of the stack left" test -z "$(docker config ls -q --filter "$lbl"; docker secret ls -q --filter "$lbl")"
expect "no network of the stack on node 1 or node 2" test -z "$(docker network ls -q --filter "$lbl"; n2 network ls -q --filter "$lbl")"
expect "no container of the stack on node 1 or node 2 (the job's too)" \
    test -z "$(docker ps -aq --filter "$lbl"; n2 ps -aq --filter "$lbl"; docker ps -aq --filter "label=com.docker.stack.namespace=$BAD"; n2 ps -aq --filter "label=com.docker.stack.namespace=$BAD")"
expect "docker stack ls no longer lists it" eval '! docker stack ls --format "{{.Name}}" | grep -qx "$ST"'
# Swarm 20.10 keeps a removed job's finished tasks in its store for good:
# docker stack ps may list those, all Complete, and nothing else
run docker stack ps "$ST" --format '{{.CurrentState}}'
expect "docker stack ps: no task left but the job's finished one" eval '! printf "%s\n" "$OUT" | grep . | grep -qv "^Complete"'
run "$P" teardown "$R" $V
expect "teardown again: a no-op" test "$RC" = 0
