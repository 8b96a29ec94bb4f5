#!/bin/bash
# Step selection (issue 18): --only and --skip take names or globs, steps
# carry tags = { ... } for --tags and --skip-tags; apply, plan and teardown
# take exactly the steps chosen; a name, glob or tag that matches nothing,
# an empty tag, a malformed tags field or tags on a check is exit 2 with
# the message, and nothing changes.
. "$ROOT/tests/lib.sh"
export PROVISION_STATE_DIR="$SANDBOX/.state" NO_COLOR=1

cat > sel.lua <<'EOF'
recipe { name = "selection" }
step "web config" { tags = { "web", "config" }, fs.file { path = "out/web.conf", content = "w\n" } }
step "web start" { tags = "web", fs.file { path = "out/web.run", content = "r\n" } }
step "db" { tags = { "db" }, fs.file { path = "out/db", content = "d\n" } }
step "report" { fs.file { path = "out/report", content = "x\n" } }
EOF
mkdir out
made() { (cd out && ls | tr '\n' ' '); }

# ran NAME WANT-FILES ARGS...: apply with ARGS makes exactly WANT-FILES, then all goes
ran() {
    n=$1 want=$2; shift 2
    rm -rf out .state; mkdir out
    run "$P" sel.lua "$@"
    got=$(made)
    if [ "$RC" = 0 ] && [ "$got" = "$want" ]; then pass "$n"; else fail "$n" "rc=$RC made [$got] want [$want] $OUT $ERR"; fi
}
ran "--only a name" "db " --only db
ran "--only a glob" "web.conf web.run " --only 'web*'
ran "--only a class glob" "db web.conf web.run " --only '[wd]*'
ran "--only ? matches one character" "web.run " --only 'web?start'
ran "--skip a glob" "db report " --skip 'web *'
ran "--skip twice" "web.conf " --skip db --skip 'report' --skip 'web start'
ran "--tags one" "web.conf web.run " --tags web
ran "--tags a comma list" "db web.conf " --tags db,config
ran "--tags repeated" "db web.conf " --tags db --tags config
ran "--tags=web (inline value)" "web.conf web.run " --tags=web
ran "--skip-tags" "db report " --skip-tags web
ran "--tags with --skip: the skip wins" "web.conf " --tags web --skip 'web start'
ran "--only and --tags: either picks a step" "report web.conf web.run " --only report --tags web
ran "--from with --skip-tags" "report " --from db --skip-tags db

rm -rf out .state; mkdir out
run "$P" plan sel.lua --tags db
expect "plan --tags: only the tagged step is checked" \
    eval '[ $RC = 3 ] && has "$OUT" "db" && ! has "$OUT" "web config" && has "$OUT" "would-change=1"'

# teardown takes the chosen steps too (no teardown block)
run "$P" sel.lua
run "$P" teardown sel.lua --skip-tags web
expect "teardown --skip-tags web: the web files stay, the rest go" \
    eval '[ $RC = 0 ] && [ "$(made)" = "web.conf web.run " ]'
run "$P" teardown sel.lua --only 'web c*'
expect "teardown --only a glob: that step's file goes" eval '[ $RC = 0 ] && [ "$(made)" = "web.run " ]'

# refused WANT ARGS...: exit 2, stderr exactly WANT, nothing made
refused() {
    n=$1 want=$2; shift 2
    rm -rf out .state; mkdir out
    run "$P" "$@"
    if [ "$RC" = 2 ] && [ "$ERR" = "$want" ] && [ -z "$(made)" ] && [ ! -e .state ]; then pass "$n"
    else fail "$n" "rc=$RC want [$want] got [$ERR] made [$(made)]"; fi
}
refused "a glob that matches nothing" \
    "provision: --only: no step matches 'deploy*' (steps: web config, web start, db, report)" sel.lua --only 'deploy*'
refused "--skip of a step not there" "provision: --skip: no step named 'dbs'" sel.lua --skip dbs
refused "a tag no step has" "provision: --tags: no step has the tag 'cache' (tags: config, db, web)" sel.lua --tags cache
refused "--skip-tags of a tag no step has" \
    "provision: --skip-tags: no step has the tag 'Web' (tags: config, db, web)" sel.lua --skip-tags Web
refused "an empty tag in the list" "provision: --tags 'web,': an empty tag (tags are comma-separated words)" \
    sel.lua --tags web,
refused "--only with an empty name" "provision: --only needs a step name or glob, not an empty string" sel.lua --only ''
refused "--from with --only still refused" "provision: --from and --only cannot be used together" \
    sel.lua --from db --only db

printf 'recipe { name = "b" }\nstep "s" { tags = { "two words" }, fs.file { path = "out/x", content = "x" } }\n' > bad.lua
refused "a tag with a space: file:line" \
    "provision: bad.lua:2: step 's': tag \"two words\": a tag is a word of letters, digits and _ . : / - (no spaces or commas)" bad.lua
printf 'recipe { name = "b" }\nstep "s" { tags = {}, fs.file { path = "out/x", content = "x" } }\n' > bad.lua
refused "tags = {}: file:line" "provision: bad.lua:2: step 's': field 'tags' must be a tag or a list of tags" bad.lua
printf 'recipe { name = "b" }\ncheck "c" { tags = "x", check = function() return true end }\n' > bad.lua
refused "tags on a check" "provision: bad.lua:2: check 'c': tags pick steps (--tags, --skip-tags); a check has none" bad.lua

cat > tb.lua <<'EOF'
recipe { name = "with-block" }
step "a" { tags = "x", fs.file { path = "out/a", content = "a" } }
teardown { fs.absent "out/a" }
EOF
refused "teardown --tags with a teardown block: refused, it runs whole" \
    "provision: --only, --skip, --tags, --skip-tags and --from choose steps to undo; this recipe's teardown block runs whole" \
    teardown tb.lua --tags x

run "$P" list sel.lua
expect "list shows each step's tags" eval 'has "$OUT" "1\.  web config  (fs.file)  tags: web, config" && has "$OUT" "4\.  report  (fs.file)$"'
run "$P" list --json sel.lua
expect "list --json: tags on the step events that have them" \
    eval 'has "$OUT" "\"name\":\"web config\".*\"tags\":\[\"web\",\"config\"\]" && ! has "$(printf "%s" "$OUT" | grep "\"report\"")" tags'
