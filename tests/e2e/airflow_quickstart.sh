# tests/e2e/airflow_quickstart.sh: recipes/airflow-quickstart.lua end to end,
# offline. The REAL 2.1.3 docker-compose.yaml (tests/fixtures/airflow/) is
# served by a local HTTP server; the images it names (apache/airflow:2.1.3,
# postgres:13, redis:latest) are STAND-INS built from busybox by
# tests/fixtures/airflow-standins/build.sh (they answer the compose file's
# own healthchecks, /health, /api/v1/pools and Flower the way Airflow does;
# they are not Airflow). The recipe runs unmodified apart from -e variables.
#   apply -> no-op re-run -> plan -> airflow-teardown.lua -> nothing left
#   apply -> provision teardown airflow-quickstart.lua -> nothing left
# plus the preflight failures (no engine, port taken) and their messages.
# compose-matrix: run again with v1 (tests/run)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/airflow-standins/lib.sh"

airflow_e2e_prereqs || exit 0
start_airflow_docs
QS=$ROOT/recipes/airflow-quickstart.lua
TD=$ROOT/recipes/airflow-teardown.lua
DIR=$SANDBOX/airflow-e2e          # compose project name: airflow-e2e
PROJECT=airflow-e2e
cleanup_add "project_purge $PROJECT"
VARS="-e docs_base=$DOCS_BASE -e dir=$DIR $RESOURCE_VARS"

# ---------------------------------------------------------------- preflight
run env DOCKER_HOST=unix://$SANDBOX/no-docker.sock "$P" $QS $VARS
expect "no engine: exit 1, nothing made" test "$RC" = 1 -a ! -e "$DIR"
expect "no engine: the message names the fix" has "$OUT$ERR" "no Docker engine: run provision recipes/docker-host.lua"

python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(300)' > "$SANDBOX/taken.port" &
TAKEN_PID=$!
cleanup_add "kill $TAKEN_PID 2>/dev/null"
i=0; while [ ! -s "$SANDBOX/taken.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
run "$P" $QS $VARS -e web_port="$(cat "$SANDBOX/taken.port")"
expect "web port taken by someone else: exit 1, nothing made" test "$RC" = 1 -a ! -e "$DIR"
expect "web port taken: the message says so" has "$OUT$ERR" "web port free"
kill $TAKEN_PID 2>/dev/null

# -------------------------------------------------------------------- apply
t0=$(date +%s)
run "$P" $QS $VARS
expect "apply: exit 0 ($(( $(date +%s) - t0 ))s)" test "$RC" = 0
if [ "$RC" != 0 ]; then   # the rest would only repeat this failure
    docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '# {{.Names}} {{.Status}}'
    exit 1
fi
# the six steps that make something changed; the three endpoint checks are
# ok or changed depending on whether the stack answered at the first try
all_made() {
    for s in "project folder" "compose file" "mounted folders" environment "initialize the database" start; do
        printf '%s\n' "$OUT" | grep -Eq "\] $s +changed" || return 1
    done
    has "$OUT" "failed=0"
}
expect "apply: every step ran" all_made
expect "the folder has the compose file, served byte for byte" cmp -s "$DIR/docker-compose.yaml" "$ROOT/tests/fixtures/airflow/docker-compose-2.1.3.yaml"
expect "dags/ logs/ plugins/" test -d "$DIR/dags" -a -d "$DIR/logs" -a -d "$DIR/plugins"
expect ".env: AIRFLOW_UID is the invoking user's uid, AIRFLOW_GID=0" \
    test "$(grep -E '^AIRFLOW_(UID|GID)=' "$DIR/.env" | sort | tr '\n' ' ')" = "AIRFLOW_GID=0 AIRFLOW_UID=$(id -u) "
expect ".env is 0600" test "$(stat -c %a "$DIR/.env")" = 600
init_state=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=airflow-init" --format '{{.Status}}')
expect "airflow-init ran to completion (exit 0)" has "$init_state" "Exited (0)"
unhealthy=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}} {{.Status}}' | grep -v '(healthy)' || true)
running=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" -q | wc -l)
expect "six services up and healthy" test "$running" = 6 -a -z "$unhealthy"
run curl -sf http://localhost:8080/health
expect "/health: metadatabase and scheduler healthy" python3 -c '
import json,sys; h=json.loads(sys.argv[1])
assert h["metadatabase"]["status"]=="healthy" and h["scheduler"]["status"]=="healthy"' "$OUT"
run curl -s -o /dev/null -w '%{http_code}' http://localhost:8080/api/v1/pools
expect "/api/v1/pools without credentials: 401" test "$OUT" = 401
run curl -sf -u airflow:airflow http://localhost:8080/api/v1/pools
expect "/api/v1/pools with airflow/airflow lists default_pool" has "$OUT" '"name":"default_pool"'
run curl -sf http://localhost:5555/
expect "Flower answers on 5555" test "$RC" = 0

