#!/bin/bash
# -v and -vv (issue 18): -v shows the diff of each change on apply (and
# what steps log); -vv adds every program provision runs (a check's
# `unless` command as well as the step's own), with its output and how it
# ended, under the step; secrets stay masked in argv and output.
. "$ROOT/tests/lib.sh"

cat > v.lua <<'EOF2'
recipe { name = "verbose" }
local v = vars { token = secret "s3cr3t-token-value", text = "one\n" }
step "config" { fs.file { path = "./app.conf", content = v.text } }
step "greet" {
  exec.command { argv = { "sh", "-c", "echo hello from greet; echo token=$1 >&2; touch greeted", "sh", v.token },
                 ["unless"] = { "test", "-e", "greeted" } },
}
EOF2
run "$P" v.lua -v
expect "-v: the command a step runs, its output" eval '[ $RC = 0 ] && has "$OUT" "| \$ sh -c" && has "$OUT" "| hello from greet"'
expect "-v: not the commands of checks (the unless guard)" eval '! has "$OUT" "\$ test -e greeted"'
rm greeted
run "$P" v.lua -v -e text="two
"
expect "-v: the diff of a change on apply" \
    eval '[ $RC = 0 ] && has "$OUT" "config .*changed" && has "$OUT" "^      -one$" && has "$OUT" "^      +two$"'

rm -f greeted
run "$P" v.lua -vv
expect "-vv: the check's unless command, and how it ended" \
    eval '[ $RC = 0 ] && has "$OUT" "| \$ test -e greeted$" && has "$OUT" "|   exit 1 in [0-9.]*s"'
expect "-vv: the step's command, its output, exit 0 (once, not twice)" \
    eval 'has "$OUT" "|   hello from greet" && has "$OUT" "|   exit 0 in" && [ "$(printf "%s\n" "$OUT" | grep -c "\$ sh -c")" = 1 ]'
expect "-vv: the commands under their step's line, before it" \
    eval '[ "$(printf "%s\n" "$OUT" | grep -n "\$ sh -c" | cut -d: -f1)" -lt "$(printf "%s\n" "$OUT" | grep -n "greet .*changed" | cut -d: -f1)" ]'
expect "-vv: the secret masked in argv and output" \
    eval 'has "$OUT" "sh \*\*\*\*\*\*\*\*" && has "$OUT" "token=\*\*\*\*\*\*\*\*" && ! has "$OUT$ERR" "s3cr3t-token-value"'
run "$P" v.lua -v -v
expect "-v -v is -vv" eval '[ $RC = 0 ] && has "$OUT" "| \$ test -e greeted$" && has "$OUT" "|   exit 0 in"'
run "$P" v.lua -vv --json
expect "-vv --json: stdout holds the events alone" eval '[ $RC = 0 ] && ! printf "%s\n" "$OUT" | grep -qv "^{\"event\":"'
run "$P" v.lua -vv -q
expect "-vv with -q: refused (exit 2)" eval '[ $RC = 2 ] && has "$ERR" "-q and -v cannot be used together"'
run "$P" --help
expect "--help says what -vv adds" has "$OUT" "-vv  *also each command provision runs, and its output"
