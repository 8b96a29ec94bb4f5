#!/bin/bash
# The bash completion (docs/completion/provision.bash), for real: sourced in
# bash, COMP_WORDS/COMP_CWORD set as bash sets them, _provision called, its
# COMPREPLY checked. The zsh one (docs/completion/_provision): every option
# of --help is in it.
. "$ROOT/tests/lib.sh"

cat > site.lua <<'EOF'
recipe { name = "site" }
local v = vars { web_port = 8080, greeting = "hi", wanted = false }
step "first step" { fs.directory "made" }
step "second" { fs.directory "made2" }
EOF
touch notes.txt; mkdir -p conf
mkdir -p .home/.ssh   # (hidden: not a folder the recipe completion offers)
printf 'Host web1 web2\n  User deploy\nHost *.internal\n  User x\nhost db1\n' > .home/.ssh/config

# comp WORD...: the completions of the last word, one a line, sorted
comp() {
    HOME="$SANDBOX/.home" bash -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        _provision || exit 1
        printf "%s\n" "${COMPREPLY[@]}" | sort' comp "$ROOT/docs/completion/provision.bash" "$P" "$@"
}
# c WORD...: comp, its lines in $out (and in $OUT, for expect's message)
RC=0 ERR=""
c() { out=$(comp "$@"); OUT=$out; }
# line LIST: COMPREPLY as one line
line() { printf '%s\n' "$1" | tr '\n' ' ' | sed 's/ $//'; }

c ""
expect "verbs, recipe files and folders at the first word" eval '[ "$(line "$out")" = "apply conf/ facts help list plan site.lua teardown" ]'
c pl
expect "a verb from its start" eval '[ "$out" = plan ]'
c plan ""
expect "after a verb: recipe files (*.lua) and folders, no verbs" eval '[ "$(line "$out")" = "conf/ site.lua" ]'
c facts ""
expect "after facts: nothing (it takes no recipe)" eval '[ -z "$out" ]'
c site.lua ""
expect "after the recipe: nothing more" eval '[ -z "$out" ]'
c site.lua --st
expect "an option from its start" eval '[ "$out" = --state-dir ]'
c site.lua -
want=$("$P" --help | awk '/^ +-/ { for (i = 1; i <= NF; i++) { w = $i; sub(/,$/, "", w); if (w !~ /^-/) break; print w } }
    /^(usage:)? *provision / { for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z]/) print $i }' | sort -u)
expect "every option of --help ($(echo $want | wc -w)), and only those" \
    eval '[ "$(line "$out")" = "$(line "$want")" ] && has "$out" "^--max-fail-percent$" && has "$out" "^-e$" && has "$out" "^--$"'
c site.lua -e ""
expect "-e: the recipe's variable names" eval '[ "$(line "$out")" = "greeting= wanted= web_port=" ]'
c -e w site.lua
expect "-e before the recipe: a recipe file there" eval '[ "$out" = site.lua ]'
c plan site.lua --var we
expect "--var: a variable name from its start" eval '[ "$out" = web_port= ]'
c plan --only first site.lua -e ""
expect "-e after --only NAME and the recipe" eval '[ "$(line "$out")" = "greeting= wanted= web_port=" ]'
c -e ""
expect "-e with no recipe yet: nothing" eval '[ -z "$out" ]'
c site.lua -e greeting = ""
expect "-e KEY=: no value offered" eval '[ -z "$out" ]'
c site.lua --only ""
expect "--only: the step names" eval '[ "$(line "$out")" = "first\\ step second" ]'
c site.lua --host ""
expect "--host: ~/.ssh/config's hosts (no patterns) and local" eval '[ "$(line "$out")" = "db1 local web1 web2" ]'
c site.lua --host web1,w
expect "--host a,b: the next of a comma list" eval '[ "$(line "$out")" = "web1,web1 web1,web2" ]'
c help ""
topics=$("$P" help nosuch 2>&1 | sed -n 's/.*topics: //p' | tr -d ',' | tr ' ' '\n' | sort)
expect "help: the topics" eval '[ -n "$topics" ] && [ "$out" = "$topics" ] && has "$out" "^fs$" && has "$out" "^exit-codes$"'
c help e
expect "help e: exec, exit-codes" eval '[ "$(line "$out")" = "exec exit-codes" ]'
c -- -
expect "after --: no options" eval '[ -z "$out" ]'
printf 'recipe { name = "w" }\n' > -odd.lua
c -- -
expect "after --: a recipe file starting with -" eval '[ "$out" = -odd.lua ]'

# zsh: the options of --help are all in its _arguments
missing=""
for o in $want; do
    [ "$o" = -- ] && continue   # _arguments -S: "--" ends the options
    grep -qE -- "(['{,*)]|^ *)$o([]=+,}]|'?\\[)" "$ROOT/docs/completion/_provision" || missing="$missing $o"
done
expect "zsh completion: every option of --help" eval '[ -z "$missing" ] || { echo "missing:$missing"; false; }'