# ------------------------------------------------------------ no-op re-run
t0=$(date +%s%N)
run "$P" $QS $VARS --json
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "re-run: exit 0, all ok (${ms} ms)" test "$RC" = 0
expect "re-run: nothing changed" has "$OUT" '"event":"summary","ok":9,"changed":0,"failed":0'
expect "re-run: under 3 s" test "$ms" -lt 3000
run "$P" plan $QS $VARS
expect "plan with the stack up: exit 0 (nothing to change)" test "$RC" = 0

# a stopped service is noticed and brought back
docker stop "$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.service=flower)" > /dev/null
run "$P" plan $QS $VARS
expect "plan with flower stopped: exit 3" test "$RC" = 3
run "$P" $QS $VARS
expect "apply with flower stopped: exit 0, flower back" test "$RC" = 0 -a "$(curl -s -o /dev/null -w '%{http_code}' http://localhost:5555/)" = 200

# .env edited by hand: the environment step puts the recorded content back,
# so the stack's input is what up and airflow-init last saw: plan says only
# that step would change, and apply changes only it
cp "$DIR/.env" "$SANDBOX/env.orig"
printf 'EDITED_BY_HAND=1\n' >> "$DIR/.env"
run "$P" plan $QS $VARS
expect "plan after a hand edit of .env: exit 3, the environment step would change" \
    eval '[ $RC -eq 3 ] && has "$OUT" "environment .*would-change"'
expect "plan after a hand edit of .env: initialize and start stay ok (the same .env comes back)" \
    eval 'printf "%s" "$OUT" | grep -Eq "initialize the database +ok" && printf "%s" "$OUT" | grep -Eq "\] start +ok"'
run "$P" $QS $VARS
expect "apply after the hand edit: only the environment step changed, as plan said" \
    eval '[ $RC -eq 0 ] && has "$OUT" "changed=1 failed=0" && printf "%s" "$OUT" | grep -Eq "environment +changed"'
expect "the .env is the recorded one again" cmp -s "$DIR/.env" "$SANDBOX/env.orig"
# another admin account: a new .env, which up reads: both would change
run "$P" plan $QS $VARS -e user=admin
expect "plan with another admin user: start would change after the .env step" \
    has "$OUT" "start .*would-change .*\.env would change first (step .environment.)"

# ----------------------------------------------------- the teardown recipe
run "$P" $TD -e dir="$DIR"
expect "airflow-teardown.lua: exit 0" test "$RC" = 0
expect "teardown: nothing of the project remains" nothing_left "$PROJECT" "$DIR"
expect "teardown: the images stay (no purge)" sh -c "docker image inspect -f . apache/airflow:2.1.3 postgres:13 redis:latest > /dev/null"
run "$P" $TD -e dir="$DIR"
expect "teardown again: exit 0, nothing to do" test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep 'changed=0')"

# ------------------------------------- apply again, then `provision teardown`
run "$P" $QS $VARS
expect "apply after teardown: exit 0" test "$RC" = 0
run "$P" teardown $QS $VARS
expect "provision teardown airflow-quickstart.lua: exit 0" test "$RC" = 0
expect "provision teardown: nothing of the project remains" nothing_left "$PROJECT" "$DIR"
