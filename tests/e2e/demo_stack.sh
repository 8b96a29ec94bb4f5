# tests/e2e/demo_stack.sh: recipes/demo-stack.lua end to end (offline by
# design: the image is imported from busybox-static, no registry).
#   apply -> no-op re-run -> plan -> teardown -> nothing left (containers,
#   volumes, networks, image, folder); a wrong password is refused (401).
#   Then -e image= naming an image that was there before: apply does not
#   import it, and teardown keeps it.
# compose-matrix: run again with v1 (tests/run)
# engine-matrix: run again on the newer engine (tests/run)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/airflow-standins/lib.sh"

docker_or_skip "demo stack" || exit 0
modules_or_fail "demo stack" archive compose docker fs http sys || exit 0
DEMO=$ROOT/recipes/demo-stack.lua
DIR=$SANDBOX/demo-e2e
PROJECT=demo-e2e
IMAGE=provision-demo-e2e/busybox:$$
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup_add "project_purge $PROJECT; docker image rm -f $IMAGE > /dev/null 2>&1"
VARS="-e dir=$DIR -e web_port=$PORT -e image=$IMAGE -e password=e2e-pw-$$"

run "$P" plan $DEMO $VARS
expect "plan on a fresh machine: exit 3 (changes pending)" test "$RC" = 3
expect "plan changed nothing" test ! -e "$DIR"

t0=$(date +%s)
run "$P" $DEMO $VARS
expect "apply: exit 0 ($(( $(date +%s) - t0 ))s)" test "$RC" = 0
[ "$RC" = 0 ] || exit 1
expect "apply: every step changed something" has "$OUT" "ok=2 changed=8 failed=0"
expect "the image was imported" test -n "$(docker images -q "$IMAGE")"
state=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Label "com.docker.compose.service"}} {{.Status}}' | sort)
expect "init exited 0; web and worker healthy" test "$(printf '%s\n' "$state" | sed 's/ (\([a-z]*\))$/ \1/; s/ Up .* / up /; s/ Exited (0) .*/ exited0/' | tr '\n' ' ')" = "init exited0 web up healthy worker up healthy "
run curl -sf "http://127.0.0.1:$PORT/health"
expect "/health: init and worker healthy" python3 -c '
import json,sys; h=json.loads(sys.argv[1]); assert h["init"]["status"]=="healthy" and h["worker"]["status"]=="healthy"' "$OUT"
run curl -s -o /dev/null -w '%{http_code}' -u demo:wrong "http://127.0.0.1:$PORT/api/hello"
expect "/api/hello with a wrong password: 401" test "$OUT" = 401
expect ".env holds the password, mode 0600" test "$(stat -c %a "$DIR/.env")" = 600 -a -n "$(grep "^WEB_PASSWORD=e2e-pw-$$\$" "$DIR/.env")"
expect "the password never shows in the output" test -z "$(printf '%s' "$OUT" | grep "e2e-pw-$$")"

t0=$(date +%s%N)
run "$P" $DEMO $VARS
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "re-run: exit 0, all ok (${ms} ms)" test "$RC" = 0
expect "re-run: nothing changed" has "$OUT" "ok=10 changed=0 failed=0"
run "$P" plan $DEMO $VARS
expect "plan with the stack up: exit 0" test "$RC" = 0

# another busybox (a byte appended: still static, another digest): the root
# filesystem is rebuilt, so plan shows the chain apply then walks: the
# archive of it, the image imported from that, and up, which recreates the
# containers on the new image
BB=$SANDBOX/busybox-other
cp /bin/busybox "$BB" && printf '\0' >> "$BB"
run "$P" plan $DEMO $VARS -e busybox=$BB
expect "plan with another busybox: the archive, the image and start would change (rc 3)" \
    eval '[ $RC -eq 3 ] && has "$OUT" "image archive .*would-change" && has "$OUT" "image .*would-change .*rootfs.tar would change first" && has "$OUT" "start .*would-change .*image $IMAGE would change first (step .image.)"'
run "$P" $DEMO $VARS -e busybox=$BB
expect "apply with another busybox: the archive, the image and start changed" \
    eval '[ $RC -eq 0 ] && has "$OUT" "image archive .*changed" && printf "%s" "$OUT" | grep -Eq "^\[4/10\] +image +changed" && printf "%s" "$OUT" | grep -Eq "^\[8/10\] +start +changed"'

# the worker stops: the stack is no longer healthy, apply brings it back
docker stop "$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.service=worker)" > /dev/null
run "$P" plan $DEMO $VARS
expect "plan with the worker stopped: exit 3" test "$RC" = 3
run "$P" $DEMO $VARS
expect "apply with the worker stopped: exit 0" test "$RC" = 0

# an image the user already has (tagged by hand, not imported by the recipe)
PRE=provision-demo-e2e/pre:$$
cleanup_add "docker image rm -f $PRE > /dev/null 2>&1"
docker tag "$IMAGE" "$PRE"

run "$P" plan --teardown $DEMO $VARS
expect "plan --teardown: exit 3, the project's containers, its network and (undo \"image\") the image named" \
    eval '[ $RC = 3 ] && has "$OUT" "container $PROJECT[-_]web[-_]1 (running)" && has "$OUT" "network ${PROJECT}_default" && has "$OUT" "- image $IMAGE"'
expect "... and nothing taken down: the containers are there" test -n "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
run "$P" teardown $DEMO $VARS
expect "teardown: exit 0" test "$RC" = 0
expect "teardown: nothing of the project remains" nothing_left "$PROJECT" "$DIR"
expect "teardown: the image is gone too" test -z "$(docker images -q "$IMAGE")"
run "$P" teardown $DEMO $VARS
expect "teardown again: exit 0, nothing to do" has "$OUT" "changed=0"

# -e image= names an image that was there before: the recipe does not import
# it, and teardown leaves it alone (down --rmi all removed it)
DIR2=$SANDBOX/demo-pre
cleanup_add "project_purge demo-pre"
VARS2="-e dir=$DIR2 -e web_port=$PORT -e image=$PRE -e password=e2e-pw-$$"
run "$P" $DEMO $VARS2
expect "pre-existing image: apply exit 0, step 'image' ok (nothing imported)" \
    eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -Eq "^\[4/10\] +image +ok"'
run "$P" teardown $DEMO $VARS2
expect "pre-existing image: teardown exit 0, the stack and folder gone" eval '[ "$RC" = 0 ] && nothing_left demo-pre "$DIR2"'
expect "pre-existing image: teardown keeps it" test -n "$(docker images -q "$PRE")"
expect "pre-existing image: the teardown line says nothing was recorded" has "$OUT" "undo step 'image' *ok"
