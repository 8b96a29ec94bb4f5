#!/bin/bash
# How http.file writes a download (modules/http.c, "the sink"): on ext4 the
# part file is switched to O_DIRECT and written slot by slot from the ring;
# on tmpfs it is written through the page cache. Both give the exact bytes:
# several whole slots and a short tail, a resumed prefix hashed from disk,
# and on a full ext4 disk "No space left on device" with nothing left
# behind. The ext4 is a 24 MiB image loop-mounted by the test (so the result
# does not depend on what /tmp is); the fcntl calls are read with strace.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"

if [ "$(id -u)" != 0 ]; then
    skip "direct writes" "needs root to mount an ext4 image and a tmpfs"
    exit 0
fi
EXT="$SANDBOX/ext4" TMPFS="$SANDBOX/tmpfs"
mkdir -p "$EXT" "$TMPFS"
truncate -s 24M ext4.img
if ! mkfs.ext4 -q -F ext4.img || ! mount -o loop ext4.img "$EXT"; then
    fail "direct writes" "cannot make and loop-mount an ext4 image at $EXT"
    exit 1
fi
cleanup_add "umount '$EXT' 2>/dev/null || umount -l '$EXT'"
if ! mount -t tmpfs -o size=24m tmpfs "$TMPFS"; then
    fail "direct writes" "cannot mount a tmpfs at $TMPFS"
    exit 1
fi
cleanup_add "umount '$TMPFS' 2>/dev/null || umount -l '$TMPFS'"
start_httpd

SIZE=$((5 * 1024 * 1024 + 12345))   # ten 512 KiB slots and a short tail
SHA=$(curl -s "$BASE/sha256?size=$SIZE&seed=d")
recipe() { # dir size sha
    cat > r.lua <<R
recipe { name = "direct" }
step "download" { http.file { url = "$BASE/file/d?size=$2&seed=d", dest = "$1/d.bin", sha256 = "$3", retries = 0 } }
R
}
# the fcntl calls that turned O_DIRECT on for the part file's descriptor
direct_set() { grep -c 'F_SETFL, [^)]*O_DIRECT' trace.txt; }
traced() { strace -f -qq -e trace=fcntl -o trace.txt "$@"; }

# ---- ext4: O_DIRECT, exact bytes ----
recipe "$EXT" "$SIZE" "$SHA"
run traced "$P" r.lua
expect "ext4: the download lands (exit 0)" eval '[ $RC = 0 ] && [ "$(stat -c %s "$EXT/d.bin")" = "$SIZE" ]'
expect "ext4: its bytes are the server's (sha256)" eval '[ "$(sha256sum "$EXT/d.bin" | cut -c1-64)" = "$SHA" ]'
expect "ext4: the part file was written with O_DIRECT" eval '[ "$(direct_set)" = 1 ]'
expect "ext4: no temp file" eval '[ -z "$(ls -A "$EXT" | grep provision-part)" ]'

# ---- tmpfs: buffered, exact bytes ----
recipe "$TMPFS" "$SIZE" "$SHA"
run traced "$P" r.lua
expect "tmpfs: the download lands, its bytes are the server's" \
    eval '[ $RC = 0 ] && [ "$(sha256sum "$TMPFS/d.bin" | cut -c1-64)" = "$SHA" ]'
expect "tmpfs: written through the page cache (no O_DIRECT)" eval '[ "$(direct_set)" = 0 ]'

# ---- ext4: a resumed download (a kept prefix of several slots, not aligned) ----
rm -f "$EXT/d.bin"; rm -rf "$PROVISION_STATE_DIR"
recipe "$EXT" "$SIZE" "$SHA"
URL="$BASE/file/d?size=$SIZE&seed=d"
KEEP=1300000
# what a run killed mid-download leaves: the part file, and its record in
# the state's journal (written before the body came)
curl -s "$URL" | head -c "$KEEP" > "$EXT/d.bin.provision-part.k1ll3d"
mkdir -m 0700 -p "$PROVISION_STATE_DIR"
printf '{"set":"download","value":{"resources":[{"kind":"http.file","state":{"part":{"name":"d.bin.provision-part.k1ll3d","dest":"%s","url":"sha256:%s","etag":"\\"d-d-%s-1\\"","id":"%s"}}}]}}\n' \
    "$EXT/d.bin" "$(printf %s "$URL" | sha256sum | cut -c1-64)" "$SIZE" "$(stat -c %d:%i "$EXT/d.bin.provision-part.k1ll3d")" \
    > "$PROVISION_STATE_DIR/direct.journal"
chmod 0600 "$PROVISION_STATE_DIR/direct.journal"
httpd_reset
run traced "$P" r.lua -v
expect "ext4 resume: exit 0, bytes are the server's" \
    eval '[ $RC = 0 ] && [ "$(sha256sum "$EXT/d.bin" | cut -c1-64)" = "$SHA" ]'
expect "ext4 resume: it resumed (one request, 'resuming' logged)" \
    eval '[ "$(httpd_count /file/d)" = 1 ] && has "$OUT$ERR" "resuming"'
expect "ext4 resume: written with O_DIRECT, no temp file" \
    eval '[ "$(direct_set)" = 1 ] && [ -z "$(ls -A "$EXT" | grep provision-part)" ]'

# ---- ext4 full: No space left on device, the older file kept ----
BIG=$((40 * 1024 * 1024))
BIGSHA=$(curl -s "$BASE/sha256?size=$BIG&seed=d")
rm -f "$EXT/d.bin"; echo "older" > "$EXT/d.bin"; sync -f "$EXT"
used0=$(df --output=used -k "$EXT" | tail -1)
recipe "$EXT" "$BIG" "$BIGSHA"
run "$P" r.lua
expect "ext4 full: exit 1, 'No space left on device' in step 'download'" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "No space left on device" && has "$OUT$ERR" "step .download. failed"'
expect "ext4 full: the older file is as it was, no temp file" \
    eval '[ "$(cat "$EXT/d.bin")" = "older" ] && [ -z "$(ls -A "$EXT" | grep provision-part)" ]'
used=$(df --output=used -k "$EXT" | tail -1)
expect "ext4 full: the space is given back (${used0} -> ${used} KiB used)" test "$used" -le $((used0 + 64))
