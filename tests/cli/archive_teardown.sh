#!/bin/bash
# archive.extract's teardown removes what the extract placed and nothing
# else (issue 13, case 8): a file a user added under dest, or an extracted
# file they edited, is left (and said); extracting into a folder that was
# there removes at teardown the files the extract put in it, not the folder
# or what was in it before. Plan and apply see drift (an extracted file
# removed or edited). Caps on what an archive may expand to (case 5), and a
# killed extraction's staging folder (case 10).
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"

mkdir -p src/app/sub src/app/empty
echo one > src/app/one.txt; echo two > src/app/sub/two.txt; ln -s one.txt src/app/link
tar -C src -czf app.tar.gz app

cat > x.lua <<'R'
recipe { name = "x" }
step "unpack" { archive.extract { src = "./app.tar.gz", dest = "./dest" } }
R
run "$P" x.lua
expect "extract: exit 0" eval '[ $RC = 0 ] && [ "$(cat dest/app/sub/two.txt)" = two ]'
run "$P" x.lua
expect "re-run: a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'

# ---- drift ----
rm dest/app/one.txt
run "$P" plan x.lua
expect "an extracted file removed: plan says it would extract again (exit 3)" \
    eval '[ $RC = 3 ] && has "$OUT" "dest/app/one.txt is gone"'
run "$P" x.lua
expect "apply puts it back" eval '[ $RC = 0 ] && [ "$(cat dest/app/one.txt)" = one ]'
echo edited >> dest/app/sub/two.txt
run "$P" plan x.lua
expect "an extracted file edited: plan sees it (exit 3)" \
    eval '[ $RC = 3 ] && has "$OUT" "dest/app/sub/two.txt changed since it was extracted"'
run "$P" x.lua
expect "apply extracts it again" eval '[ $RC = 0 ] && [ "$(cat dest/app/sub/two.txt)" = two ]'

# ---- teardown leaves what the user made or changed ----
echo mine > dest/app/sub/mine.txt
echo "my edit" >> dest/app/one.txt
run "$P" teardown x.lua -v
expect "teardown: exit 0, says what it left and why" \
    eval '[ $RC = 0 ] && has "$OUT" "one.txt: changed since it was extracted" && has "$OUT" "holds files it did not make"'
expect "teardown: the user's file and the edited one are there, the rest is gone" \
    eval '[ "$(cat dest/app/sub/mine.txt)" = mine ] && has "$(cat dest/app/one.txt)" "my edit" \
          && [ ! -e dest/app/sub/two.txt ] && [ ! -e dest/app/link ] && [ ! -e dest/app/empty ]'
expect "teardown: the state is done with it" eval '[ -z "$(ls -A "$PROVISION_STATE_DIR" 2>/dev/null | grep -v lock)" ]'
rm -rf dest

# ---- into a folder that was there ----
mkdir -p dest/app && echo "was here" > dest/app/before.txt && echo "was here too" > dest/keep.txt
run "$P" x.lua
expect "into an existing folder: merged" eval '[ $RC = 0 ] && [ "$(cat dest/app/one.txt)" = one ] && [ -e dest/app/before.txt ]'
run "$P" teardown x.lua
expect "teardown: what the extract put there is removed (it said 'reverted' and left it before)" \
    eval '[ $RC = 0 ] && [ ! -e dest/app/one.txt ] && [ ! -e dest/app/sub ] && [ ! -e dest/app/link ]'
expect "teardown: the folder and what was in it before stay" \
    eval '[ "$(cat dest/app/before.txt)" = "was here" ] && [ "$(cat dest/keep.txt)" = "was here too" ]'
rm -rf dest

# ---- caps: what an archive may expand to ----
# a header that says 1.1 GiB (the body never comes: refused before it is read)
python3 - <<'PY'
import tarfile
ti = tarfile.TarInfo("huge.bin"); ti.size = 1100 * 1024 * 1024
with open("bomb.tar", "wb") as f:
    f.write(ti.tobuf(format=tarfile.PAX_FORMAT)); f.write(b"\0" * 4096)
PY
cat > bomb.lua <<'R'
recipe { name = "bomb" }
step "unpack" { archive.extract { src = "./bomb.tar", dest = "./bomb" } }
R
run "$P" bomb.lua
expect "an entry past the default max_size (1GiB): refused, nothing extracted, no staging left" \
    eval '[ $RC = 1 ] && has "$OUT" "past max_size (1073741824 bytes)" && [ ! -e bomb ] && [ -z "$(ls -A | grep provision-extract)" ]'
