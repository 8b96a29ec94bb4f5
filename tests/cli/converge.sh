#!/bin/bash
# tests/cli/converge.sh: apply once, change one thing (an option, the thing
# on disk, the state), apply again: the run converges, the re-run is a no-op,
# plan tells the truth, and teardown removes exactly what was created.
. "$ROOT/tests/lib.sh"

# a step whose first resource fails on a later run still keeps the record of
# what its other resources created: teardown removes them
mkdir w
cat > pair.lua <<'R'
recipe { name = "pair" }
local v = vars { owner = "root" }
step "pair" { fs.file { path = "w/a", content = "a\n", owner = v.owner }, fs.file { path = "w/b", content = "b\n" } }
R
run "$P" pair.lua
expect "pair: first apply" eval '[ $RC -eq 0 ] && [ -f w/a ] && [ -f w/b ]'
run "$P" pair.lua -e owner=no-such-user-here
expect "pair: the first resource fails" eval '[ $RC -eq 1 ] && has "$OUT" "no such user"'
run "$P" teardown pair.lua
expect "pair: teardown after the failure still removes what the second resource made" \
    eval '[ $RC -eq 0 ] && [ ! -e w/a ] && [ ! -e w/b ]'

# a step renamed or removed since it was applied: teardown still undoes what
# it made (first), and leaves what a custom step made, saying so
rm -rf w; mkdir w
cat > orphan.lua <<'R'
recipe { name = "orphan" }
step "a" { fs.directory "w/d" }
step "b" { fs.file { path = "w/d/b", content = "b\n" }, fs.symlink { path = "w/l", target = "d" } }
step "c" { archive.create { src = "w/d", dest = "w/c.tar" } }
step "custom" {
  check = function() return io.open("w/custom") ~= nil end,
  apply = function(ctx) io.open("w/custom", "w"):close(); ctx:created { type = "file", path = "w/custom" } end,
  revert = function() os.remove("w/custom") end,
}
R
run "$P" orphan.lua
expect "orphan: first apply" eval '[ $RC -eq 0 ] && [ -f w/d/b ] && [ -L w/l ] && [ -f w/c.tar ] && [ -f w/custom ]'
sed -i 's/^step "b"/step "b renamed"/; /^step "c"/d; /^step "custom"/,$d' orphan.lua
run "$P" orphan.lua
expect "orphan: the renamed step finds its file in place" eval '[ $RC -eq 0 ] && has "$OUT" "ok=2 changed=0"'
run "$P" teardown orphan.lua
expect "orphan: teardown removes what the renamed and the removed steps made" \
    eval '[ $RC -eq 0 ] && [ ! -e w/d ] && [ ! -e w/l ] && [ ! -e w/c.tar ]'
expect "orphan: they are reported as no longer in the recipe" has "$OUT" "c .*(the step is no longer in the recipe)"
expect "orphan: a custom step's work is left, and said so" \
    eval '[ -f w/custom ] && has "$OUT" "left what it made (custom): the step is no longer in the recipe"'
run "$P" teardown orphan.lua
expect "orphan: the custom step stays recorded; the others are forgotten" \
    eval '[ $RC -eq 0 ] && has "$OUT" "custom .*left what it made" && ! has "$OUT" "reverted what it made"'

# a resource dropped from a step, or replaced by another kind: what it made
# is still undone at teardown (a file another kind has rewritten since is
# left, as any file changed since it was written)
rm -rf w; mkdir w
cat > slots.lua <<'R'
recipe { name = "slots" }
step "conf" { fs.file { path = "w/x", content = "one\n" }, fs.file { path = "w/y", content = "y\n" }, fs.directory "w/z" }
R
run "$P" slots.lua
expect "slots: first apply" eval '[ $RC -eq 0 ] && [ -f w/x ] && [ -f w/y ] && [ -d w/z ]'
cat > slots.lua <<'R'
recipe { name = "slots" }
step "conf" { fs.file { path = "w/x", content = "one\n" }, fs.symlink { path = "w/l", target = "x" } }
R
run "$P" slots.lua
run "$P" slots.lua
expect "slots: converged after the change" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0"'
run "$P" teardown slots.lua
expect "slots: teardown removes what the dropped and replaced resources made" \
    eval '[ $RC -eq 0 ] && [ -z "$(ls -A w)" ] && has "$OUT" "replaced in its step since"'
expect "slots: nothing is left in the state" eval '[ ! -e .provision/slots.json ]'

