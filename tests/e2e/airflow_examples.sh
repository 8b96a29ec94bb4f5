# tests/e2e/airflow_examples.sh: recipes/examples/airflow-custom.lua, the
# customizing example: it includes the quick start, pins 2.9.3, turns the
# example DAGs off by editing the compose YAML (yaml module) and adds a DAG.
# The real 2.9.3 compose file is served locally; the stack is not started
# (tests/e2e/airflow_quickstart.sh does that for the quick start itself):
# `docker-compose config` of the edited file must differ from upstream's in
# AIRFLOW__CORE__LOAD_EXAMPLES only.
# compose-matrix: run again with v1 (tests/run)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/airflow-standins/lib.sh"

docker_or_skip "airflow example" || exit 0
modules_or_fail "airflow example" compose docker fs http sys yaml || exit 0
EX=$ROOT/recipes/examples/airflow-custom.lua
DIR=$SANDBOX/custom-e2e
mkdir -p "$SANDBOX/www/docs/apache-airflow/2.9.3"
cp "$ROOT/tests/fixtures/airflow/docker-compose-2.9.3.yaml" "$SANDBOX/www/docs/apache-airflow/2.9.3/docker-compose.yaml"
. "$ROOT/tests/servers/httpd.sh"
start_httpd --root "$SANDBOX/www"
VARS="-e docs_base=$BASE/static/docs/apache-airflow -e dir=$DIR -e min_memory=1GiB -e min_cpus=1 -e min_disk=1GB"
ONLY='--only project\ folder --only compose\ file --only no\ example\ DAGs --only mounted\ folders --only hello\ DAG'

run "$P" list $EX
expect "list: the example's steps, in order, Flower gone" test "$(printf '%s\n' "$OUT" | sed -n 's/^ *[0-9]*\.  \(.*\)  (.*/\1/p' | tr '\n' ',')" = \
    "project folder,compose file,no example DAGs,mounted folders,hello DAG,environment,initialize the database,start,web server health,REST API,"
expect "list: version pinned to 2.9.3 by the include" has "$OUT" "version = 2.9.3"

run eval "\"$P\" $EX $VARS $ONLY"
expect "apply (files only): exit 0" test "$RC" = 0
expect "apply: 5 steps changed" has "$OUT" "changed=5"
expect "upstream file kept byte for byte" cmp -s "$DIR/docker-compose.upstream.yaml" "$ROOT/tests/fixtures/airflow/docker-compose-2.9.3.yaml"
expect "hello DAG written" grep -q 'DAG("hello"' "$DIR/dags/hello.py"
(cd "$DIR" && docker-compose -f docker-compose.upstream.yaml config > "$SANDBOX/up.cfg" 2>/dev/null && docker-compose config > "$SANDBOX/ours.cfg" 2>/dev/null)
expect "docker-compose reads both files" test -s "$SANDBOX/up.cfg" -a -s "$SANDBOX/ours.cfg"
changed=$(diff "$SANDBOX/up.cfg" "$SANDBOX/ours.cfg" | grep '^[<>]' | sort | uniq -c | sed 's/^ *//' | tr '\n' '|')
expect "the only difference is LOAD_EXAMPLES, in all 7 Airflow services" test "$changed" = \
    '7 <       AIRFLOW__CORE__LOAD_EXAMPLES: "true"|7 >       AIRFLOW__CORE__LOAD_EXAMPLES: "false"|'

run eval "\"$P\" $EX $VARS $ONLY"
expect "re-run: nothing changed" has "$OUT" "ok=5 changed=0 failed=0"

# upstream changes (a new release of the file): the edit follows
sed -i 's/AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: .true./AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: '"'false'"'/' "$SANDBOX/www/docs/apache-airflow/2.9.3/docker-compose.yaml"
touch -d '+1 minute' "$SANDBOX/www/docs/apache-airflow/2.9.3/docker-compose.yaml"
run eval "\"$P\" $EX $VARS $ONLY"
expect "upstream changed: downloaded again and edited again" has "$OUT" "changed=2"
expect "... the new upstream setting is in our file" grep -Eq "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: [\"']false[\"']" "$DIR/docker-compose.yaml"

run "$P" teardown $EX $VARS
expect "teardown: exit 0, folder gone" test "$RC" = 0 -a ! -e "$DIR"
