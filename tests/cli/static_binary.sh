#!/bin/bash
# The static binary (make static: ./provision-static; issue 15, point 3):
# Lua, libyaml, jansson, libcurl, libarchive and OpenSSL are linked in, so it
# runs on a host that has only the C library. This test builds nothing: it
# takes $PROVISION_STATIC, else provision-static next to $P (make test builds
# it), and fails when there is none.
#   - it needs libc, libm and ld.so only (ELF NEEDED and ldd);
#   - --version works, opens no file but the C library's (libcurl and OpenSSL
#     are not initialised at startup) and stays fast;
#   - http.file (a download from the loopback server) and archive.extract
#     (tar.gz, tar.bz2, tar.xz, tar.zst, zip) work, here and in a root folder
#     that holds nothing but the binary, ld.so, libc and libm (chroot).
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"

S=${PROVISION_STATIC:-$(dirname "$P")/provision-static}
RC=0 OUT="" ERR=""
if [ ! -x "$S" ] || [ ! -f "$S" ]; then
    fail "static binary" "no $S (make static builds it; make test does too)"
    exit 0
fi

# ---- what it needs from the host
needed=$(readelf -d "$S" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
expect "ELF NEEDED: libc and libm only [$needed]" \
    eval '[ -n "$needed" ] && [ -z "$(printf "%s" "$needed" | tr " " "\n" | grep -v -E "^(libc\.so\.6|libm\.so\.6)?$")" ]'
lddout=$(ldd "$S" 2>&1)
others=$(printf '%s\n' "$lddout" | awk '{print $1}' | sed 's|.*/||' \
         | grep -v -E '^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|ld-linux[-a-z0-9_.]*\.so\.[0-9]+)$')
expect "ldd: libc, libm and ld.so only" eval '[ -z "$others" ] && has "$lddout" "libc.so.6"'
[ -n "$others" ] && echo "    ldd: $lddout"
# (glibc's stdin/stdout/stderr are there too, as copy relocations: name@GLIBC_x)
exports=$(nm -D --defined-only "$S" | awk '{print $3}' | grep -v -E '^(lua_|luaL_|luaopen_|_)|@' | head -5)
expect "exports the Lua API for C modules and nothing of the linked libraries" \
    eval '[ -z "$exports" ] && nm -D --defined-only "$S" | grep -q " lua_pushstring$"'

# ---- startup
run "$S" --version
expect "--version" eval '[ $RC -eq 0 ] && has "$OUT" "^provision .*Lua 5\.4"'
strace -f -qq -e trace=open,openat -o "$SANDBOX/trace" "$S" --version > /dev/null
opened=$(grep -v -E 'ld\.so\.cache|/libc\.so\.6|/libm\.so\.6|ENOENT|\+\+\+ exited' "$SANDBOX/trace")
expect "--version opens nothing but the C library (no libcurl, OpenSSL or config loaded)" \
    eval '[ -s "$SANDBOX/trace" ] && [ -z "$opened" ]'
[ -n "$opened" ] && echo "    opened: $opened"
# the median of 21 runs (fork and exec included) under 5 ms, or, on a
# machine where starting any process is slow, within twice what /bin/true
# takes there, plus 2 ms (the two run alternately)
times="" base=""
for _ in $(seq 21); do
    t0=${EPOCHREALTIME/./}; "$S" --version > /dev/null; t1=${EPOCHREALTIME/./}
    times="$times $((t1 - t0))"
    t0=${EPOCHREALTIME/./}; /bin/true; t1=${EPOCHREALTIME/./}
    base="$base $((t1 - t0))"
done
median=$(printf '%s\n' $times | sort -n | sed -n 11p)
true_median=$(printf '%s\n' $base | sort -n | sed -n 11p)
expect "--version: median ${median} us < 5 ms (or < 2 x /bin/true's ${true_median} us + 2 ms)" \
    eval '[ "$median" -lt 5000 ] || [ "$median" -lt $((2 * true_median + 2000)) ]'

# ---- the libraries inside
cat > libs.lua <<'L'
print(require("provision._http").curl_version())
print(require("provision._archive").version)
L
run "$S" --script libs.lua
expect "libcurl with OpenSSL and zlib is linked in" \
    eval '[ $RC -eq 0 ] && has "$OUT" "libcurl/" && has "$OUT" "OpenSSL/" && has "$OUT" "zlib/"'
expect "libarchive with zlib, bzip2, xz and zstd is linked in" \
    eval '[ $RC -eq 0 ] && has "$OUT" "libarchive " && has "$OUT" "zlib/" && has "$OUT" "liblzma/" \
          && has "$OUT" "bz2lib/" && has "$OUT" "libzstd/"'

# ---- a download and extractions
start_httpd
SHA=$(curl -s "$BASE/sha256?size=200000&seed=static")
mkdir -p w/src/app/sub
echo one > w/src/app/one.txt; echo two > w/src/app/sub/two.txt
tar -C w/src -czf w/app.tar.gz app
tar -C w/src -cjf w/app.tar.bz2 app
tar -C w/src -cJf w/app.tar.xz app
tar -C w/src -cf - app | zstd -q -o w/app.tar.zst
(cd w/src && python3 -c 'import sys, zipfile
with zipfile.ZipFile("../app.zip", "w") as z:
    for f in sys.argv[1:]: z.write(f)' app/one.txt app/sub/two.txt)
# W: the folder the recipe works in (absolute: the same recipe runs in the chroot)
recipe() { # W
    cat <<R
recipe { name = "static" }
step "download" { http.file { url = "$BASE/file/static?size=200000", dest = "$1/dl.bin", sha256 = "$SHA" } }
R
    for f in tar.gz tar.bz2 tar.xz tar.zst zip; do
        printf 'step "%s" { archive.extract { src = "%s/app.%s", dest = "%s/x-%s" } }\n' "$f" "$1" "$f" "$1" "$f"
    done
}
extracted() { # W: every format gave the same tree
    for f in tar.gz tar.bz2 tar.xz tar.zst zip; do
        [ "$(cat "$1/x-$f/app/one.txt")" = one ] && [ "$(cat "$1/x-$f/app/sub/two.txt")" = two ] || return 1
    done
}
recipe "$SANDBOX/w" > r.lua
run "$S" r.lua
expect "http.file and archive.extract: exit 0" eval '[ $RC -eq 0 ]'
expect "the download has the right bytes" eval '[ "$(sha256sum w/dl.bin | cut -c1-64)" = "$SHA" ]'
expect "tar.gz, tar.bz2, tar.xz, tar.zst and zip extracted" extracted w
run "$S" r.lua
expect "re-run: a no-op" eval '[ $RC -eq 0 ] && has "$OUT" "changed=0"'

# ---- on a host that has only the C library: a root folder with the binary,
# ld.so, libc and libm (and /proc, /dev), in a mount namespace of its own
if [ "$(id -u)" != 0 ]; then
    skip "chroot with only the C library" "needs root (CI runs as root)"
    exit 0
fi
R=$SANDBOX/root
mkdir -p "$R/bin" "$R/proc" "$R/dev" "$R/tmp" "$R/w"
for lib in $(printf '%s\n' "$lddout" | grep -o '/[^ ]*'); do
    mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
done
cp "$S" "$R/bin/provision"
cp w/app.* "$R/w/"
recipe /w > "$R/w/r.lua"
in_root() { # ARGS...: /bin/provision ARGS in the root folder
    unshare --mount --propagation private sh -c '
        R=$1; shift
        mount --rbind /proc "$R/proc" && mount --rbind /dev "$R/dev" &&
        exec chroot "$R" /bin/provision "$@"' sh "$R" "$@"
}
files=$(cd "$R" && find . -path ./w -prune -o -type f -print | sort | tr '\n' ' ')
expect "the root folder holds the binary, ld.so, libc and libm only [$files]" \
    eval '[ "$(printf "%s" "$files" | wc -w)" -eq 4 ] && [ -z "$(find "$R" -name "libcurl*" -o -name "libssl*" -o -name "liblua*")" ]'
run in_root --version
expect "chroot: --version" eval '[ $RC -eq 0 ] && has "$OUT" "^provision "'
PROVISION_STATE_DIR=/w/.provision   # exported by lib.sh: the chroot keeps it
run in_root /w/r.lua
expect "chroot: http.file and archive.extract: exit 0" eval '[ $RC -eq 0 ]'
expect "chroot: the download has the right bytes" eval '[ "$(sha256sum "$R/w/dl.bin" | cut -c1-64)" = "$SHA" ]'
expect "chroot: tar.gz, tar.bz2, tar.xz, tar.zst and zip extracted" extracted "$R/w"
run in_root teardown /w/r.lua
expect "chroot: teardown removes them" \
    eval '[ $RC -eq 0 ] && [ ! -e "$R/w/dl.bin" ] && [ ! -e "$R/w/x-zip/app/one.txt" ]'
