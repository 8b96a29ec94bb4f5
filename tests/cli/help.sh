#!/bin/bash
# provision help [TOPIC] and `--` ending the options, and the man page
# (docs/provision.1.scd). The help of a module lists exactly the options its
# resources accept (asked of the resources themselves), and every option of
# --help is in the man page, so neither can drift from the code.
. "$ROOT/tests/lib.sh"

run "$P" --help; usage=$OUT
run "$P" help
expect "help: the usage, as --help" eval '[ $RC -eq 0 ] && [ "$OUT" = "$usage" ] && has "$OUT" "provision help \[TOPIC\]"'

# a recipe file named help does not make `provision help` run it
printf 'recipe { name = "h" }\nstep "mark" { fs.file { path = "ran", content = "x" } }\n' > help
run "$P" help
expect "help with a file named help here: still the usage" eval '[ $RC -eq 0 ] && [ "$OUT" = "$usage" ] && [ ! -e ran ]'
run "$P" ./help
expect "./help runs the recipe named help" eval '[ $RC -eq 0 ] && [ -e ran ]'
rm -f ran
run "$P" apply help
expect "apply help runs the recipe named help" eval '[ $RC -eq 0 ] && [ -e ran ]'

topic() { # TOPIC WANT...: exit 0, and each WANT in the text
    local t=$1 w ok=1; shift
    run "$P" help "$t"
    [ "$RC" -eq 0 ] && [ -z "$ERR" ] || ok=0
    for w in "$@"; do has "$OUT" "$w" || ok=0; done
    expect "help $t" [ $ok -eq 1 ]
}
topic verbs "apply RECIPE" "plan RECIPE" "teardown RECIPE" "list RECIPE" "help \[TOPIC\]" "provision ./help"
topic options "--state-dir DIR" "--adopt-state" "-e, --var" "--timeout"
topic hosts "--host H" "--forks N" "--become" "--max-fail-percent" "PROVISION_SSH"
topic exit-codes "^  0 " "^  1 " "^  2 " "^  3 " "^  130 "
topic json '"event":"summary"' "would-change" '"event":"recap"' "json.decode"
topic variables "KEY=@FILE" "PROVISION_VAR_KEY" "secret"
run "$P" help options
expect "help options: the options section of --help, whole" eval '[ "$OUT" = "$(printf "%s\n" "$usage" | sed -n "/^options:/,/^\$/p" | sed "\$d")" ]'

# each module: its resources and, for each, exactly the options the resource
# itself says it takes (its error for an unknown option lists them)
kinds=$(grep -rhoE '^ *kind = "[a-z_]+\.[a-z_]+"' "$ROOT/lua/provision" | sed 's/.*"\(.*\)"/\1/' | sort -u)
[ -n "$kinds" ] || fail "kinds" "no kind = \"...\" found under lua/provision"
ok=1 why=""
for kind in $kinds; do
    mod=${kind%%.*}
    run "$P" help "$mod"
    [ "$RC" -eq 0 ] || { ok=0; why="$why help $mod: rc=$RC;"; continue; }
    shown=$(printf '%s\n' "$OUT" | awk -v k="$kind" '$1 == k { on = 1; next } on && /^$/ { exit } on && $1 !~ /^\(/ { print $1 }' | sort | tr '\n' ' ')
    printf 'local ok, err = pcall(%s, { provision_help_probe = 1 })\nprint(err:match("options: (.*)%%)$"))\n' "$kind" > probe.lua
    said=$("$P" --script probe.lua 2>&1 | tr -d ',' | tr ' ' '\n' | grep . | sort | tr '\n' ' ')
    printf '%s\n' "$OUT" | grep -q "^$kind " || { ok=0; why="$why $kind: not in help $mod;"; }
    [ "$shown" = "$said" ] || { ok=0; why="$why $kind: help [$shown] resource [$said];"; }
done
expect "help MODULE: every resource, with the options it accepts ($(echo $kinds | wc -w) kinds)" eval '[ $ok -eq 1 ] || { echo "$why"; false; }'
for m in archive compose docker exec fs http json pkg service sys yaml; do
    run "$P" help $m
    expect "help $m" eval '[ $RC -eq 0 ] && has "$OUT" "^$m: "'
done
run "$P" help fs
expect "help fs: types, defaults, the positional form" \
    eval 'has "$OUT" "^  mode  *mode  *default \"0600\"" && has "$OUT" "fs.directory \"PATH\"" && has "$OUT" "^  strings  *a string or a list"'
run "$P" help yaml
expect "help yaml: no resources, its functions" eval 'has "$OUT" "no resources" && has "$OUT" "yaml.load"'

