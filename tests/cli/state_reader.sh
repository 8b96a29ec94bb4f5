#!/bin/bash
# The state reader on what tests/fuzz/state.c found: a state file or a
# journal that JSON can hold but json.encode could never write again
# (nested deeper than 200 levels) is a damaged state, exit 2 naming the
# file, nothing changed; never a traceback, never a run that ends failing
# to save.
. "$ROOT/tests/lib.sh"

printf 'recipe { name = "st" }\nstep "a" { fs.directory "./made" }\n' > r.lua
mkdir -m 700 .provision
deep() { python3 -c "import sys; n=int(sys.argv[1]); sys.stdout.write('['*n + ']'*n)" "$1"; }
# the lock file is made before the state is read: not a change
snapshot() { (cd "$SANDBOX" && find . -path ./.out -prune -o -path ./.err -prune -o -path ./.provision/lock -prune -o -print | sort); }

# deep inside what a resource kept
printf '{"version":1,"steps":{"a":{"applied":1,"resources":[{"kind":"fs.directory","state":{"x":%s}}]}}}' "$(deep 300)" > .provision/st.json
before=$(snapshot)
run "$P" r.lua
expect "a state nested 300 deep: exit 2, damaged, nothing made" \
    eval '[ $RC -eq 2 ] && has "$ERR" "state file .*st.json is damaged (nested deeper than 200 levels)" && ! has "$ERR" "internal error" && [ "$(snapshot)" = "$before" ]'

# deep where validate put the value in its message
printf '{"version":%s}' "$(deep 300)" > .provision/st.json
run "$P" plan r.lua
expect "a version nested 300 deep: exit 2, damaged, no traceback" \
    eval '[ $RC -eq 2 ] && has "$ERR" "st.json is damaged (nested deeper than 200 levels)" && ! has "$ERR" "traceback"'

# deep in a journal line, over a good state
printf '{"version":1,"steps":{}}' > .provision/st.json
printf '{"set":"a","value":{"resources":[{"kind":"fs.directory","state":{"x":%s}}]}}\n' "$(deep 250)" > .provision/st.journal
before=$(snapshot)
run "$P" r.lua
expect "a journal line nested 250 deep: exit 2, the journal named, nothing made" \
    eval '[ $RC -eq 2 ] && has "$ERR" "state file .*st.journal is damaged (journal line 1: nested deeper than 200 levels)" && [ "$(snapshot)" = "$before" ]'
