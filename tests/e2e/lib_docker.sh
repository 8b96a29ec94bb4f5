# tests/e2e/lib_docker.sh: shared helpers for the tests that need a Docker
# engine (source after tests/lib.sh).
#   docker_require NAME    engine answers, or SKIP NAME and exit 0 -- but FAIL
#                          and exit 1 when PROVISION_REQUIRE_DOCKER=1 (CI)
#   busybox_tar OUT.tar    a busybox-static root filesystem as a tar
#   busybox_image REF      that tar imported as REF through provision's docker
#                          module (no registry is reachable); removed on exit
#   project_gone NAME      no container, volume or network of the project left
#   stack_env NAME         the test stack (tests/fixtures/stack) for one test:
#                          TAG, PROJ, DIR, PORT, the busybox root filesystem
#                          tar, ARGS (the recipe's -e options), and cleanups
#                          that remove the image and take the stack down
FIXTURE_STACK="$ROOT/tests/fixtures/stack"

docker_require() {
    if docker info >/dev/null 2>&1; then return 0; fi
    if [ "${PROVISION_REQUIRE_DOCKER:-}" = 1 ]; then
        fail "$1" "no Docker engine answers and PROVISION_REQUIRE_DOCKER=1"
        exit 1
    fi
    skip "$1" "no Docker engine answers"
    exit 0
}

busybox_tar() {
    sh "$FIXTURE_STACK/busybox-rootfs.sh" "$1"
}

busybox_image() {
    ref=$1
    busybox_tar "$SANDBOX/busybox-rootfs.tar" || return 1
    "$P" --script "$FIXTURE_STACK/image.lua" "$SANDBOX/busybox-rootfs.tar" "$ref" >/dev/null || return 1
    cleanup_add "docker image rm -f '$ref' >/dev/null 2>&1"
}

project_leftovers() {
    docker ps -aq --filter "label=com.docker.compose.project=$1"
    docker volume ls -q --filter "label=com.docker.compose.project=$1"
    docker network ls -q --filter "label=com.docker.compose.project=$1"
}

project_gone() {
    [ -z "$(project_leftovers "$1")" ]
}

# a free TCP port on 127.0.0.1 (asks the kernel)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# svc_id PROJECT SERVICE: the container id of a compose service
svc_id() {
    docker ps -aq --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2" | head -1
}

stack_env() {
    TAG="provision-test/busybox:$1$$"
    PROJ="pt$1$$"
    DIR="$SANDBOX/$PROJ"
    PORT=$(free_port)
    busybox_tar "$SANDBOX/rootfs.tar" || { fail "busybox root filesystem" "busybox-rootfs.sh failed"; exit 1; }
    cleanup_add "docker image rm -f '$TAG' >/dev/null 2>&1"
    # the fixture's own compose file: the project's copy may be one a test broke
    cleanup_add "docker-compose -p '$PROJ' -f '$FIXTURE_STACK/docker-compose.yaml' --project-directory '$DIR' down -v --remove-orphans >/dev/null 2>&1"
    ARGS=(-e "dir=$DIR" -e "src=$FIXTURE_STACK" -e "rootfs=$SANDBOX/rootfs.tar" -e "image=$TAG" -e "port=$PORT")
}
