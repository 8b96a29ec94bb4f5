#!/bin/bash
# The docs cannot drift from the code: docs/modules/*.md are exactly what
# `make docs` makes of them from the resource definitions (docs/gen.lua),
# every option has its meaning (doc = "..." in R.define), every relative
# link of README.md and docs/ leads to a file (and heading) that exists, and
# `make man` builds provision(1) from docs/provision.1.scd.
. "$ROOT/tests/lib.sh"
GEN="$ROOT/docs/gen.lua"

# the pages as the definitions make them, against the pages as they are
mkdir gen
run "$P" --script "$GEN" modules "$SANDBOX/gen" "$ROOT"/docs/modules/*.md
expect "docs/modules: a page per module, a table per resource, a meaning per option" eval '[ $RC -eq 0 ] && [ -z "$ERR" ]'
d=$(diff -ru "$ROOT/docs/modules" gen 2>&1)
expect "docs/modules/*.md as make docs makes them (else: run make docs)" eval '[ -z "$d" ] || { printf "%s\n" "$d" | head -n 40; false; }'

# ... and the check fails when they differ: a row edited by hand, an option
# without doc text, a block of a kind that does not exist, a missing page
mkdir pages out
cp "$ROOT"/docs/modules/*.md pages/
sed -i 's/^| `force` | boolean |.*/| `force` | boolean | `false` | edited by hand |/' pages/fs.md
run "$P" --script "$GEN" modules "$SANDBOX/out" pages/*.md
expect "an edited table: made anew, so the diff shows it" eval '[ $RC -eq 0 ] && ! diff -q pages/fs.md out/fs.md >/dev/null && has "$(grep "^| \`force\`" out/fs.md)" "never a folder"'
cp -R "$ROOT/lua" lua
sed -i 's/force = { "boolean", default = false, doc = "[^"]*" }/force = { "boolean", default = false }/' lua/provision/fs/link.lua
grep -q 'force = { "boolean", default = false }' lua/provision/fs/link.lua || fail "docs: the doc of fs.symlink's force not found to remove"
PROVISION_LUA_DIR="$SANDBOX/lua" run "$P" --script "$GEN" modules "$SANDBOX/out" "$ROOT"/docs/modules/*.md
expect "an option without doc text: exit 1, naming it" eval '[ $RC -eq 1 ] && has "$ERR" "fs.symlink: option .force. has no doc text"'
printf '# fs\n<!-- generated: fs.nothing (make docs) -->\n<!-- end generated -->\n' > pages/fs.md
rm pages/yaml.md
run "$P" --script "$GEN" modules "$SANDBOX/out" pages/*.md
expect "a block of no resource, resources without a block, a module without a page: exit 1" \
    eval '[ $RC -eq 1 ] && has "$ERR" "block fs.nothing: module fs has no such" && has "$ERR" "no generated block for fs.file" && has "$ERR" "module yaml has no page"'

# links: every relative link of the README and docs/ (a page, a file, a
# heading's anchor)
cd "$ROOT" || exit 1
run "$P" --script "$GEN" links README.md docs/*.md docs/modules/*.md
cd "$SANDBOX" || exit 1
expect "README.md and docs/: every relative link leads to a file and heading that exist" eval '[ $RC -eq 0 ] && [ -z "$ERR" ]'
mkdir -p l/sub && printf '# Top\n## A heading, with `code`\n' > l/sub/page.md
printf '[a](sub/page.md) [b](sub/page.md#a-heading-with-code) [c](https://example.org/x) [d](#top-of-this)\n# Top of this\n' > l/ok.md
printf 'text [gone](sub/gone.md)\n\n[anchor](sub/page.md#no-such)\n```\n[in code](not/checked.md)\n```\n' > l/bad.md
run "$P" --script "$GEN" links l/ok.md
expect "links: files, anchors, URLs, same-page anchors pass" eval '[ $RC -eq 0 ]'
run "$P" --script "$GEN" links l/bad.md
expect "links: a missing file, a missing anchor: exit 1, each named; code blocks skipped" \
    eval '[ $RC -eq 1 ] && has "$ERR" "l/bad.md:1: link sub/gone.md" && has "$ERR" "l/bad.md:3: link sub/page.md#no-such" && ! has "$ERR" "not/checked"'

# the worked plugin example of docs/writing-modules.md, as it stands there:
# each fenced block after a line <!-- file: NAME --> is saved as NAME
mkdir -p ex/modules && cd ex || exit 1
awk '/^<!-- file: .* -->$/ { name = $3; next }
     name != "" && /^```/ { if (on) { on = 0; name = "" } else on = 1; next }
     on { print > name }' "$ROOT/docs/writing-modules.md"
expect "writing-modules.md: the example's files found" eval '[ -s modules/greeting.lua ] && [ -s greet.lua ]'
run "$P" greet.lua
expect "the plugin example: apply writes the file" eval '[ $RC -eq 0 ] && has "$OUT" "changed=1" && [ "$(cat hello.txt)" = "hello, world" ]'
run "$P" greet.lua
expect "the plugin example: a re-run is ok" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0"'
run "$P" plan greet.lua -e name=you
expect "the plugin example: plan of another name would rewrite it (exit 3)" eval '[ $RC -eq 3 ] && has "$OUT" "rewrite ./hello.txt"'
run "$P" teardown greet.lua
expect "the plugin example: teardown removes what it wrote" eval '[ $RC -eq 0 ] && [ ! -e hello.txt ]'
cd "$SANDBOX" || exit 1

# the man page: make man builds it with scdoc (make deps installs scdoc)
if ! command -v scdoc >/dev/null 2>&1; then
    fail "make man" "scdoc is not installed (make deps installs it)"
else
    run make --no-print-directory -B -C "$ROOT" man   # -B: built now, not found built
    expect "make man builds build/provision.1" eval '[ $RC -eq 0 ] && grep -q "^\.TH \"provision\" \"1\"" "$ROOT/build/provision.1"'
fi
