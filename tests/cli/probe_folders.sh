#!/bin/bash
# The checks' probe walks to a folder once for a run of files in it
# (modules/fs.c, core/tree.c tree_walk_kept): 4 syscalls a file already
# right, the floor's count. What a step changes must not be answered from
# the folder kept before it: a step that puts another folder in place of
# one the checks looked in, and the steps after it, see the new one; and a
# hostile user's link planted in place of the folder is never walked.
. "$ROOT/tests/lib.sh"

# ---- a step that moves the folder away and makes a new one, between files
mkdir d
cat > mv.lua <<'LUA'
recipe { name = "mv" }
step "a" { fs.file { path = "d/a", content = "a" } }
step "swap" {
  check = function() return os.getenv("SWAP") == nil or io.open("d/.new") ~= nil end,
  apply = function() assert(os.rename("d", "d.old")); assert(os.execute("mkdir d && touch d/.new")); return true end,
}
step "b" { fs.file { path = "d/b", content = "b" } }
LUA
run "$P" -q mv.lua
expect "first apply: both files" eval '[ $RC -eq 0 ] && [ -f d/a ] && [ -f d/b ]'
SWAP=1 run "$P" mv.lua   # (the old d/b stays in d.old)
expect "a step that replaced the folder: the next check looks in the new one (d/b made again)" \
    eval '[ $RC -eq 0 ] && [ -f d/b ] && [ "$(cat d/b)" = b ] && has "$OUT" "b .*changed"'
run "$P" -q mv.lua
expect "the run after: d/a made in the new folder" eval '[ $RC -eq 0 ] && has "$OUT" "changed=1" && [ -f d/a ]'
run "$P" -q mv.lua
expect "then a no-op" eval '[ $RC -eq 0 ] && has "$OUT" "changed=0"'

# ---- 1,000 files in one folder: 4 syscalls each, one walk to the folder
mkdir many
printf 'recipe { name = "many" }\nfor i = 1, 1000 do step("f" .. i) { fs.file { path = "many/" .. i, content = "x" } } end\n' > many.lua
run "$P" -q many.lua
strace -f -o st.txt "$P" -q many.lua > /dev/null 2>&1
n_open=$(grep -c 'openat(.*"[0-9][0-9]*", O_RDONLY' st.txt)
n_walk=$(grep -c 'openat2(AT_FDCWD, "many"' st.txt)
n_lstat=$(grep -c 'newfstatat([0-9]*, "[0-9][0-9]*", ' st.txt)
expect "a no-op of 1,000 files: one open each, no lstat before it, one walk to the folder ($n_open opens, $n_lstat lstats, $n_walk walks)" \
    eval '[ "$n_open" -eq 1000 ] && [ "$n_lstat" -eq 0 ] && [ "$n_walk" -eq 1 ]'

# ---- hostile: nobody swaps the folder for a link to a folder of root's
# between two steps (here inside a check, as a race would): the check after
# it may still look in the folder it kept (the race's answer), but what a
# step writes is walked afresh, so the link is refused, nothing written
# through it
if [ "$(id -u)" = 0 ]; then
    shared=$(mktemp -d /tmp/provision-shared.XXXXXX); chmod 1777 "$shared"
    cleanup_add "rm -rf '$shared'"
    NB="setpriv --reuid=65534 --regid=65534 --clear-groups"
    $NB mkdir "$shared/box"; $NB sh -c "printf x > $shared/box/f"
    mkdir -m 700 root-only; printf secret > root-only/f
    cat > h.lua <<LUA
recipe { name = "h" }
step "a" { fs.file { path = "$shared/box/f", content = "x" } }
step "race" { check = function()
  return os.execute("$NB sh -c 'mv $shared/box $shared/box.old && ln -s $SANDBOX/root-only $shared/box'") == true
end }
step "b" { fs.file { path = "$shared/box/g", content = "y" } }
LUA
    run "$P" h.lua
    expect "nobody's link put in place of a folder mid-run: the write is refused, nothing through the link" \
        eval '[ $RC -ne 0 ] && [ ! -e root-only/g ] && [ ! -e "$shared/box.old/g" ] && [ "$(cat root-only/f)" = secret ]'
fi
