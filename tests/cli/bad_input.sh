#!/bin/bash
# Bad input: every malformed recipe and every misuse of the CLI gets exit 2,
# a message (with file:line for recipes), and nothing is created.
. "$ROOT/tests/lib.sh"

cp -R "$ROOT/tests/cli/bad" "$SANDBOX/recipes"
snapshot() { (cd "$SANDBOX" && find . -path ./.out -prune -o -path ./.err -prune -o -print | sort); }
before=$(snapshot)
unchanged() { [ "$(snapshot)" = "$before" ]; }

for f in "$SANDBOX"/recipes/*.lua; do
    name=$(basename "$f")
    want=$(sed -n '1s/^-- expect: //p' "$f" | sed 's/%/\\/g')
    for verb in apply plan; do
        run "$P" $verb "recipes/$name"
        if [ "$RC" -ne 2 ]; then fail "bad recipe $name ($verb): exit 2" "rc=$RC err=[$ERR]"; continue; fi
        if ! printf '%s' "$ERR" | grep -Eq -- "$want"; then fail "bad recipe $name ($verb): message" "want /$want/ got [$ERR]"; continue; fi
        if ! unchanged; then fail "bad recipe $name ($verb): nothing created" "$(snapshot)"; continue; fi
        pass "bad recipe $name ($verb)"
    done
done

# CLI misuse
cat > ok.lua <<'R'
recipe { name = "ok" }
local v = vars { dir = "./out", count = 3, flag = false, pw = secret "s3cret-value" }
step "one" { check = function() return true end }
R
before=$(snapshot)
cli_case() { # name expected-pattern args...
    n=$1 pat=$2; shift 2
    run "$P" "$@"
    if [ "$RC" -eq 2 ] && printf '%s' "$ERR" | grep -Eq -- "$pat" && unchanged; then pass "cli: $n"
    else fail "cli: $n" "rc=$RC err=[$ERR]"; fi
}
cli_case "unknown verb" "unknown verb 'frobnicate'" frobnicate ok.lua
cli_case "unknown flag" "unknown option '--frobnicate'" ok.lua --frobnicate
cli_case "missing recipe file" "cannot open recipe nope.lua" nope.lua
cli_case "no recipe" "no recipe given"
cli_case "bad -e" "bad variable 'novalue': expected KEY=VALUE" ok.lua -e novalue
cli_case "-e without value" "-e needs a value" ok.lua -e
cli_case "unknown -e key" "unknown variable 'colour'" ok.lua -e colour=red
cli_case "-e not a number" "variable 'count' must be a whole number, not \"3.5\"" ok.lua -e count=3.5
cli_case "-e not a number (word)" "variable 'count' must be a number, not \"many\"" ok.lua -e count=many
cli_case "-e not a boolean" "variable 'flag' must be true or false" ok.lua -e flag=maybe
cli_case "bad --timeout" "bad --timeout 'soon'" ok.lua --timeout soon
cli_case "--only unknown step" "--only: no step named 'two'" ok.lua --only two
cli_case "--from unknown step" "--from: no step named 'two'" ok.lua --from two
cli_case "-q with -v" "cannot be used together" ok.lua -q -v
cli_case "two recipes" "unexpected argument 'other.lua'" ok.lua other.lua
cli_case "plan with bad -e" "unknown variable 'x'" plan ok.lua -e x=1
cli_case "teardown with bad -e" "unknown variable 'x'" teardown ok.lua -e x=1

# good -e values are accepted and coerced
run "$P" list ok.lua -e count=7 -e flag=yes -e dir=/tmp/x -e pw=other
expect "cli: -e coerced" has "$OUT" "count = 7"
expect "cli: -e boolean" has "$OUT" "flag = true"
expect "cli: secret var masked in list" eval '! has "$OUT" "other" && has "$OUT" "pw = \*\*\*\*\*\*\*\*"'
run "$P" --version
expect "cli: --version" eval '[ $RC -eq 0 ] && has "$OUT" "^provision "'
v1=$OUT
run "$P" --version x.lua
expect "cli: --version says the same with more arguments (the slow path)" eval '[ $RC -eq 0 ] && [ "$OUT" = "$v1" ]'
run "$P" --help
expect "cli: --help" eval '[ $RC -eq 0 ] && has "$OUT" "usage: provision"'

# a mode written as a Lua number would be decimal: refused at load time
printf 'recipe{name="m"}\nstep "b" { fs.file { path = "y", content = "z", mode = 644 } }\n' > numeric-mode.lua
run "$P" numeric-mode.lua
expect "mode = 644: exit 2, file:line, says to write \"0644\", nothing written" \
    eval '[ $RC -eq 2 ] && has "$ERR" "numeric-mode.lua:2: fs.file: option .mode. must be a file mode as a string such as \"0644\"" && [ ! -e y ]'

# a state folder that cannot be made or locked: exit 2, said plainly (not
# "another run (pid 20)", which was ENOTDIR read as a pid), nothing done
printf 'recipe{name="sd"}\nstep "b" { fs.file { path = "sd-out", content = "z" } }\n' > sd.lua
echo x > a-file
run "$P" sd.lua --state-dir a-file
expect "--state-dir is a file: exit 2, 'Not a directory', nothing written" \
    eval '[ $RC -eq 2 ] && has "$ERR" "state folder a-file: Not a directory" && ! has "$ERR" "another provision run" && [ ! -e sd-out ]'
run "$P" sd.lua --state-dir a-file/below
expect "--state-dir below a file: exit 2" eval '[ $RC -eq 2 ] && has "$ERR" "Not a directory" && [ ! -e sd-out ]'
mkdir -p sd-state/lock
run "$P" sd.lua --state-dir sd-state
expect "a lock that is a folder: exit 2, named, nothing written" \
    eval '[ $RC -eq 2 ] && has "$ERR" "cannot lock sd-state/lock: Is a directory" && ! has "$ERR" "another provision run" && [ ! -e sd-out ]'

# -e numbers are decimal: no hex, no spaces (Lua's tonumber takes both)
printf 'recipe{name="n"}\nlocal v = vars { port = 80 }\nstep "s" { fs.file { path = "n-out", content = tostring(v.port) } }\n' > num.lua
for bad in 0x10 " 80" "80 " 1.5.2; do
    run "$P" num.lua -e "port=$bad"
    expect "-e port='$bad': exit 2, named, nothing written" eval '[ $RC -eq 2 ] && has "$ERR" "variable .port. must be a number" && [ ! -e n-out ]'
done
run "$P" num.lua -e port=-8
expect "-e port=-8 is a number" eval '[ $RC -eq 0 ] && [ "$(cat n-out)" = -8 ]'

# a NUL byte in a path would be cut short by C ("a\0b" is "a"): refused at load time
printf 'recipe{name="nul"}\nstep "x" { fs.file { path = "nul-a\\0b", content = "c" } }\n' > nul.lua
run "$P" nul.lua
expect "a NUL byte in a path: exit 2, file:line, nothing written" \
    eval '[ $RC -eq 2 ] && has "$ERR" "nul.lua:2: fs.file: option .path. must be a string without NUL bytes" && [ ! -e nul-a ]'
printf 'recipe{name="root"}\nstep "x" { fs.absent { "/tmp/.." } }\n' > root.lua
run "$P" plan root.lua
expect "fs.absent of the root spelled /tmp/..: exit 2, refused at load time" eval '[ $RC -eq 2 ] && has "$ERR" "refusing to remove"'
run "$P" plan root.lua --state-dir ""
expect "--state-dir \"\": exit 2, said plainly" eval '[ $RC -eq 2 ] && has "$ERR" "state-dir needs a folder"'
