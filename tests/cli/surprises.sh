#!/bin/bash
# No silent surprises (issue 18): what a recipe or the command line says
# twice, or says and is then ignored, or says empty, is refused with a
# message naming each place (exit 2, nothing changed); where one form is
# legitimate (a recipe and one it includes sharing a variable), the rule is
# tested as README states it.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"

# refused NAME WANT ARGS...: exit 2, stderr exactly WANT, nothing created
refused() {
    n=$1 want=$2; shift 2
    before=$(ls -A | grep -v '^\.\(out\|err\)$')
    run "$P" "$@"
    after=$(ls -A | grep -v '^\.\(out\|err\)$')
    if [ "$RC" -eq 2 ] && [ "$ERR" = "$want" ] && [ "$before" = "$after" ]; then pass "$n"
    elif [ "$before" != "$after" ]; then fail "$n" "files changed: [$before] -> [$after]"
    else fail "$n" "rc=$RC want [$want] got [$ERR]"; fi
}

# ---- empty paths: at load time, file:line, exit 2
empty() { # name option line-of-lua
    printf 'step "s" { %s }\n' "$3" > ep.lua
    refused "empty path: $1" "provision: ep.lua:1: $2" plan ep.lua
}
empty 'fs.file' "fs.file: option 'path' is an empty path" 'fs.file { path = "", content = "x" }'
empty 'fs.directory ""' "fs.directory: option 'path' is an empty path" 'fs.directory ""'
empty 'fs.directory in a list' "fs.directory: option 'path': item 2 is an empty path" 'fs.directory { "d", "" }'
empty 'fs.template' "fs.template: option 'path' is an empty path" 'fs.template { path = "", template = "x" }'
empty 'fs.env_file' "fs.env_file: option 'path' is an empty path" 'fs.env_file { path = "", values = { A = "1" } }'
empty 'fs.symlink' "fs.symlink: option 'path' is an empty path" 'fs.symlink { path = "", target = "/tmp" }'
empty 'fs.absent ""' "fs.absent: option 'path' is an empty path" 'fs.absent ""'
empty 'archive.extract dest' "archive.extract: option 'dest' is an empty path" 'archive.extract { src = "a.tar", dest = "" }'
empty 'archive.create dest' "archive.create: option 'dest' is an empty path" 'archive.create { src = "d", dest = "" }'
empty 'http.file dest' "http.file: option 'dest' is an empty path" 'http.file { url = "http://127.0.0.1:1/x", dest = "" }'

# ---- http: the scheme in any case (RFC 3986 3.1)
start_httpd
UP=$(printf '%s' "$BASE" | sed 's|^http://|HTTP://|')
cat > h.lua <<R
step "get" { http.file { url = "$UP/file/a?size=10&seed=a", dest = "a.bin" } }
check "up" { http.expect { url = "HtTp://127.0.0.1:$HTTPD_PORT/file/b?size=1", status = 200 } }
R
run "$P" h.lua
expect "http: HTTP:// downloads, HtTp:// is checked" eval '[ $RC -eq 0 ] && [ "$(stat -c %s a.bin)" = 10 ]'
run "$P" h.lua
expect "http: again, ok (the URL recorded in lower case matches)" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1"'
printf 'step "g" { http.file { url = "FTP://example.com/x", dest = "x" } }\n' > hf.lua
refused "http: FTP:// still refused" "provision: hf.lua:1: http.file: url must start with http:// or https://" plan hf.lua

