#!/bin/sh
# core/gen/static-deps.sh DIR: libcurl and libarchive as static archives for
# make static (./provision-static, issue 15), built from Debian's own source
# packages (the versions apt has for this system, Debian's patches applied).
# Debian's libcurl.a cannot be linked statically: it needs GSSAPI (Kerberos),
# LDAP, RTMP, SSH and PSL, and Debian ships no static Kerberos. Debian's
# libarchive.a needs libxml2.a, which needs ICU (30 MB of data). So:
#   libcurl: http and https only, OpenSSL, zlib; no LDAP, GSSAPI, RTMP,
#     SSH, PSL, IDN, HTTP/2, other protocols;
#   libarchive: every format but xar (no xml2), zlib, bzip2, xz, zstd,
#     OpenSSL; no ACLs, no lz4.
# Everything else the static binary needs is a static archive of Debian's
# -dev packages (make deps). Installs DIR/include and DIR/lib, then touches
# DIR/.done. The source packages are fetched once into DIR/dl by apt-get
# source through a private apt configuration (deb-src lines made from the
# system's deb lines, lists under DIR/apt): the system's apt setup is left as
# it is, and a rebuild from DIR/dl needs no network. Logs: DIR/log/*.log.
set -eu
DIR=${1:?usage: static-deps.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
DL=$DIR/dl WORK=$DIR/work LOG=$DIR/log APT=$DIR/apt
JOBS=$(nproc 2>/dev/null || echo 2)
# Debian's hardening flags, as its own packages are built (no -g: smaller)
CFLAGS="-O2 -fstack-protector-strong -fstack-clash-protection -fcf-protection -Wformat -Werror=format-security"
CPPFLAGS="-D_FORTIFY_SOURCE=2"
export CFLAGS CPPFLAGS
start=$(date +%s)
rm -rf "$WORK" "$DIR/lib" "$DIR/include" "$DIR/.done"
mkdir -p "$DL" "$WORK" "$LOG"

say() { echo "static-deps: $*"; }
# quiet NAME COMMAND...: runs it with its output in $LOG/NAME.log, shown when it fails
quiet() {
    name=$1; shift
    if ! "$@" > "$LOG/$name.log" 2>&1; then
        tail -n 40 "$LOG/$name.log" >&2
        echo "static-deps: $name failed (log: $LOG/$name.log)" >&2
        exit 1
    fi
}

fetch_sources() {
    if ls "$DL"/curl_*.dsc "$DL"/libarchive_*.dsc > /dev/null 2>&1; then return 0; fi
    rm -rf "$APT"
    mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/parts"
    : > "$APT/sources.list"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >> "$APT/sources.list"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && sed 's/^Types:.*/Types: deb-src/' "$f" > "$APT/parts/$(basename "$f")"
    done
    set -- -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts="$APT/parts" \
           -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o APT::Sandbox::User=root
    say "apt-get update (deb-src lists in $APT)"
    # a repository without sources is only a warning: apt-get source says
    # what is missing
    apt-get "$@" update > "$LOG/apt-update.log" 2>&1 || say "apt-get update: some lists failed (log: $LOG/apt-update.log)"
    say "apt-get source curl libarchive (into $DL)"
    (cd "$DL" && quiet apt-source apt-get "$@" source --download-only curl libarchive)
    rm -rf "$APT"
}

# unpack PKG: the newest DL/PKG_*.dsc, Debian's patches applied, in WORK/PKG
unpack() {
    dsc=$(ls "$DL/$1"_*.dsc | sort -V | tail -n 1)
    # checks the files' checksums (apt checked the .dsc against the signed
    # Release file; without debian-keyring, dpkg-source only warns)
    quiet "unpack-$1" dpkg-source -x "$dsc" "$WORK/$1"
    say "$1 $(basename "$dsc" .dsc | sed "s/^$1_//"): building"
    # the generated autotools files are newer than their inputs (a patch
    # may have touched one): make must not try to run automake
    (cd "$WORK/$1" && touch aclocal.m4 && touch configure &&
     find . \( -name Makefile.in -o -name '*config.h.in' -o -name config.status \) -exec touch {} +)
}

# require FILE MACRO...: each macro is defined in FILE (a configure result)
require() {
    f=$1; shift
    for m in "$@"; do
        grep -q "^#define $m 1" "$f" || { echo "static-deps: $m not set in $f: missing -dev package? (make deps)" >&2; exit 1; }
    done
}

build_curl() {
    cd "$WORK/curl"
    quiet curl-configure ./configure --prefix="$DIR" --disable-shared --enable-static \
        --disable-dependency-tracking --with-openssl --with-zlib \
        --without-brotli --without-zstd --without-libpsl --without-libidn2 --without-nghttp2 \
        --without-ngtcp2 --without-nghttp3 --without-librtmp --without-libssh2 --without-libssh \
        --without-gssapi --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
        --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
        --disable-gopher --disable-mqtt --disable-ftp --disable-file --disable-manual \
        --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs
    require lib/curl_config.h USE_OPENSSL HAVE_LIBZ USE_THREADS_POSIX
    quiet curl-make make -j"$JOBS" -C lib
    quiet curl-install sh -c 'make -C lib install && make -C include install'
}

build_libarchive() {
    cd "$WORK/libarchive"
    quiet libarchive-configure ./configure --prefix="$DIR" --disable-shared --enable-static \
        --disable-dependency-tracking --disable-bsdtar --disable-bsdcat --disable-bsdcpio \
        --disable-acl --without-xml2 --without-expat --without-nettle --with-openssl \
        --without-lz4 --without-lzo2 --without-libb2 --without-cng \
        --with-zlib --with-bz2lib --with-lzma --with-zstd
    require config.h HAVE_ZLIB_H HAVE_BZLIB_H HAVE_LZMA_H HAVE_ZSTD_H HAVE_LIBCRYPTO
    quiet libarchive-make make -j"$JOBS" libarchive.la
    quiet libarchive-install make install-libLTLIBRARIES install-includeHEADERS
}

fetch_sources
unpack curl
unpack libarchive
(build_curl)
(build_libarchive)
for f in lib/libcurl.a lib/libarchive.a include/curl/curl.h include/archive.h include/archive_entry.h; do
    [ -f "$DIR/$f" ] || { echo "static-deps: $DIR/$f was not installed" >&2; exit 1; }
done
rm -rf "$WORK"
touch "$DIR/.done"
say "done in $(( $(date +%s) - start ))s: $DIR/lib/libcurl.a, $DIR/lib/libarchive.a"
