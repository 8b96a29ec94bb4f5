#!/bin/bash
# libcrypto is loaded at the first SHA-256 of more than 64 KiB, not before
# (issue 19: linking it cost every run 2.5 M instructions of the dynamic
# linker, 80 % of `provision --version`; what is shorter is hashed in plain
# C, core/sha256.c):
#   - --version, and a --script until it hashes 64 KiB, map no libcrypto
#     (/proc/self/maps); a short string's digest and a long one's are
#     sha256sum's, and only the long one loads it;
#   - a recipe of every fs kind, one file over 64 KiB: the first apply
#     hashes (its records hold sha256sum's digests); the no-op after it
#     opens no libcrypto (strace);
#   - a libcrypto without SHA256_* in LD_LIBRARY_PATH: the no-op still runs
#     (it needs none), a small file is written and recorded (hashed in
#     plain C), and a step that must hash more fails naming the library and
#     the symbol, with nothing written.
# ./provision-static has libcrypto linked in: nothing to open, nothing to
# break from outside; those cases say so.
. "$ROOT/tests/lib.sh"
if ! command -v strace > /dev/null || ! command -v cc > /dev/null; then
    fail "lazy libcrypto" "strace and cc are needed (make deps installs them)"
    exit 1
fi
crypto_opens() { grep -E 'open(at2?)?\(.*libcrypto[^"]*\.so' "$1" | grep -vc ENOENT; }

cat > maps.lua <<'L'
local C = require "provision._fs"
local function mapped()
  return assert(io.open("/proc/self/maps")):read("a"):find("libcrypto", 1, true) ~= nil
end
print("libcrypto mapped at start: " .. tostring(mapped()))
print("sha256 " .. C.sha256_string("abc"))
print("libcrypto mapped after a short one: " .. tostring(mapped()))
print("sha256 long " .. C.sha256_string(("0123456789abcdef"):rep(4097)))
print("libcrypto mapped after: " .. tostring(mapped()))
L
run "$P" --script maps.lua
LINKED=0
has "$OUT" "libcrypto mapped after: false" && LINKED=1
ABC=$(printf abc | sha256sum | cut -c1-64)
LONG=$(for i in $(seq 4097); do printf 0123456789abcdef; done | sha256sum | cut -c1-64)
expect "a --script maps no libcrypto until it hashes 64 KiB; the digests are sha256sum's" \
    eval '[ $RC = 0 ] && has "$OUT" "libcrypto mapped at start: false" && has "$OUT" "sha256 $ABC" \
          && has "$OUT" "sha256 long $LONG"'
if [ $LINKED = 0 ]; then
    expect "... a short string is hashed without it, the first long one loads it" \
        eval 'has "$OUT" "libcrypto mapped after a short one: false" && has "$OUT" "libcrypto mapped after: true"'
else
    pass "... (the static build: linked in, no library to load)"
fi

strace -f -qq -e trace=open,openat -o v.trace "$P" --version > v.out 2>&1
expect "--version opens no libcrypto" eval '[ "$(crypto_opens v.trace)" = 0 ] && grep -q "^provision " v.out'

mkdir -p out
cat > r.lua <<'R'
recipe { name = "lazy" }
step "dir" { fs.directory "out/d" }
step "file" { fs.file { path = "out/d/a.conf", content = "port=1\n" } }
step "link" { fs.symlink { path = "out/d/current", target = "a.conf" } }
step "env" { fs.env_file { path = "out/d/app.env", values = { PORT = "8080" } } }
step "tpl" { fs.template { path = "out/d/t.conf", template = "port=${p}\n", vars = { p = "9" } } }
step "big" { fs.file { path = "out/d/big.dat", content = ("0123456789abcdef\n"):rep(4000) } }
R
export PROVISION_STATE_DIR=$SANDBOX/state
strace -f -qq -e trace=open,openat -o apply.trace "$P" r.lua > apply.out 2>&1; RC=$?
SUM=$(sha256sum < out/d/a.conf | cut -c1-64)
BIG=$(sha256sum < out/d/big.dat | cut -c1-64)
expect "the first apply hashes what it writes: the records are sha256sum's digests" \
    eval '[ $RC = 0 ] && grep -q "changed=6" apply.out && grep -rq "$SUM" "$PROVISION_STATE_DIR" \
          && grep -rq "$BIG" "$PROVISION_STATE_DIR"'
if [ $LINKED = 0 ]; then
    expect "... having loaded libcrypto" eval '[ "$(crypto_opens apply.trace)" -ge 1 ]'
fi
strace -f -qq -e trace=open,openat -o noop.trace "$P" r.lua > noop.out 2>&1; RC=$?
expect "the no-op after it opens no libcrypto" \
    eval '[ $RC = 0 ] && grep -q "changed=0" noop.out && [ "$(crypto_opens noop.trace)" = 0 ]'

if [ $LINKED = 0 ]; then
    # a library of that name without the functions: first in the search path
    mkdir -p fakelib
    echo 'int provision_test_not_sha256(void) { return 0; }' > fakelib/f.c
    cc -shared -fPIC -o fakelib/libcrypto.so.3 fakelib/f.c
    run env LD_LIBRARY_PATH="$PWD/fakelib" "$P" r.lua
    expect "a broken libcrypto: the no-op still runs (it hashes nothing)" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'
    cat > r2.lua <<'R'
recipe { name = "lazy2" }
step "small" { fs.file { path = "out/small.conf", content = "x\n" } }
step "new" { fs.file { path = "out/new.dat", content = ("x"):rep(70000) } }
R
    run env LD_LIBRARY_PATH="$PWD/fakelib" "$P" r2.lua
    SMALL=$(printf 'x\n' | sha256sum | cut -c1-64)
    expect "... a small file is written and recorded (hashed in plain C)" \
        eval '[ "$(cat out/small.conf)" = x ] && grep -rq "$SMALL" "$PROVISION_STATE_DIR"'
    expect "... a step that must hash more fails naming the library and the symbol, nothing written" \
        eval '[ $RC = 1 ] && has "$OUT" "libcrypto.so.3: no symbol SHA256_" && [ ! -e out/new.dat ]'
    run "$P" r2.lua
    expect "... and with the real one, the same step applies" \
        eval '[ $RC = 0 ] && [ "$(wc -c < out/new.dat)" = 70000 ]'
else
    pass "a broken libcrypto (the static build: linked in, nothing loaded from outside)"
fi
