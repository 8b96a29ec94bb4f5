#!/bin/bash
# tests/cli/pkg_apt.sh: pkg.installed / pkg.absent through the CLI with a
# real small Debian package (hello): plan, apply, a no-op re-run that
# spawns no process (strace), teardown, version pinning, a bad name (exit 1
# with apt's reason), -v showing apt's output live. Needs apt's mirror.
. "$ROOT/tests/lib.sh"

hello_version() { dpkg-query -W -f '${Version} ${db:Status-Status}' hello 2>/dev/null | awk '$2 == "installed" { print $1 }'; }
remove_hello() { DEBIAN_FRONTEND=noninteractive apt-get remove -y hello > /dev/null 2>&1; }
remove_hello
cleanup_add remove_hello

cat > hello.lua <<'R'
recipe { name = "hello" }
local v = vars { pkg = "hello" }
step "hello" { pkg.installed { v.pkg, update = false } }
R

run "$P" plan hello.lua
expect "plan: hello would be installed (exit 3)" test "$RC" = 3
expect "plan: names the change" has "$OUT" "install hello"

run "$P" hello.lua
expect "apply installs hello (exit 0, changed)" test "$RC" = 0 -a -n "$(hello_version)"
expect "apply: the step says what it did" has "$OUT" "installed hello"

if command -v strace > /dev/null; then
    strace -f -qq -e trace=execve -o "$SANDBOX/trace" "$P" hello.lua > "$SANDBOX/out2" 2>&1
    RC=$?; OUT=$(cat "$SANDBOX/out2"); ERR=""
    n=$(grep -c 'execve(' "$SANDBOX/trace")
    expect "re-run is a no-op (exit 0, ok)" test "$RC" = 0
    expect "re-run spawns no process (1 execve: provision itself, saw $n)" test "$n" = 1
else
    skip "re-run spawns no process" "strace is not installed"
fi

run "$P" plan hello.lua
expect "plan after apply: nothing to change (exit 0)" test "$RC" = 0

run "$P" teardown hello.lua
expect "teardown removes what the recipe installed" test "$RC" = 0 -a -z "$(hello_version)"

# -v: apt's output shown live (on stderr), not only at the end
run "$P" hello.lua -v
expect "-v shows apt's own output" has "$OUT$ERR" "Setting up hello"
expect "-v shows the command" has "$OUT$ERR" "apt-get install -y"
v=$(hello_version)

cat > pin.lua <<'R'
recipe { name = "pin" }
local v = vars { version = "" }
step "hello pinned" { pkg.installed { "hello=" .. v.version, update = false } }
R
run "$P" plan pin.lua -e "version=$v"
expect "pinned to the installed version: nothing to do" test "$RC" = 0
run "$P" plan pin.lua -e version=0.1-1
expect "pinned to another version: plan says so (exit 3)" test "$RC" = 3
expect "pinned: the change names both versions" has "$OUT" "install hello 0.1-1 (installed: $v)"
run "$P" pin.lua -e version=0.1-1
expect "a version apt does not have: exit 1" test "$RC" = 1
expect "a version apt does not have: apt's reason" has "$OUT$ERR" "E: Version '0.1-1' for 'hello' was not found"

run "$P" hello.lua -e pkg=nosuchpkg
expect "a bad package name: exit 1" test "$RC" = 1
expect "a bad package name: apt's reason" has "$OUT$ERR" "E: Unable to locate package nosuchpkg"

run "$P" plan hello.lua -e 'pkg=No Such'
expect "an invalid package name: exit 2 at load" test "$RC" = 2
expect "an invalid package name: says why" has "$ERR" 'bad package name "No Such"'

cat > absent.lua <<'R'
recipe { name = "absent" }
step "no hello" { pkg.absent "hello" }
R
run "$P" absent.lua
expect "pkg.absent removes hello" test "$RC" = 0 -a -z "$(hello_version)"
run "$P" plan absent.lua
expect "pkg.absent: then nothing to do" test "$RC" = 0

# a system without dpkg: DPKG_ADMINDIR elsewhere, as dpkg itself honours
DPKG_ADMINDIR=/nonexistent run "$P" plan hello.lua
expect "no dpkg database: exit 1" test "$RC" = 1
expect "no dpkg database: names what is supported" has "$OUT$ERR" "supported on Debian and Ubuntu (dpkg and apt-get) only"
