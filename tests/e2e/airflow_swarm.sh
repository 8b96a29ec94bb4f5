#!/bin/bash
# End to end: recipes/airflow-swarm.lua on a REAL two-node Docker Swarm
# (tests/fixtures/swarm/node.sh start: node 1 the default engine, node 2 a
# second dockerd in a netns; NOT node.sh swarm: the recipe makes the swarm),
# with the REAL unmodified compose files served as the docs site serves them
# and the stand-in images (tests/fixtures/airflow-standins/: not Airflow),
# the Airflow image loaded on node 2 too (no registry). No IPVS here:
# -e endpoint_mode=dnsrr -e published_mode=host; -e workers=2, node 2
# joined as a worker, node 1 advertising its veth address.
# For 2.1.3 and 3.2.0, each: apply (every endpoint check passed), a Celery
# worker task on each node, docker stack ls, the no-op (changed=0, one
# execve: provision's own), plan after a .env edit naming the one service
# it changes, apply putting .env back without touching a service, teardown
# (purge) leaving no service, network, container or volume of the stack on
# either node, both nodes out of the swarm, the folder gone.
# Never skips: a missing tool or engine is a FAIL. Do not run beside
# swarm_module.sh / stack_deployed.sh (node 1's swarm) or the
# airflow_quickstart tests (ports 8080, 5555, 6379).
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/airflow-standins/lib.sh"
. "$ROOT/tests/fixtures/swarm/lib.sh"
RECIPE="$ROOT/recipes/airflow-swarm.lua"
gw_before=$(docker network ls -q --filter name=^docker_gwbridge$)
# node 1 leaves the swarm only when this test's recipe made it init (it was
# in none before), and docker_gwbridge goes when the init made it
leave_node1() {
    if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != inactive ]; then
        docker swarm leave --force > /dev/null 2>&1
    fi
    [ -n "$gw_before" ] || docker network rm docker_gwbridge > /dev/null 2>&1
    return 0
}
swarm_node2_up "airflow swarm" strace python3 curl || exit 1
cleanup_add "leave_node1"
start_airflow_docs
export PROVISION_STATE_DIR="$SANDBOX/state"

# nothing of stack ST on either node: services, networks, containers, volumes
stack_left() {
    lbl="label=com.docker.stack.namespace=$1"
    docker service ls -q --filter "$lbl" 2> /dev/null
    docker network ls -q --filter "$lbl"; n2 network ls -q --filter "$lbl"
    docker ps -aq --filter "$lbl"; n2 ps -aq --filter "$lbl"
    docker volume ls -q --filter "$lbl"; n2 volume ls -q --filter "$lbl"
}
svc_versions() { # ST: "name version" of each service, sorted
    docker service ls --filter "label=com.docker.stack.namespace=$1" --format '{{.Name}}' | sort \
        | while read -r s; do echo "$s $(docker service inspect -f '{{.Version.Index}}' "$s")"; done
}

airflow_swarm() { # VERSION SERVICES: the whole cycle for one release
    V=$1 NSVC=$2
    airflow_e2e_prereqs "$V" || return 1
    run sh "$NODE" load-image "$DIR" "apache/airflow:$V"
    expect "$V: apache/airflow:$V (stand-in) loaded on node 2" test "$RC" = 0
    ST="pvaf$(printf %s "$V" | tr -d .)$$"
    AF="$SANDBOX/af-$V"
    VARS="-e version=$V -e dir=$AF -e docs_base=$DOCS_BASE -e stack=$ST -e endpoint_mode=dnsrr -e published_mode=host \
-e workers=2 -e nodes=$NODE2_HOST -e advertise=$NODE1_ADDR -e wait=5m $RESOURCE_VARS"
    cleanup_add "'$P' teardown '$RECIPE' $VARS -e purge=true > /dev/null 2>&1"
    case "$V" in
        3.*) HEALTH=/api/v2/monitor/health; want="metadatabase scheduler triggerer dag_processor" ;;
        2.1.*) HEALTH=/health; want="metadatabase scheduler" ;;
        *) HEALTH=/health; want="metadatabase scheduler triggerer" ;;
    esac

    run "$P" plan "$RECIPE" $VARS
    expect "$V: plan: everything to do (rc 3), nothing made" eval '[ $RC = 3 ] && [ ! -e "$AF" ] \
        && [ "$(docker info --format "{{.Swarm.LocalNodeState}}")" = inactive ]'

    t0=$(date +%s)
    run "$P" "$RECIPE" $VARS
    t1=$(date +%s)
    all="$OUT$ERR"
    expect "$V: apply: exit 0, every endpoint check passed ($((t1 - t0)) s)" eval '[ $RC = 0 ] && has "$OUT" "failed=0" \
        && printf "%s" "$OUT" | grep -Eq "\] +web server health +(ok|changed)" && printf "%s" "$OUT" | grep -Eq "\] +REST API +(ok|changed)"'
    if [ "$RC" != 0 ]; then
        printf '%s\n' "$all" | tail -40 | sed 's/^/# /'
        docker service ls --filter "label=com.docker.stack.namespace=$ST" --format '# {{.Name}} {{.Replicas}}'
        "$P" teardown "$RECIPE" $VARS -e purge=true > /dev/null 2>&1   # the next release starts from no swarm
        return 1
    fi
    echo "# $V: apply to healthy: $((t1 - t0)) s"
    [ "$V" != 2.1.3 ] || expect "$V: Flower checked (2.1: always on)" eval 'printf "%s" "$OUT" | grep -Eq "\] +Flower +(ok|changed)"'
    expect "$V: the password and the token never show" eval '! has "$all" eyJstandin'
    expect "$V: node 1 manages the swarm, node 2 is a worker in it" eval \
        '[ "$(docker info --format "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")" = "active true" ] \
        && [ "$(n2 info --format "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")" = "active false" ]'
    expect "$V: node labels airflow=manager / airflow=worker" eval \
        '[ "$(docker node inspect -f "{{index .Spec.Labels \"airflow\"}}" "$NODE2_NAME")" = worker ] \
        && [ "$(docker node inspect -f "{{index .Spec.Labels \"airflow\"}}" self)" = manager ]'
    run docker service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' "${ST}_airflow-worker"
    expect "$V: airflow-worker: 2 tasks running, one on each node" eval '[ "$(printf "%s\n" "$OUT" | grep -c " Running")" = 2 ] \
        && [ "$(printf "%s\n" "$OUT" | cut -d" " -f1 | sort -u | wc -l)" = 2 ] && has "$OUT" "^$NODE2_NAME "'
    run docker service ps --filter desired-state=running --format '{{.Node}}' \
        $(docker service ls -q --filter "label=com.docker.stack.namespace=$ST" | grep -v "$(docker service ls -q --filter name="${ST}_airflow-worker")")
    expect "$V: every other task on the manager" eval '[ -n "$OUT" ] && ! has "$OUT" "$NODE2_NAME"'
    expect "$V: airflow-init a job that completed" eval '[ "$(docker service inspect -f "{{if .Spec.Mode.ReplicatedJob}}job{{end}}" "${ST}_airflow-init")" = job ] \
        && docker service ps --format "{{.CurrentState}}" "${ST}_airflow-init" | grep -q ^Complete'
    run docker stack ls --format '{{.Name}} {{.Services}}'
    expect "$V: docker stack ls shows the stack ($NSVC services)" has "$OUT" "^$ST $NSVC$"
    run curl -sf "http://localhost:8080$HEALTH"
    expect "$V: $HEALTH: $want healthy" python3 -c 'import json,sys; h=json.loads(sys.argv[1])