# ---- -e
printf 'local v = vars { flag = false, ratio = 1.5, port = 80 }\nstep "a" { check = function() return true end }\n' > e.lua
refused "-e flag= (empty boolean)" "provision: e.lua:1: variable 'flag' must be true or false, not \"\" (true, yes, on, 1 or false, no, off, 0)" plan e.lua -e flag=
refused "-e flag=maybe names the words" "provision: e.lua:1: variable 'flag' must be true or false, not \"maybe\" (true, yes, on, 1 or false, no, off, 0)" plan e.lua -e flag=maybe
PROVISION_VAR_flag='' refused "PROVISION_VAR_flag= (empty boolean)" "provision: e.lua:1: variable 'flag' must be true or false, not \"\" (true, yes, on, 1 or false, no, off, 0)" plan e.lua
refused "-e ratio=1e400 (overflows)" "provision: e.lua:1: variable 'ratio' must be a number, not \"1e400\" (out of range)" plan e.lua -e ratio=1e400
refused "-e ratio=-1e400 (overflows)" "provision: e.lua:1: variable 'ratio' must be a number, not \"-1e400\" (out of range)" plan e.lua -e ratio=-1e400
refused "-e ratio=inf" "provision: e.lua:1: variable 'ratio' must be a number, not \"inf\"" plan e.lua -e ratio=inf
refused "-e port=1e400 (whole number, overflows)" "provision: e.lua:1: variable 'port' must be a number, not \"1e400\" (out of range)" plan e.lua -e port=1e400
refused "-e given twice" "provision: variable 'port' is given twice (-e port=...): give it once" plan e.lua -e port=1 -e port=2
refused "-e given twice: said before @FILE is read" "provision: variable 'port' is given twice (-e port=...): give it once" plan e.lua -e port=1 -e port=@nowhere
refused "--var and -e given twice" "provision: variable 'port' is given twice (-e port=...): give it once" plan e.lua --var=port=1 -e port=1
run "$P" list e.lua -e ratio=1e300 -e flag=off -e port=8080
expect "-e: large but finite, and the words" eval '[ $RC -eq 0 ] && has "$OUT" "ratio = 1e+300" && has "$OUT" "flag = false" && has "$OUT" "port = 8080"'

# ---- step names: not blank, no control characters
name_case() { # name lua-name-literal shown
    printf 'step %s { fs.directory "d" }\n' "$2" > nm.lua
    refused "step name: $1" "provision: nm.lua:1: step: the name $3" plan nm.lua
}
name_case "blank" '" "' '" " is blank'
name_case "tabs only" '"\t"' '"\t" is blank'
name_case "newline" '"a\nb"' '"a\nb" holds a control character (a name is shown on one line)'
name_case "carriage return" '"a\rb"' '"a\x0db" holds a control character (a name is shown on one line)'
name_case "escape" '"a\27[31mb"' '"a\x1b[31mb" holds a control character (a name is shown on one line)'
name_case "C1 control (U+0085)" '"a\194\133"' '"a\u0085" holds a control character (a name is shown on one line)'
printf 'step "a" { fs.directory "d" }\ncheck "x\\ny" { fs.directory "e" }\n' > nc.lua
refused "check name: newline" "provision: nc.lua:2: check: the name \"x\\ny\" holds a control character (a name is shown on one line)" plan nc.lua
printf 'step "caf\\195\\169 \\226\\152\\149" { check = function() return true end }\n' > nu.lua
run "$P" list nu.lua
expect "step name: other UTF-8 text is fine" eval '[ $RC -eq 0 ] && has "$OUT" "café ☕"'

# ---- declared twice, or said and ignored

cat > inc.lua <<'R'
recipe { name = "inc" }
local v = vars { n = 3, dir = "./inc" }
step "s" { fs.directory(v.dir) }
teardown { fs.absent(v.dir) }
R

printf 'teardown { fs.absent "a" }\nstep "x" { fs.directory "d" }\nteardown { fs.absent "d" }\n' > t2.lua
refused "teardown twice" "provision: t2.lua:3: teardown {} is declared twice (first at t2.lua:1): a recipe has one teardown block" plan t2.lua
printf 'include("inc.lua")\nteardown { fs.absent "x" }\n' > t3.lua
refused "teardown of the includer and the included" "provision: t3.lua:2: teardown {} is declared twice (first at ./inc.lua:4): a recipe has one teardown block" plan t3.lua

printf 'local a = vars { n = 1 }\nlocal b = vars { n = 2 }\nstep "x" { fs.directory "d" }\n' > v2.lua
refused "vars twice" "provision: v2.lua:2: vars: variable 'n' is declared twice (first at v2.lua:1): declare it once" plan v2.lua
printf 'local a = vars { n = 1 }\nlocal b = vars { n = 1 }\nstep "x" { fs.directory "d" }\n' > v3.lua
refused "vars twice, same default" "provision: v3.lua:2: vars: variable 'n' is declared twice (first at v3.lua:1): declare it once" plan v3.lua

