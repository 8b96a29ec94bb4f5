#!/bin/bash
# Bytes that are not UTF-8 (issue 13, case 12). The state and --json are
# JSON, which holds UTF-8 text only: a path, name or -e value that is not
# is refused at load time (exit 2, file:line, nothing made, no state);
# text from outside at run time (a command's output) never breaks --json
# or the human output; a resource recording such a string fails its step
# plainly, and the state stays readable.
. "$ROOT/tests/lib.sh"

snapshot() { (cd "$SANDBOX" && find . -path ./.out -prune -o -path ./.err -prune -o -print | sort); }
# every line of $OUT is a JSON value (python's reader, not ours)
json_lines() { printf '%s\n' "$OUT" | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' 2>/dev/null; }

# a path that is not UTF-8: refused before the folder is made
cat > path.lua <<'R'
recipe { name = "path" }
step "first" { fs.directory "./ok" }
step "x" { fs.directory "./caf\xe9" }
R
before=$(snapshot)
for verb in apply plan; do
    run "$P" $verb path.lua
    expect "a path that is not UTF-8 ($verb): exit 2, file:line and option, nothing made" \
        eval '[ $RC -eq 2 ] && has "$ERR" "path.lua:3: fs.directory: option .path. must be UTF-8 text, not \"./caf\\\\xe9\"" && ! has "$ERR" "internal error" && [ "$(snapshot)" = "$before" ]'
done
run "$P" path.lua --json
expect "a path that is not UTF-8 (--json): exit 2 on stderr, stdout empty, nothing made" \
    eval '[ $RC -eq 2 ] && [ -z "$OUT" ] && has "$ERR" "path.lua:3: fs.directory" && [ "$(snapshot)" = "$before" ]'

# -e for a string variable: refused; the same bytes for a secret (content,
# which may be binary) are taken, and so is binary fs.file content
cat > vars.lua <<'R'
recipe { name = "vars" }
local v = vars { dir = "./w", key = secret "key-7Hq2" }
step "dir" { fs.directory(v.dir) }
step "key" { fs.file { path = v.dir .. "/key.bin", content = v.key } }
step "bin" { fs.file { path = v.dir .. "/raw.bin", content = "\xff\xfe\x00\xe9" } }
step "out" { check = function() return false end, apply = function()
  local r = assert(exec.run { "sh", "-c", "printf 'caf\\351 \\377 exited 3\\n'; exit 3" })
  return nil, r.output
end }
R
before=$(snapshot)
run "$P" vars.lua -e dir=$'./w\xe9b'
expect "-e dir=<not UTF-8> for a string variable: exit 2, named, nothing made" \
    eval '[ $RC -eq 2 ] && has "$ERR" "vars.lua:2: variable .dir. must be UTF-8 text, not \"./w\\\\xe9b\" as -e gives it" && [ "$(snapshot)" = "$before" ]'

# --json with a command printing bytes that are not UTF-8 (a custom step's
# failure reason), after binary content and a binary secret went to files:
# every line of stdout is JSON, the step fails (exit 1), no internal error
run "$P" vars.lua --json -e key=$'\xc3\x28 secret'
expect "--json: output that is not UTF-8 still gives JSON lines, the step fails plainly" \
    eval '[ $RC -eq 1 ] && json_lines && has "$OUT" "\"status\":\"failed\"" && has "$OUT" "\"event\":\"summary\"" && ! has "$ERR" "internal error" && has "$ERR" "exited 3"'
expect "--json: binary content and a binary secret were written as given" \
    eval '[ "$(od -An -tx1 w/raw.bin | tr -d " \n")" = "fffe00e9" ] && [ "$(od -An -tx1 w/key.bin | tr -d " \n")" = "c32820736563726574" ]'
expect "--json: the state is JSON and records what was made" \
    eval 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert \"bin\" in d[\"steps\"]" .provision/vars.json'
run "$P" vars.lua -e key=$'\xc3\x28 secret'
expect "human output: the same failure, no internal error" \
    eval '[ $RC -eq 1 ] && has "$ERR" "step .out. failed" && has "$OUT" "exited 3" && ! has "$ERR" "internal error"'

# in a detail, and in a custom step's own failure reason
cat > detail.lua <<'R'
recipe { name = "detail" }
local done = false
step "detail" { check = function() return done end, apply = function(ctx)
  local r = assert(exec.run { "printf", "caf\\351" })
  ctx:detail(r.output); done = true
end }
step "reason" { check = function() return false end, apply = function()
  local r = assert(exec.run { "printf", "na\\377me" })
  return nil, r.output
end }
R
run "$P" detail.lua --json
expect "--json: a detail and a reason that are not UTF-8 come as U+FFFD, every line JSON" \
    eval '[ $RC -eq 1 ] && json_lines && printf "%s\n" "$OUT" | python3 -c "
import json,sys
ev=[json.loads(l) for l in sys.stdin]
assert [e.get(\"detail\") for e in ev if e[\"event\"]==\"step\"] == [\"caf\ufffd\", \"na\ufffdme\"], ev"'

# a resource that records such a string: its step fails saying so, the
# records of the others are saved, teardown undoes them
cat > record.lua <<'R'
recipe { name = "record" }
step "first" { fs.directory "./first" }
step "bad" { check = function(ctx) return ctx.state.n ~= nil end, apply = function(ctx)
  local r = assert(exec.run { "printf", "made-caf\\351" })
  ctx:created { type = "directory", path = r.output }
  ctx.state.n = 1
end }
R
run "$P" record.lua
expect "a record that is not UTF-8: the step fails (exit 1) naming where, no internal error" \
    eval '[ $RC -eq 1 ] && has "$ERR" "step .bad. failed" && has "$OUT" "step .bad. recorded a string that is not valid UTF-8 at resources\[1\].state.created\[1\].path, which the state (JSON) cannot hold" && ! has "$ERR" "internal error"'
expect "a record that is not UTF-8: the state is saved, with the other step" \
    eval 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert list(d[\"steps\"]) == [\"first\"], d" .provision/record.json && [ ! -e .provision/record.journal ]'
run "$P" teardown record.lua
expect "a record that is not UTF-8: teardown undoes the others" eval '[ $RC -eq 0 ] && [ ! -e first ]'

# a recipe whose own path is not UTF-8 (the state records it): exit 2 before anything
mkdir "dir-"$'\xe9'
printf 'recipe { name = "where" }\nstep "a" { fs.directory "./made" }\n' > "dir-"$'\xe9'/r.lua
before=$(snapshot)
run "$P" "dir-"$'\xe9'/r.lua
expect "a recipe path that is not UTF-8: exit 2, said, nothing made" \
    eval '[ $RC -eq 2 ] && has "$ERR" "dir-\\\\xe9/r.lua: its path is not UTF-8 text" && [ "$(snapshot)" = "$before" ]'
