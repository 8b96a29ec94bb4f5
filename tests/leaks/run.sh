#!/bin/sh
# tests/leaks/run.sh: the binary under valgrind's memcheck for plan, apply,
# a no-op re-run, teardown and a --json run of tests/leaks/recipe.lua.
#   PROVISION=./provision sh tests/leaks/run.sh
# Each run passes when valgrind reports no memory error and no definite or
# indirect leak (--errors-for-leak-kinds=definite,indirect: "still
# reachable" blocks, such as libcurl's global state, do not count) and the
# exit code is the one the CLI contract gives for that run.
# Prints "PASS leaks/<verb>" / "FAIL leaks/<verb>: why", then "N passed, N failed".
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
P=${PROVISION:-$ROOT/provision}
passed=0 failed=0
if ! command -v valgrind >/dev/null 2>&1; then
    echo "FAIL leaks: valgrind not found (apt-get install valgrind)"
    echo "0 passed, 1 failed"; exit 1
fi
if [ ! -x "$P" ]; then
    echo "FAIL leaks: no binary at $P (run make)"
    echo "0 passed, 1 failed"; exit 1
fi
SANDBOX=$(mktemp -d /tmp/provision-leaks.XXXXXX) || exit 1
trap 'rm -rf "$SANDBOX"' EXIT
trap 'exit 130' INT TERM
cp tests/leaks/recipe.lua "$SANDBOX/recipe.lua"
cd "$SANDBOX" || exit 1
# free every object at exit, as a build without this does not (core/main.c)
export NO_COLOR=1 PROVISION_STATE_DIR="$SANDBOX/.provision" PROVISION_FREE_AT_EXIT=1
with_fs=true   # the fs resources too (the recipe can run without them)

# check NAME WANT_EXIT WANT_TEXT ARGS...   (WANT_TEXT: in the output, or "")
check() {
    name=$1 want=$2 text=$3; shift 3
    log="$SANDBOX/valgrind-$passed-$failed.log"
    valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
        --num-callers=30 --log-file="$log" \
        "$P" "$@" -e dir="$SANDBOX/out" -e with_fs=$with_fs > "$SANDBOX/out.txt" 2>&1
    rc=$?
    # valgrind 3.19 (Debian 12) does not know pidfd_open (434) nor openat2
    # (437): it warns and returns ENOSYS, and proc.c falls back to polling
    # waitpid, core/tree.c to its walk one component at a time. That warning
    # is about valgrind, not the program; any other line still fails.
    grep -Ev -- '^--[0-9]+-- (WARNING: unhandled amd64-linux syscall: 43[47]|You may be able to write your own handler\.|Read the file README_MISSING_SYSCALL_OR_IOCTL\.|Nevertheless we consider this a bug\.  Please report|it at http://valgrind\.org/support/bug_reports\.html\.)$' \
        "$log" > "$log.kept"
    mv "$log.kept" "$log"
    if [ $rc -eq 99 ] || [ -s "$log" ]; then
        echo "FAIL leaks/$name: valgrind found errors (exit $rc):"
        sed 's/^/    /' "$log" | head -n 80
        failed=$((failed + 1))
    elif [ $rc -ne "$want" ]; then
        echo "FAIL leaks/$name: exit $rc, want $want:"
        sed 's/^/    /' "$SANDBOX/out.txt" | head -n 40
        failed=$((failed + 1))
    elif [ -n "$text" ] && ! grep -q -- "$text" "$SANDBOX/out.txt"; then
        echo "FAIL leaks/$name: the output lacks \"$text\":"
        sed 's/^/    /' "$SANDBOX/out.txt" | head -n 40
        failed=$((failed + 1))
    else
        echo "PASS leaks/$name"
        passed=$((passed + 1))
    fi
}

check "plan (fresh: changes pending)" 3 "would-change=" plan recipe.lua
check "apply" 0 "failed=0" apply recipe.lua
check "apply (no-op re-run)" 0 " changed=0 failed=0" apply recipe.lua -v
check "plan (nothing to change)" 0 "would-change=0" plan recipe.lua
check "teardown" 0 "failed=0" teardown recipe.lua
check "apply --json" 0 '"event"' apply recipe.lua --json
check "teardown (again)" 0 "failed=0" teardown recipe.lua
check "list" 0 "compose file" list recipe.lua
check "recipe error (exit 2)" 2 "unknown variable" apply recipe.lua -e nope=1
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
