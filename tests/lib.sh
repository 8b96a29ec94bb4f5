# tests/lib.sh: shared setup for the shell tests (CLI and end-to-end).
#   . "$ROOT/tests/lib.sh"
# Gives: $P (the binary), $SANDBOX (a fresh mktemp -d, removed on exit, and
# the current folder), pass/fail/skip, and assertions that report instead of
# exiting, so one file can hold many cases.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
P=${PROVISION:-$ROOT/provision}
SANDBOX=$(mktemp -d /tmp/provision-t.XXXXXX)
_cleanups=""
cleanup_add() { _cleanups="$1; $_cleanups"; }
_on_exit() { eval "$_cleanups" ; rm -rf "$SANDBOX"; }
trap _on_exit EXIT
trap 'exit 130' INT TERM
cd "$SANDBOX" || exit 1
export NO_COLOR=1 PROVISION_STATE_DIR="$SANDBOX/.provision"

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: ${2:-}"; }
skip() { echo "SKIP $1: ${2:-}"; }

# run CMD...: runs it, keeping stdout in $OUT, stderr in $ERR, status in $RC
run() {
    "$@" > "$SANDBOX/.out" 2> "$SANDBOX/.err"
    RC=$?
    OUT=$(cat "$SANDBOX/.out"); ERR=$(cat "$SANDBOX/.err")
}

# expect NAME COND...: passes when the test command succeeds
expect() {
    name=$1; shift
    if "$@"; then pass "$name"; else fail "$name" "rc=$RC stdout=[$OUT] stderr=[$ERR]"; fi
}
has() { printf '%s' "$1" | grep -q -- "$2"; }