printf 'recipe { name = "a" }\nrecipe { name = "b" }\nstep "x" { fs.directory "d" }\n' > r2.lua
refused "recipe twice" "provision: r2.lua:2: recipe {} is declared twice (first at r2.lua:1): declare it once" plan r2.lua
# an included recipe has its recipe {} (it runs on its own too): the includer's name wins
printf 'include("inc.lua")\nrecipe { name = "outer" }\n' > r3.lua
run "$P" list r3.lua
expect "recipe {} of an included recipe: the includer's name" eval '[ $RC -eq 0 ] && [ "$(printf "%s" "$OUT" | head -n 1)" = outer ]'

printf 'step "a" { fs.directory "d" }\nstep "b" { fs.directory "e" }\nreplace_step "a" { fs.directory "f", after = "b" }\n' > rs.lua
refused "replace_step with after" "provision: rs.lua:3: replace_step 'a': after = \"b\" would be ignored: the step keeps its place (declared at rs.lua:1); remove_step it and declare it again with after = ..." plan rs.lua
printf 'step "a" { fs.directory "d" }\nstep "b" { fs.directory "e" }\nreplace_step "b" { before = "a", fs.directory "f" }\n' > rs2.lua
refused "replace_step with before" "provision: rs2.lua:3: replace_step 'b': before = \"a\" would be ignored: the step keeps its place (declared at rs2.lua:2); remove_step it and declare it again with before = ..." plan rs2.lua
printf 'step "a" { fs.directory "d" }\ncheck "c" { after = "a", fs.directory "e" }\n' > ca.lua
refused "check with after" "provision: ca.lua:2: check 'c': before/after place a step among the steps; a check has no place among them" plan ca.lua
printf 'step "a" { fs.directory "d" }\nteardown { before = "a", fs.absent "d" }\n' > ta.lua
refused "teardown with before" "provision: ta.lua:2: teardown 'teardown': before/after place a step among the steps; a teardown has no place among them" plan ta.lua

# ---- a variable of the includer and the included
printf 'local v = vars { n = "many" }\ninclude("inc.lua")\n' > i1.lua
refused "variable: includer's type differs" "provision: ./inc.lua:2: vars: variable 'n' is a whole number here but a string at i1.lua:1: a variable has one type" plan i1.lua
printf 'include("inc.lua")\nlocal v = vars { n = 1.5 }\n' > i2.lua
refused "variable: read back as another type" "provision: i2.lua:2: vars: variable 'n' is a number here but a whole number at ./inc.lua:2: a variable has one type" plan i2.lua
printf 'local v = vars { dir = "./mine" }\ninclude("inc.lua")\n' > i3.lua
refused "variable: included recipe's default differs" "provision: ./inc.lua:2: vars: variable 'dir' defaults to \"./inc\" here but to \"./mine\" at i3.lua:1: a recipe and one it includes share a variable only with the same default (to set the included recipe's: include(path, { dir = ... }); to read its value: declare it after the include with \"\", 0 or false)" plan i3.lua
printf 'include("inc.lua")\nlocal v = vars { dir = "./other" }\n' > i4.lua
refused "variable: includer's later default differs" "provision: i4.lua:2: vars: variable 'dir' defaults to \"./other\" here but to \"./inc\" at ./inc.lua:2: a recipe and one it includes share a variable only with the same default (to set the included recipe's: include(path, { dir = ... }); to read its value: declare it after the include with \"\", 0 or false)" plan i4.lua
printf 'local v = vars { n = 1 }\ninclude("inc.lua", { n = 2 })\n' > i5.lua
refused "include override of the includer's variable" "provision: i5.lua:2: include: variable 'n' is already declared (at i5.lua:1)" plan i5.lua
# the rule: the same type and default is one shared variable; after the
# include, "", 0 or false reads the included recipe's value
printf 'local v = vars { dir = "./inc", n = 3 }\ninclude("inc.lua")\n' > i6.lua
run "$P" list i6.lua -e dir=./given
expect "variable: same type and default, shared (one -e sets both)" eval '[ $RC -eq 0 ] && has "$OUT" "dir = ./given" && has "$OUT" "n = 3"'
printf 'include("inc.lua", { dir = "./x" })\nlocal v = vars { dir = "", n = 0 }\nstep "t" { fs.directory(v.dir .. "/t" .. v.n) }\n' > i7.lua
run "$P" plan i7.lua
expect "variable: read after the include with an empty default" eval '[ $RC -eq 3 ] && has "$OUT" "+ ./x/t3/"'
