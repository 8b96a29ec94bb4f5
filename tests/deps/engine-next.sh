#!/bin/sh
# tests/deps/engine-next.sh: a newer Docker Engine to test against beside
# Debian 12's (docker.io 20.10, Engine API 1.41): Debian trixie's docker.io
# (26.1, API 1.45) and the containerd it needs (1.7), fetched from Debian as
# tests/deps/compose-v2.sh fetches Compose v2 (a temporary sources list,
# the archive keyring, dpkg -x), unpacked under
#   /usr/local/lib/provision-tests/engine-next/
# and never installed as the system's engine. trixie's runc needs a newer C
# library, so the machine's own runc (Debian 12's) is used.
# tests/engine-next.sh starts and stops it, side by side with the system
# engine. Idempotent. Needs root.
set -eu
DEST=${ENGINE_NEXT_DIR:-/usr/local/lib/provision-tests/engine-next}
if [ -x "$DEST/usr/sbin/dockerd" ] && [ -x "$DEST/usr/bin/containerd" ]; then exit 0; fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "engine-next.sh: $keyring is missing" >&2; exit 1; }
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\/\{0,1\}\)[[:space:]]*$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
work=$(mktemp -d /tmp/provision-engine-next.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"   # apt downloads as _apt
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb [signed-by=$keyring] $mirror trixie main" > "$work/trixie.list"
APT="-o Dir::Etc::SourceList=$work/trixie.list -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache -o APT::Get::List-Cleanup=0"
# shellcheck disable=SC2086
apt-get $APT -q update > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
# shellcheck disable=SC2086
(cd "$work" && apt-get $APT -q download docker.io/trixie containerd/trixie > "$work/log" 2>&1) \
    || { cat "$work/log" >&2; exit 1; }
mkdir -p "$work/x"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
rm -rf "$DEST.new" && mkdir -p "$DEST.new/usr/bin" "$DEST.new/usr/sbin"
for b in dockerd docker-proxy; do cp "$work/x/usr/sbin/$b" "$DEST.new/usr/sbin/"; done
for b in containerd containerd-shim-runc-v2; do cp "$work/x/usr/bin/$b" "$DEST.new/usr/bin/"; done
rm -rf "$DEST" && mv "$DEST.new" "$DEST"
"$DEST/usr/sbin/dockerd" --version
