#!/bin/bash
# What the state records is what teardown removes (issue 13, cases 9, 10,
# 11, 13): a state of another recipe file is refused; a damaged or foreign
# state is a clear error (exit 2), never read as empty and never a
# traceback; a run killed outright (SIGKILL) at any moment loses no record,
# so teardown after it leaves nothing; teardown writes the state once, not
# once per step.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"
ST=$PROVISION_STATE_DIR

# ---- case 9: two recipe files with one recipe name ----
mkdir -p a b
cat > a/one.lua <<'R'
recipe { name = "shared-name" }
step "files" { fs.directory "./one-files" }
step "data" { fs.file { path = "./one-files/data.txt", content = "one's\n" } }
R
cat > b/two.lua <<'R'
recipe { name = "shared-name" }
step "other" { fs.directory "./two-files" }
R
run "$P" a/one.lua
expect "one.lua applies" test "$RC" = 0
run "$P" b/two.lua
expect "two.lua, same recipe name: refused (exit 2), naming both files and the way out" \
    eval '[ $RC = 2 ] && has "$ERR" "belongs to the recipe $SANDBOX/a/one.lua, not to $SANDBOX/b/two.lua" && has "$ERR" "--adopt-state" && [ ! -e two-files ]'
run "$P" teardown b/two.lua
expect "teardown of two.lua: refused too; one.lua's files stay" \
    eval '[ $RC = 2 ] && [ "$(cat one-files/data.txt)" = "one'"'"'s" ]'
run "$P" plan b/two.lua
expect "plan of two.lua: refused too (exit 2)" test "$RC" = 2
mv a/one.lua a/moved.lua
run "$P" teardown a/moved.lua --adopt-state
expect "--adopt-state: the moved recipe file takes its state over; teardown removes its files" \
    eval '[ $RC = 0 ] && [ ! -e one-files ]'
rm -rf "$ST" a b

# ---- case 13: a state of the wrong shape ----
cat > s.lua <<'R'
recipe { name = "shape" }
step "dir" { fs.directory "./shape-dir" }
step "file" { fs.file { path = "./shape-dir/f.txt", content = "x" } }
R
run "$P" s.lua
mkdir -p keepme && echo precious > keepme/data
good=$(cat "$ST/shape.json")
for bad in '{"steps": 5}' '{"version":1,"steps":{"dir":{"resources":5}}}' '[]' '{"version": 99, "steps": {}}' \
           '{"version":1,"steps":{"dir":{"resources":[{"kind":"fs.directory","state":{"created":"str"}}]}}}' \
           '{"version":1,"steps":{"dir":{"resources":[{"kind":5,"state":{}}]}}}' \
           '{"version":1,"steps":{"gone":{"resources":[{"kind":"fs.directory","state":{"created":[{"type":"directory","path":7}]}}]}}}' \
           'not json at all'; do
    printf '%s\n' "$bad" > "$ST/shape.json"
    for verb in apply plan teardown; do
        run "$P" $verb s.lua
        expect "damaged state $bad: $verb exits 2, says damaged, no traceback" \
            eval '[ $RC = 2 ] && has "$ERR" "state file $ST/shape.json is damaged" && ! has "$ERR" "traceback" && ! has "$ERR" "internal error"'
    done
    expect "damaged state $bad: nothing removed" eval '[ -e shape-dir/f.txt ] && [ "$(cat keepme/data)" = precious ]'
done
run "$P" apply s.lua
expect "a newer provision's state names it" eval 'true'
printf '%s\n' '{"version": 99, "steps": {}}' > "$ST/shape.json"
run "$P" plan s.lua
expect "version 99: 'written by a newer provision'" has "$ERR" "written by a newer provision (state version 99"
rm -f "$ST/shape.json" && mkdir "$ST/shape.json"
run "$P" plan s.lua
expect "a state that cannot be read (a folder): plan exits 2 with the reason" \
    eval '[ $RC = 2 ] && has "$ERR" "shape.json"'
rmdir "$ST/shape.json"; printf '%s\n' "$good" > "$ST/shape.json"; chmod 600 "$ST/shape.json"
printf '{"set":"dir","value":5}\n' > "$ST/shape.journal"; chmod 600 "$ST/shape.journal"
run "$P" plan s.lua
expect "a damaged journal: exit 2, naming it" eval '[ $RC = 2 ] && has "$ERR" "shape.journal is damaged"'
rm -f "$ST/shape.journal"
run "$P" teardown s.lua
expect "the good state back: teardown removes what it recorded" eval '[ $RC = 0 ] && [ ! -e shape-dir ]'
rm -rf "$ST"

# ---- case 10: SIGKILL at any moment loses no record ----
# fs steps, then a step that takes long: killed anywhere, the files already
# written are in the state (the journal) and teardown removes every one
cat > k.lua <<'R'
recipe { name = "kill" }
step "folder" { fs.directory "./k" }
step "a" { fs.file { path = "./k/a.txt", content = "a" } }
step "b" { fs.file { path = "./k/b.txt", content = "b" } }
step "c" { fs.template { path = "./k/c.txt", template = "c=${c}\n", vars = { c = 1 } } }
step "slow" { exec.command { argv = { "sh", "-c", "sleep 0.3; touch k/slow.done" }, creates = "./k/slow.done" } }
step "d" { fs.file { path = "./k/d.txt", content = "d" } }
R
lost=0 kills=30
for i in $(seq 1 $kills); do
    rm -rf k "$ST"
    "$P" k.lua > /dev/null 2>&1 &
    pid=$!
    # anywhere: mostly in the first 100 ms (the fs steps: before, during
    # and after each write), every third one later (the long step)
    if [ $((i % 3)) = 0 ]; then sleep "0.$(( i * 13 % 40 + 5 ))"; else sleep "0.0$(( (i * 7) % 10 ))$(( i % 10 ))"; fi
    kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
    "$P" teardown k.lua > "$SANDBOX/td.out" 2>&1
    # what is left: only what a step that never finished made (slow.done is exec's, not recorded)
    left=$(find k -type f ! -name slow.done 2>/dev/null | sort | tr '\n' ' ')
    if [ -n "$left" ]; then lost=$((lost + 1)); echo "# kill $i left: $left ($(cat "$SANDBOX/td.out" | tr '\n' ' '))"; fi
done
expect "SIGKILL at $kills moments: teardown afterwards left no file a step had written ($lost runs did)" test "$lost" = 0
rm -rf k "$ST"

# ---- case 11: teardown writes the state once, not once per step ----
{
    echo 'recipe { name = "many" }'
    echo 'step "folder" { fs.directory "./m" }'
    for i in $(seq 1 300); do echo "step \"f$i\" { fs.file { path = \"./m/f$i\", content = \"$i\" } }"; done
} > many.lua
run "$P" many.lua
expect "300 steps apply" test "$RC" = 0
strace -f -e trace=rename,renameat,renameat2 -o "$SANDBOX/trace" "$P" teardown many.lua > /dev/null 2>&1
renames=$(grep -c 'many.json' "$SANDBOX/trace")
expect "teardown of 300 steps: the state file is written at most once (was once per step): $renames" \
    eval '[ "$renames" -le 1 ] && [ ! -e m ]'
strace -f -e trace=rename,renameat,renameat2 -o "$SANDBOX/trace" "$P" many.lua > /dev/null 2>&1
renames=$(grep -c 'many.json' "$SANDBOX/trace")
expect "apply of 300 steps: the state file is written once (the journal takes each step): $renames" \
    test "$renames" = 1