# a file the recipe made under a step since renamed, or a resource since
# replaced, rewritten by its new owner: that owner takes it over, so
# teardown removes it (it was left as "changed since it was written")
rm -rf w; mkdir w
printf 'recipe { name = "moved" }\nstep "conf" { fs.file { path = "w/x", content = "one\\n" } }\nstep "t" { fs.file { path = "w/t", content = "t" } }\n' > moved.lua
run "$P" moved.lua
printf 'recipe { name = "moved" }\nstep "config" { fs.file { path = "w/x", content = "two\\n" } }\nstep "t" { fs.template { path = "w/t", template = "u" } }\n' > moved.lua
run "$P" moved.lua
expect "moved: the renamed step and the new kind rewrite the files" eval '[ $RC -eq 0 ] && [ "$(cat w/x)" = two ] && [ "$(cat w/t)" = u ]'
run "$P" teardown moved.lua
expect "moved: teardown removes the files their new owners rewrote" \
    eval '[ $RC -eq 0 ] && [ -z "$(ls -A w)" ] && ! has "$OUT" "changed since it was written"'

# ... and when the recipe was edited but not applied again before teardown
rm -rf w; mkdir w
cat > edited.lua <<'R'
recipe { name = "edited" }
step "conf" { fs.file { path = "w/x", content = "x\n" }, fs.file { path = "w/y", content = "y\n" } }
step "link" { fs.file { path = "w/t", content = "t\n" } }
R
run "$P" edited.lua
cat > edited.lua <<'R'
recipe { name = "edited" }
step "conf" { fs.file { path = "w/x", content = "x\n" } }
step "link" { fs.symlink { path = "w/l", target = "x" } }
R
run "$P" teardown edited.lua
expect "edited: teardown without an apply between removes what the dropped and replaced resources made" \
    eval '[ $RC -eq 0 ] && [ -z "$(ls -A w)" ] && has "$OUT" "replaced in its step since"'
expect "edited: nothing is left in the state" eval '[ ! -e .provision/edited.json ]'

# two resources that own one path would undo each other on every run (and
# plan would call the first fine): a load error, before anything changes
rm -rf w; mkdir w
cat > fight.lua <<'R'
recipe { name = "fight" }
step "one" { fs.file { path = "w/x", content = "one\n" } }
step "two" { fs.template { path = "./w//x", template = "two\n" } }
R
run "$P" fight.lua
expect "fight: two owners of one path are exit 2, naming both steps" \
    eval '[ $RC -eq 2 ] && has "$ERR" "fight.lua:3: fs.template of step .two. and fs.file of step .one. (fight.lua:2) both own ./w//x"'
expect "fight: nothing was written" eval '[ -z "$(ls -A w)" ] && [ ! -e .provision/fight.json ]'
cat > fight2.lua <<'R'
recipe { name = "fight2" }
local v = vars { mode = "0700" }
step "one" { fs.directory { "w/d", "w/e" } }
step "two" { fs.directory { "w/d/", mode = v.mode }, fs.absent "w/gone" }
step "three" { fs.absent { "w/gone", "w/e/old" } }
R
run "$P" fight2.lua
expect "fight: folders that agree, and absences, are fine" eval '[ $RC -eq 0 ] && [ "$(stat -c %a w/d)" = 700 ]'
cat >> fight2.lua <<'R'
step "four" { fs.directory { "w/d", mode = "0755" } }
R
run "$P" fight2.lua
expect "fight: folders that want two modes are exit 2" eval '[ $RC -eq 2 ] && has "$ERR" "both own w/d"'
for spelled in '$SANDBOX/w/x' 'w/../w/x'; do
    printf 'recipe { name = "fight3" }\nstep "one" { fs.file { path = "w/x", content = "one\\n" } }\nstep "two" { http.file { url = "http://localhost:1/x", dest = "%s" } }\n' \
        "$(eval echo "$spelled")" > fight3.lua
    run "$P" plan fight3.lua
    expect "fight: one path spelled $spelled (absolute, or with ..) is the same path" \
        eval '[ $RC -eq 2 ] && has "$ERR" "http.file of step .two. and fs.file of step .one. (fight3.lua:2) both own"'
done

# a plugin's kind gets the same protection by declaring owns in R.define
# (the built-in kinds declare it there too: no list of them in the loader)
mkdir -p modules
cat > modules/stamp.lua <<'R'
local R = require "provision.resource"
return { file = R.define {
  kind = "stamp.file", owns = "at", positional = "at", options = { at = "string" },
  describe = function(self) return "stamp " .. self.at end,
  check = function() return true end, apply = function() return true end,
} }
R
printf 'recipe { name = "fight4" }\nlocal stamp = require "stamp"\nstep "one" { fs.file { path = "w/s", content = "x" } }\nstep "two" { stamp.file "./w/s" }\n' > fight4.lua
run "$P" plan fight4.lua
expect "fight: a plugin kind that declares owns is refused on a path another step owns" \
    eval '[ $RC -eq 2 ] && has "$ERR" "fight4.lua:4: stamp.file of step .two. and fs.file of step .one. (fight4.lua:3) both own ./w/s"'

