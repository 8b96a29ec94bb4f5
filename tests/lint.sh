#!/bin/sh
# tests/lint.sh (make lint): the rules a reader relies on, checked.
#   lint/luacheck  luacheck on lua/, recipes/, tests/lua, tests/fixtures
#                  (settings: .luacheckrc)
#   lint/imports   the import rules of lua/provision/README.md
#   lint/sizes     no source file over 800 lines, no function over 120
# Prints PASS/FAIL lines and "N passed, N failed"; exits 1 if one failed.
# Needs Debian's lua-check and lua5.4 (make deps installs them).
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0
check() { # NAME COMMAND...
    name=$1; shift
    if out=$("$@" 2>&1); then
        echo "PASS $name"; passed=$((passed + 1))
    else
        echo "$out" | sed 's/^/    /'
        echo "FAIL $name: $(echo "$out" | grep -c .) finding(s) above"; failed=$((failed + 1))
    fi
}
check lint/luacheck luacheck -q --no-color --codes --formatter plain lua recipes tests/lua tests/fixtures
check lint/imports lua5.4 tests/lint/imports.lua lua/provision
check lint/sizes sh tests/lint/sizes.sh
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
