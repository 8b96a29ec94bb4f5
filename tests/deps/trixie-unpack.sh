#!/bin/sh
# tests/deps/trixie-unpack.sh WORK PACKAGE...: Debian trixie's PACKAGEs,
# fetched with apt pointed at a temporary sources list for trixie (the
# machine's own Debian mirror, signed by the Debian archive keyring already
# here; apt's lists and cache under WORK, so the machine's apt state is
# untouched), then unpacked into WORK/x with dpkg -x: nothing is installed
# as a package. Shared by compose-v2.sh and engine-next.sh.
set -eu
work=$1; shift
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "trixie-unpack.sh: $keyring is missing (apt-get install debian-archive-keyring)" >&2; exit 1; }
# the machine's own mirror (deb822 sources, else sources.list), else Debian's
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\/\{0,1\}\)[[:space:]]*$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
chmod 0755 "$work"   # apt downloads as _apt
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/x"
echo "deb [signed-by=$keyring] $mirror trixie main" > "$work/trixie.list"
APT="-o Dir::Etc::SourceList=$work/trixie.list -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache -o APT::Get::List-Cleanup=0"
# shellcheck disable=SC2086
apt-get $APT -q update > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
pkgs=""
for p in "$@"; do pkgs="$pkgs $p/trixie"; done
# shellcheck disable=SC2086
(cd "$work" && apt-get $APT -q download $pkgs > "$work/log" 2>&1) || { cat "$work/log" >&2; exit 1; }
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
