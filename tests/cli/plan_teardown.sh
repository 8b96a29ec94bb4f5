#!/bin/bash
# A plan of teardown (issue 18): `provision plan --teardown RECIPE` (and
# `teardown --plan`) says what teardown would remove and what it would
# leave, and why, changing nothing at all (files, state, lock: a listing
# before and after); exit 3 when teardown would change something, 0 when
# not; text and --json (status would-change). What it says is what the
# teardown then does. A revert that cannot say what it would do (a custom
# step's) is "would revert (not previewed)".
. "$ROOT/tests/lib.sh"

mkdir pre
cat > r.lua <<'EOF2'
recipe { name = "plan-teardown" }
step "dirs" { fs.directory { "./www", "./www/static", "./pre" } }
step "index" { fs.file { path = "./www/index.html", content = "hi\n" } }
step "conf" { fs.file { path = "./www/app.conf", content = "a=1\n" } }
step "kept" { fs.file { path = "./old.conf", content = "new\n", backup = true } }
step "link" { fs.symlink { path = "./www/current", target = "static" } }
step "custom" {
  check = function() return io.open("marker") ~= nil end,
  apply = function(ctx) io.open("marker", "w"):close(); ctx:created { type = "file", path = "marker" } end,
  revert = function() os.remove("marker") end,
}
EOF2
echo old > old.conf
# (the listings are kept outside the folder listed: a file made in it would
# move the folder's own mtime, which the listing holds, by a second now and then)
LST=$(mktemp -d); cleanup_add "rm -rf '$LST'"
listing() { # every path with its type, mode, size, mtime and content digest (the state's too)
    find . \( -name 'listing.*' -o -name .out -o -name .err \) -prune -o -print0 | sort -z | xargs -0 stat -c '%n %F %a %s %Y'
    find . -type f ! -name .out ! -name .err ! -name 'listing.*' -print0 | sort -z | xargs -0 sha256sum
}

run "$P" plan --teardown r.lua
expect "nothing applied yet: nothing to undo, exit 0, no state folder made" \
    eval '[ $RC = 0 ] && has "$OUT" "would-change=0" && [ ! -e .provision ]'

run "$P" r.lua
echo edited >> www/app.conf
listing > "$LST/before"
run "$P" plan --teardown r.lua
listing > "$LST/after"
expect "exit 3: teardown would change something" test "$RC" = 3
expect "nothing changed: files, state and lock as they were" cmp -s "$LST/before" "$LST/after"
expect "text: said as a plan of teardown" has "$OUT" "(plan of teardown: nothing is changed)"
expect "what it would remove: the link, the file, the empty folder" \
    eval 'has "$OUT" "link .*would-change .*would remove \./www/current" && has "$OUT" "      - \./www/index.html" && has "$OUT" "      - \./www/static/"'
expect "what it would leave, and why: a file changed since" \
    eval 'has "$OUT" "conf .* ok .*would leave \./www/app.conf: changed since it was written" && has "$OUT" "= \./www/app.conf: left, changed since it was written"'
expect "a folder that would still hold what is left: left, why (counting what would go first)" \
    has "$OUT" "= \./www/: left, not empty (1 entry)"
expect "a backup that would be put back" has "$OUT" "~ \./old.conf: its old content put back (from \./old.conf\..*\.provision~)"
expect "a custom revert: would revert (not previewed)" \
    has "$OUT" "custom .*would-change .*would revert custom step (not previewed"
expect "the folder that was there before is not named" eval '! has "$OUT" "pre/"'
expect "summary counts would-change" has "$OUT" "ok=1 would-change=5 failed=0"

run "$P" teardown --plan r.lua
alias_out=$OUT
run "$P" plan --teardown r.lua
no_ms() { printf '%s\n' "$1" | sed -E 's/[0-9.]+m?s\b//g'; }
expect "teardown --plan: the same plan" eval '[ "$(no_ms "$alias_out")" = "$(no_ms "$OUT")" ] && has "$OUT" "would-change=5"'

run "$P" plan --teardown r.lua --json
listing > "$LST/after"
expect "--json: exit 3, only events, each step's status and changes" \
    eval '[ $RC = 3 ] && ! printf "%s\n" "$OUT" | grep -qv "^{\"event\":" && has "$OUT" "\"name\":\"link\",\"kind\":\"fs.symlink\",\"status\":\"would-change\"" && has "$OUT" "\"changes\":\[\"- \./www/current\"\]"'
expect "--json: start and summary say plan, the summary would-change" \
    eval 'has "$OUT" "{\"event\":\"start\",\"recipe\":\"plan-teardown\",\"steps\":6,\"plan\":true,\"verb\":\"teardown\"}" && has "$OUT" "\"would-change\":5,.*\"plan\":true,\"verb\":\"teardown\""'
expect "--json: nothing changed either" cmp -s "$LST/before" "$LST/after"

plan_out=$(printf '%s\n' "$OUT")
run "$P" teardown r.lua
expect "the teardown does what the plan said" \
    eval '[ $RC = 0 ] && [ ! -L www/current ] && [ ! -e www/index.html ] && [ ! -e www/static ] && [ -f www/app.conf ] && [ -d www ] && [ -d pre ] && [ "$(cat old.conf)" = old ] && [ ! -e marker ] && has "$OUT" "ok=1 changed=5"'
run "$P" plan --teardown r.lua
expect "after the teardown: nothing to undo, exit 0" eval '[ $RC = 0 ] && has "$OUT" "would-change=0"'
rm -rf www

# a teardown block, and a step renamed since its apply
cat > b.lua <<'EOF2'
recipe { name = "plan-block" }
step "site" { fs.directory "./site" }
step "page" { fs.file { path = "./site/page.html", content = "p\n" } }
teardown { fs.absent "./site" }
EOF2
run "$P" b.lua
sed 's/step "page"/step "page renamed"/' b.lua > b2.lua && mv b2.lua b.lua
listing > "$LST/before"
run "$P" plan --teardown b.lua
listing > "$LST/after"
expect "a teardown block: its resources' plan (what fs.absent would remove)" \
    eval '[ $RC = 3 ] && has "$OUT" "absent \./site .*would-change" && has "$OUT" "- \./site (folder, 1 entry)"'
expect "a step no longer in the recipe: what its revert would do, and why" \
    eval 'has "$OUT" "page .*would-change .*would revert what it made (the step is no longer in the recipe)" && has "$OUT" "      - \./site/page.html"'
expect "a teardown block: nothing changed" cmp -s "$LST/before" "$LST/after"

run "$P" apply --teardown r.lua
expect "--teardown goes with plan only (exit 2)" eval '[ $RC = 2 ] && has "$ERR" "--teardown goes with plan"'
run "$P" plan --plan r.lua
expect "--plan goes with teardown only (exit 2)" eval '[ $RC = 2 ] && has "$ERR" "--plan goes with teardown"'