run "$P" help nosuch
expect "help nosuch: exit 2, the topics" \
    eval '[ $RC -eq 2 ] && [ -z "$OUT" ] && has "$ERR" "no help topic '"'"'nosuch'"'"'" && has "$ERR" "topics: verbs, options, hosts, exit-codes, json, variables, archive"'
run "$P" help fs http
expect "help with two topics: exit 2" eval '[ $RC -eq 2 ] && has "$ERR" "unexpected argument '"'"'http'"'"'"'
run "$P" frob r.lua
expect "an unknown verb names help among the verbs" eval '[ $RC -eq 2 ] && has "$ERR" "verbs: apply, plan, teardown, list, facts, help"'

# -- ends the options
printf 'recipe { name = "w" }\nstep "mark" { fs.file { path = "weird-ran", content = "x" } }\n' > -weird-name.lua
run "$P" apply -weird-name.lua
expect "a recipe starting with -: an unknown option without --" eval '[ $RC -eq 2 ] && has "$ERR" "unknown option '"'"'-weird-name.lua'"'"'" && [ ! -e weird-ran ]'
run "$P" plan -- -weird-name.lua
expect "plan -- -weird-name.lua: plans it" eval '[ $RC -eq 3 ] && has "$OUT" "would-change" && [ ! -e weird-ran ]'
run "$P" apply -q -- -weird-name.lua
expect "apply -q -- -weird-name.lua: applies it" eval '[ $RC -eq 0 ] && [ -e weird-ran ]'
run "$P" -- -weird-name.lua
expect "-- -weird-name.lua: apply by default" eval '[ $RC -eq 0 ] && [ -z "$ERR" ]'
run "$P" apply -- -weird-name.lua -v
expect "after --, -v is a word, not an option" eval '[ $RC -eq 2 ] && has "$ERR" "unexpected argument '"'"'-v'"'"'"'
run "$P" help -- -x
expect "help -- -x: the topic -x (none such)" eval '[ $RC -eq 2 ] && has "$ERR" "no help topic '"'"'-x'"'"'"'
run "$P" --
expect "-- alone: no recipe, exit 2" eval '[ $RC -eq 2 ] && has "$ERR" "no recipe given"'
run "$P" teardown -q -- -weird-name.lua
expect "teardown -- -weird-name.lua: undoes it" eval '[ $RC -eq 0 ] && [ ! -e weird-ran ]'

# the man page: every option of --help in its source, and it renders
scd=$ROOT/docs/provision.1.scd
opts=$(printf '%s\n' "$usage" | awk '/^ +-/ { for (i = 1; i <= NF; i++) { w = $i; sub(/,$/, "", w); if (w !~ /^-/) break; print w } }
    /^(usage:)? *provision / { for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z]/) print $i }' | sort -u)
missing=""
for o in $opts; do grep -qF -- "*$o*" "$scd" || missing="$missing $o"; done
expect "man page: every option of --help ($(echo $opts | wc -w)) is there" eval '[ -z "$missing" ] || { echo "missing:$missing"; false; }'
missing=""
for v in PROVISION_STATE_DIR PROVISION_SSH PROVISION_SHIP PROVISION_COMPOSE NO_COLOR DOCKER_HOST; do
    grep -qF -- "*$(printf '%s' "$v" | sed 's/_/\\_/g')*" "$scd" || missing="$missing $v"
done
expect "man page: the environment variables" eval '[ -z "$missing" ] || { echo "missing:$missing"; false; }'
run "$P" help nosuch; topics=${ERR#*topics: }
missing=""
for t in ${topics//,/}; do grep -qF -- "*$t*" "$scd" || missing="$missing $t"; done
expect "man page: every help topic" eval '[ -z "$missing" ] || { echo "missing:$missing"; false; }'
run make -s -C "$ROOT" man
expect "make man: scdoc builds build/provision.1" eval '[ $RC -eq 0 ] && [ -s "$ROOT/build/provision.1" ] && [ ! "$ROOT/build/provision.1" -ot "$scd" ]'
run env MANWIDTH=100 man --warnings -l "$ROOT/build/provision.1"
expect "man -l renders it, no warnings" \
    eval '[ $RC -eq 0 ] && [ -z "$ERR" ] && has "$OUT" "^SYNOPSIS" && has "$OUT" "^EXIT STATUS" && has "$OUT" "PROVISION_STATE_DIR" && has "$OUT" "--max-fail-percent"'
run make -s -C "$ROOT" install-docs DESTDIR="$SANDBOX/root" PREFIX=/usr
expect "make install-docs: the man page and the completions" \
    eval '[ $RC -eq 0 ] && cmp -s "$ROOT/build/provision.1" root/usr/share/man/man1/provision.1 &&
          cmp -s "$ROOT/docs/completion/provision.bash" root/usr/share/bash-completion/completions/provision &&
          cmp -s "$ROOT/docs/completion/_provision" root/usr/share/zsh/vendor-completions/_provision'