head -c 3000000 /dev/zero > zeros.bin && tar -czf zeros.tar.gz zeros.bin
cat > small.lua <<'R'
recipe { name = "small" }
local v = vars { max = "1MiB", n = 0 }
step "unpack" { archive.extract { src = "./zeros.tar.gz", dest = "./z", max_size = v.max, max_entries = v.n } }
R
run "$P" small.lua
expect "a 3 MB file against max_size = 1MiB: refused naming it, nothing extracted" \
    eval '[ $RC = 1 ] && has "$OUT" "max_size (1048576 bytes)" && [ ! -e z ] && [ -z "$(ls -A | grep provision-extract)" ]'
run "$P" small.lua -e max=4MiB
expect "max_size = 4MiB: extracted" eval '[ $RC = 0 ] && [ "$(stat -c %s z/zeros.bin)" = 3000000 ]'
rm -rf z "$PROVISION_STATE_DIR"
mkdir many && for i in 1 2 3 4 5 6; do : > many/f$i; done && tar -cf many.tar many
cat > many.lua <<'R'
recipe { name = "many" }
local v = vars { n = 5 }
step "unpack" { archive.extract { src = "./many.tar", dest = "./m", max_entries = v.n } }
R
run "$P" many.lua
expect "7 entries against max_entries = 5: refused, nothing extracted" \
    eval '[ $RC = 1 ] && has "$OUT" "more than max_entries (5)" && [ ! -e m ]'
run "$P" many.lua -e n=7
expect "max_entries = 7: extracted" eval '[ $RC = 0 ] && [ -e m/many/f6 ]'
rm -rf m "$PROVISION_STATE_DIR"

# ---- a killed extraction leaves its staging folder; the next run removes it ----
head -c 300000000 /dev/urandom > big.bin 2>/dev/null && tar -cf big.tar big.bin && rm big.bin
cat > big.lua <<'R'
recipe { name = "big" }
step "unpack" { archive.extract { src = "./big.tar", dest = "./bigdest" } }
R
# kill_mid_extract: start big.lua, SIGKILL it once its staging folder is there
kill_mid_extract() {
    "$P" big.lua > /dev/null 2>&1 &
    pid=$!
    i=0
    while [ -z "$(ls -A | grep provision-extract)" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
    kill -KILL $pid; wait $pid 2>/dev/null
    [ -n "$(ls -A | grep provision-extract)" ]
}
expect "SIGKILL mid-extraction leaves the staging folder (what the next run must clean)" kill_mid_extract
run "$P" teardown big.lua
expect "a killed extraction's staging folder is gone after teardown" \
    eval '[ $RC = 0 ] && [ -z "$(ls -A | grep provision-extract)" ] && [ ! -e bigdest ]'
expect "killed again mid-extraction" kill_mid_extract
run "$P" big.lua
expect "after a kill, the next apply removes the old staging folder and extracts" \
    eval '[ $RC = 0 ] && [ -e bigdest/big.bin ] && [ -z "$(ls -A | grep provision-extract)" ]'
run "$P" teardown big.lua
expect "and teardown removes it all" eval '[ $RC = 0 ] && [ ! -e bigdest ]'

# ---- an interrupted extraction cleans up after itself ----
rm -rf bigdest "$PROVISION_STATE_DIR"
"$P" big.lua > int.out 2>&1 &
pid=$!
i=0
while [ -z "$(ls -A | grep provision-extract)" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
kill -INT $pid; wait $pid; rc=$?
expect "SIGINT mid-extraction: exit 130, and no staging folder left (it was half-removed before)" \
    eval '[ $rc = 130 ] && [ -z "$(ls -A | grep provision-extract)" ]'

# ---- a folder put at a recorded staging name is not the staging folder ----
rm -rf bigdest "$PROVISION_STATE_DIR"
kill_mid_extract
staging=$(ls -A | grep provision-extract)
mv "$staging" trash && mkdir -p "$staging/sub" && echo precious > "$staging/sub/data"
run "$P" teardown big.lua
expect "a folder renamed to the recorded staging name is not removed (not the one made)" \
    eval '[ "$(cat "$staging/sub/data")" = precious ]'
rm -rf "$staging" trash