# plan runs no apply: a check that reads what an earlier step would write
# (archive.create and a file in its src; archive.extract and that archive)
# is reported as would-change too, naming the step, so plan lists what
# apply then changes; a change elsewhere leaves it ok
rm -rf w; mkdir -p w/src
cat > chain.lua <<'R'
recipe { name = "chain" }
local v = vars { msg = "one", other = "x" }
step "content" { fs.file { path = "w/src/a.txt", content = v.msg } }
step "other"   { fs.file { path = "w/other.txt", content = v.other } }
step "pack"    { archive.create { src = "./w//src/", dest = "w/a.tar" } }
step "unpack"  { archive.extract { src = "w/a.tar", dest = "w/out" } }
R
run "$P" chain.lua
expect "chain: first apply" eval '[ $RC -eq 0 ] && has "$OUT" "changed=4"'
run "$P" plan chain.lua -e other=y
expect "chain: a change no later step reads leaves them ok" \
    eval '[ $RC -eq 3 ] && has "$OUT" "ok=3 would-change=1" && has "$OUT" "pack .* ok "'
run "$P" plan chain.lua -e msg=two
expect "chain: plan says the archive steps change too, naming the step before" \
    eval '[ $RC -eq 3 ] && has "$OUT" "ok=1 would-change=3" && has "$OUT" "pack .*w/src/a.txt would change first (step .content.)" && has "$OUT" "unpack .*w/a.tar would change first (step .pack.)"'
run "$P" chain.lua -e msg=two
expect "chain: apply changes what plan said" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=3" && [ "$(cat w/out/a.txt)" = two ]'
run "$P" plan chain.lua -e msg=two
expect "chain: and plan then says ok" eval '[ $RC -eq 0 ] && has "$OUT" "ok=4 would-change=0"'
# an input an earlier step would write that is not there yet (the archive
# removed after it was extracted): plan says would-change, as apply changes
rm w/a.tar
run "$P" plan chain.lua -e msg=two
expect "chain: a missing input a step before would write: would-change, not failed" \
    eval '[ $RC -eq 3 ] && has "$OUT" "unpack .*would-change .*w/a.tar would change first (step .pack.)"'
run "$P" chain.lua -e msg=two
expect "chain: and apply then makes it again (the same bytes: nothing to extract)" \
    eval '[ $RC -eq 0 ] && has "$OUT" "pack .*changed" && [ -f w/a.tar ] && [ "$(cat w/out/a.txt)" = two ]'
# a folder there already only gets its mode: a file in it reads the same
# (plan said the archive in it would change first, apply then changed
# nothing); a folder's mode inside what an archive packs still counts
rm -rf w; mkdir -p w/src/sub w/d
cat > modes.lua <<'R'
recipe { name = "modes" }
local v = vars { d = "0755", sub = "0755" }
step "sub"    { fs.directory { "w/src/sub", mode = v.sub } }
step "pack"   { archive.create { src = "w/src", dest = "w/d/a.tar" } }
step "d"      { fs.directory { "w/d", mode = v.d } }
step "unpack" { archive.extract { src = "w/d/a.tar", dest = "w/out" } }
R
run "$P" modes.lua
run "$P" plan modes.lua -e d=0750
expect "modes: a new mode of the folder an input is in leaves its reader ok" \
    eval '[ $RC -eq 3 ] && has "$OUT" "ok=3 would-change=1" && has "$OUT" "unpack .* ok "'
run "$P" plan modes.lua -e sub=0750
expect "modes: a new mode of a folder inside a packed one: the archive would change" \
    eval '[ $RC -eq 3 ] && has "$OUT" "pack .*w/src/sub would change first (step .sub.)"'
run "$P" modes.lua -e sub=0750
expect "modes: and apply changes it" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=3"'

# an fs.absent over a folder another step writes in fights it on every run:
# a recipe error naming both, and nothing written
rm -rf w; mkdir -p w/in
cat > absent_over.lua <<'R'
recipe { name = "absent_over" }
step "make" { fs.file { path = "w/in/x", content = "x" } }
step "clean" { fs.absent { "w/other", "./w//in/" } }
R
run "$P" absent_over.lua
expect "absent over: an absence over what another step writes is exit 2, naming both" \
    eval '[ $RC -eq 2 ] && has "$ERR" "absent_over.lua:3: fs.absent of step .clean. removes ./w//in/, where fs.file of step .make. (absent_over.lua:2) writes w/in/x"'
expect "absent over: nothing was written" eval '[ -z "$(ls -A w/in)" ]'
sed -i 's|"./w//in/"|"w/in-old"|' absent_over.lua
run "$P" absent_over.lua
expect "absent over: a sibling of the same prefix is no conflict" eval '[ $RC -eq 0 ] && [ -f w/in/x ]'