assert all(h[c]["status"]=="healthy" for c in sys.argv[2].split()), h' "$OUT" "$want"
    expect "$V: docker-compose.swarm.yaml written, x-airflow-common merged away" \
        eval '[ -f "$AF/docker-compose.swarm.yaml" ] && ! grep -q x-airflow-common "$AF/docker-compose.swarm.yaml" \
        && cmp -s "$AF/docker-compose.yaml" "$ROOT/tests/fixtures/airflow/docker-compose-$V.yaml"'

    # ------------------------------------------------------------ no-op
    t0=$(date +%s%N)
    run strace -f -e trace=execve -o "$SANDBOX/trace" "$P" "$RECIPE" $VARS
    t1=$(date +%s%N)
    expect "$V: re-run: exit 0, changed=0 ($(( (t1 - t0) / 1000000 )) ms under strace)" \
        eval '[ $RC = 0 ] && has "$OUT" "changed=0 failed=0"'
    expect "$V: the no-op spawns nothing (one execve: provision's own)" test "$(grep -c 'execve(' "$SANDBOX/trace")" = 1
    t0=$(date +%s%N); "$P" "$RECIPE" $VARS > /dev/null 2>&1; t1=$(date +%s%N)
    echo "# $V: no-op: $(( (t1 - t0) / 1000000 )) ms"

    # --------------------------------------------- .env edited by hand
    cp "$AF/.env" "$SANDBOX/env.orig"
    versions=$(svc_versions "$ST")
    # _AIRFLOW_WWW_USER_PASSWORD: in 2.x's file only airflow-init reads it;
    # 3.x's services read .env whole (env_file), postgres and redis do not
    printf '_AIRFLOW_WWW_USER_PASSWORD=edited\n' >> "$AF/.env"
    case "$V" in
        3.*) changes="airflow-apiserver airflow-dag-processor airflow-init airflow-scheduler airflow-triggerer airflow-worker" ;;
        *) changes="airflow-init" ;;
    esac
    run "$P" plan "$RECIPE" $VARS
    expect "$V: plan after a .env edit: rc 3, environment, and the services it changes only ($changes)" \
        eval '[ $RC = 3 ] && has "$OUT" "environment .*would-change" \
        && [ "$(printf "%s\n" "$OUT" | grep -o "service [a-z0-9_-]*: spec changed" | sed "s/^service //; s/: spec changed//" | sort -u | xargs)" = "$changes" ] \
        && ! has "$OUT" edited'
    run "$P" "$RECIPE" $VARS
    expect "$V: apply: .env put back, no service touched" eval '[ $RC = 0 ] && has "$OUT" "changed=1 failed=0" \
        && cmp -s "$AF/.env" "$SANDBOX/env.orig" && [ "$(svc_versions "$ST")" = "$versions" ]'

    # ------------------------------------------------------------ teardown
    run "$P" teardown "$RECIPE" $VARS -e purge=true
    expect "$V: teardown: exit 0" test "$RC" = 0
    left=$(stack_left "$ST")
    expect "$V: no service, network, container or volume of the stack on either node" test -z "$left"
    expect "$V: both nodes out of the swarm" eval '[ "$(docker info --format "{{.Swarm.LocalNodeState}}")" = inactive ] \
        && [ "$(n2 info --format "{{.Swarm.LocalNodeState}}")" = inactive ]'
    expect "$V: the project folder is gone" test ! -e "$AF"
    run "$P" teardown "$RECIPE" $VARS -e purge=true
    expect "$V: teardown again: exit 0" test "$RC" = 0
}

airflow_swarm 2.1.3 7
airflow_swarm 3.2.0 8
