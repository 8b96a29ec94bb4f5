#!/bin/bash
# fs's parts other than fs.file (folders, template, env_file, link, and the
# envfile library) load when first used, not with provision.fs (issue 19:
# a no-op's start is mostly loading bytecode), and nothing a user sees
# changes:
#   - requiring provision.fs loads none of them; fs.template, a kind looked
#     up in R.kinds (as teardown does for a step the recipe dropped) and
#     pairs(fs) (help, make docs) load them;
#   - a recipe of fs.file steps loads none (the recipe itself looks, in
#     package.loaded, after the run has loaded what it needs);
#   - steps of every lazy kind apply; once the recipe drops them, teardown
#     (of a recipe of one fs.file step) still reverts their files, link, env
#     file and folder: their kinds are known only from the state; so does
#     the teardown of a recipe with no fs step left at all.
. "$ROOT/tests/lib.sh"

cat > parts.lua <<'L'
local parts = { "provision.fs.folders", "provision.fs.template", "provision.fs.env_file",
                "provision.fs.link", "provision.envfile" }
local function loaded()
  local out = {}
  for _, p in ipairs(parts) do if package.loaded[p] then out[#out + 1] = p end end
  return #out == 0 and "none" or table.concat(out, " ")
end
local fs = require "provision.fs"
local R = require "provision.resource"
print("after require: " .. loaded())
print("file: " .. type(fs.file) .. ", write: " .. type(fs.write))
print("template: " .. type(fs.template) .. ", loaded: " .. loaded())
print("symlink kind: " .. tostring(R.kinds["fs.symlink"] and R.kinds["fs.symlink"].kind) .. ", loaded: " .. loaded())
print("unknown kind: " .. tostring(R.kinds["fs.nothing"]))
local names = {}
for k in pairs(fs) do names[#names + 1] = k end
table.sort(names)
print("pairs: " .. table.concat(names, " "))
print("after pairs: " .. loaded())
L
run "$P" --script parts.lua
expect "requiring provision.fs loads none of its other parts" has "$OUT" "^after require: none$"
expect "fs.file and the primitives are there at once" has "$OUT" "^file: function, write: function$"
expect "fs.template loads fs.template (and fs.file's, which it builds on)" \
    has "$OUT" "^template: function, loaded: provision.fs.template$"
expect "looking up the kind fs.symlink loads fs.link" \
    has "$OUT" "^symlink kind: fs.symlink, loaded: provision.fs.template provision.fs.link$"
expect "an unknown kind is still nil" has "$OUT" "^unknown kind: nil$"
expect "pairs(fs) lists every part's fields" \
    eval 'has "$OUT" "^pairs: .*absent .*directory .*env_file envfile .*render .*symlink .*template .*write"'
expect "pairs(fs) has loaded every part" \
    has "$OUT" "^after pairs: provision.fs.folders provision.fs.template provision.fs.env_file provision.fs.link provision.envfile$"

# a recipe of fs.file steps loads no other part
mkdir d
cat > files.lua <<'L'
recipe { name = "files" }
for i = 1, 3 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x" } } end
for _, p in ipairs { "provision.fs.folders", "provision.fs.template", "provision.fs.env_file",
                     "provision.fs.link", "provision.envfile" } do
  if package.loaded[p] then error(p .. " is loaded") end
end
L
run "$P" files.lua
expect "a recipe of fs.file steps applies, its other parts not loaded" eval '[ $RC -eq 0 ] && has "$OUT" "changed=3"'
run "$P" files.lua
expect "and its no-op too" eval '[ $RC -eq 0 ] && has "$OUT" "ok=3 changed=0"'

# every lazy kind applies; dropped from the recipe, each is reverted
cat > all.lua <<'L'
recipe { name = "all" }
step "dir" { fs.directory { path = "w/sub" } }
step "tpl" { fs.template { path = "w/sub/t", template = "port=${p}\n", vars = { p = "80" } } }
step "env" { fs.env_file { path = "w/sub/e.env", values = { A = "1" } } }
step "lnk" { fs.symlink { path = "w/sub/l", target = "t" } }
step "keep" { fs.file { path = "w/keep", content = "k" } }
L
run "$P" all.lua
expect "fs.directory, fs.template, fs.env_file, fs.symlink and fs.file apply" \
    eval '[ $RC -eq 0 ] && [ "$(cat w/sub/t)" = "port=80" ] && grep -q "^A=" w/sub/e.env && [ "$(readlink w/sub/l)" = t ] && [ -f w/keep ]'
cat > all.lua <<'L'
recipe { name = "all" }
step "keep" { fs.file { path = "w/keep", content = "k" } }
L
run "$P" all.lua
expect "dropped from the recipe, they stay (until teardown)" \
    eval '[ $RC -eq 0 ] && [ -f w/sub/t ] && [ -L w/sub/l ] && [ -f w/sub/e.env ] && [ -f w/keep ]'
run "$P" teardown all.lua
expect "teardown reverts the dropped steps too (their kinds known only from the state), and the file" \
    eval '[ $RC -eq 0 ] && [ ! -e w/sub ] && [ ! -e w/keep ] && has "$OUT" "changed=5"'

# a recipe that no longer uses fs at all: teardown finds the kinds of the
# state's steps from their names alone (provision.fs loaded by the kind's
# prefix, then the part by the kind)
cat > none.lua <<'L'
recipe { name = "none" }
step "dir" { fs.directory { path = "n/sub" } }
step "tpl" { fs.template { path = "n/sub/t", template = "x=${x}\n", vars = { x = "1" } } }
L
run "$P" none.lua
expect "fs.directory and fs.template apply" eval '[ $RC -eq 0 ] && [ -f n/sub/t ]'
echo 'recipe { name = "none" }' > none.lua
run "$P" teardown none.lua
expect "the recipe has no fs step left: teardown still reverts the template and removes the folders" \
    eval '[ $RC -eq 0 ] && [ ! -e n ] && has "$OUT" "changed=2"'

# provision.lazy itself: pairs() calls every loader once, those a loader
# adds while it runs too; a loader that gives nil leaves no field (and
# pairs still ends)
cat > lazy.lua <<'L'
local lazy = require "provision.lazy"
local loaders, calls = {}, 0
loaders.a = function() calls = calls + 1; loaders.b = function() return "B" end; return "A" end
loaders.n = function() calls = calls + 1; return nil end
local t = lazy.fields({ x = "X" }, loaders)
local keys = {}
for k, v in pairs(t) do keys[#keys + 1] = k .. "=" .. v end
table.sort(keys)
print(table.concat(keys, " ") .. "; calls " .. calls .. "; t.n " .. tostring(t.n) .. "; t.z " .. tostring(t.z))
L
run "$P" --script lazy.lua
expect "lazy.fields: pairs calls each loader once, one a loader added too; nil stays nil" \
    has "$OUT" "^a=A b=B x=X; calls 2; t.n nil; t.z nil$"
