#!/bin/bash
# Disk full while writing: a 4 MiB tmpfs as the project folder. A download
# and an fs.file bigger than the free space fail with "No space left on
# device" (exit 1), leave the older file at dest as it was and no temp file;
# the state folder on a full disk fails the run clearly and keeps the last
# good state. Once the disk is bigger (remount), the re-run converges.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"

if [ "$(id -u)" != 0 ]; then
    skip "disk full" "needs root to mount a tmpfs"
    exit 0
fi
MNT="$SANDBOX/small"
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=4m tmpfs "$MNT"; then
    fail "disk full" "cannot mount a tmpfs at $MNT"
    exit 1
fi
cleanup_add "umount '$MNT' 2>/dev/null || umount -l '$MNT'"
start_httpd
BIG=6000000
SHA=$(curl -s "$BASE/sha256?size=$BIG&seed=big")

cat > r.lua <<R
recipe { name = "faults-disk" }
local v = vars { dir = "$MNT/proj", mib = 6 }
step "project directory" { fs.directory(v.dir) }
step "download" { http.file { url = "$BASE/file/big?size=$BIG", dest = v.dir .. "/big.bin", sha256 = "$SHA", retries = 0 } }
step "config" { fs.file { path = v.dir .. "/config.txt", content = string.rep("config line\n", v.mib * 1024 * 1024 // 12) } }
step "done" { fs.directory(v.dir .. "/done") }
R

# ---- a download bigger than the disk ----
mkdir -p "$MNT/proj" && echo "old download" > "$MNT/proj/big.bin"
run "$P" r.lua
expect "download on a full disk: exit 1" test "$RC" = 1
expect "download on a full disk: the reason is 'No space left on device' in step 'download'" \
    eval 'has "$OUT$ERR" "No space left on device" && has "$OUT$ERR" "step .download. failed"'
expect "download on a full disk: the older file is as it was, no temp file" \
    eval '[ "$(cat "$MNT/proj/big.bin")" = "old download" ] && [ -z "$(temp_files "$MNT")" ]'
expect "download on a full disk: the state is whole, later steps not run" \
    eval 'state_valid && [ "$(state_created download)" = 0 ] && [ ! -e "$MNT/proj/config.txt" ]'
used=$(df --output=used -k "$MNT" | tail -1)
expect "download on a full disk: the space is given back (${used} KiB used)" test "$used" -lt 100

# ---- a file bigger than what is left (the download now fits) ----
mount -o remount,size=7m "$MNT"
echo "old config" > "$MNT/proj/config.txt"
run "$P" r.lua
expect "fs.file on a full disk: exit 1 at step 'config'" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "step .config. failed" && has "$OUT$ERR" "No space left on device"'
expect "fs.file on a full disk: the download before it is complete" \
    eval '[ "$(sha256sum "$MNT/proj/big.bin" | cut -c1-64)" = "$SHA" ]'
expect "fs.file on a full disk: the older config is as it was, no temp file" \
    eval '[ "$(cat "$MNT/proj/config.txt")" = "old config" ] && [ -z "$(temp_files "$MNT")" ] && [ ! -e "$MNT/proj/done" ]'
expect "fs.file on a full disk: the state is whole" state_valid

# ---- bigger disk: the re-run converges ----
mount -o remount,size=16m "$MNT"
run "$P" r.lua
expect "after the disk grew: the re-run converges" \
    eval '[ $RC = 0 ] && has "$OUT" "failed=0" && [ -d "$MNT/proj/done" ] && [ "$(stat -c %s "$MNT/proj/config.txt")" -gt 6000000 ] && [ -z "$(temp_files "$MNT")" ]'
run "$P" r.lua
expect "after the disk grew: the next run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0 failed=0"'

# ---- the state folder itself on a full disk ----
export PROVISION_STATE_DIR="$MNT/state"
run "$P" r.lua -e mib=1 -e dir="$SANDBOX/proj2"
expect "state on a disk with room: applied (exit 0)" eval '[ $RC = 0 ] && state_valid'
cp "$PROVISION_STATE_DIR/faults-disk.json" good-state.json
avail=$(df --output=avail -B1 "$MNT" | tail -1)
head -c "$avail" /dev/zero > "$MNT/filler" 2>/dev/null
run "$P" r.lua -e mib=2 -e dir="$SANDBOX/proj2"
expect "state on a full disk: exit 1" test "$RC" = 1
expect "state on a full disk: the reason names the state and the full disk" \
    eval 'has "$OUT$ERR" "saving state: .*No space left on device"'
expect "state on a full disk: the last good state is kept whole, no temp file" \
    eval 'state_valid && cmp -s good-state.json "$PROVISION_STATE_DIR/faults-disk.json" && [ -z "$(temp_files "$MNT")" ]'
rm -f "$MNT/filler"
run "$P" r.lua -e mib=2 -e dir="$SANDBOX/proj2"
expect "state on a full disk: with room again the re-run converges" \
    eval '[ $RC = 0 ] && has "$OUT" "failed=0" && state_valid && [ "$(stat -c %s "$SANDBOX/proj2/config.txt")" -gt 2000000 ]'
