#!/bin/sh
# tests/deps/compose-v2.sh: Compose v2 for this Debian 12 machine, from
# Debian itself. Debian 12 packages only Compose v1 (docker-compose 1.29);
# its next release (trixie) packages v2 (2.26.1) as `docker-compose`: a Go
# binary that needs only the C library. This fetches that package with apt
# pointed at a temporary sources list for trixie (the machine's own Debian
# mirror, signed by the Debian archive keyring already here; apt's lists and
# cache in a temporary folder, so the machine's apt state is untouched),
# unpacks it (dpkg -x, nothing installed as a package) and puts the plugin
# where the docker CLI finds it:
#   /usr/local/lib/docker/cli-plugins/docker-compose
# `docker compose` is then v2; v1's `docker-compose` stays as it is.
# Idempotent: a plugin that already answers v2 is left alone. Needs root.
set -eu
DEST=${COMPOSE_V2_DEST:-/usr/local/lib/docker/cli-plugins}
plugin=$DEST/docker-compose
if [ -x "$plugin" ] && "$plugin" version 2>/dev/null | grep -q 'version v\?2\.'; then
    exit 0
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "compose-v2.sh: $keyring is missing (apt-get install debian-archive-keyring)" >&2; exit 1; }
# the machine's own mirror (deb822 sources, else sources.list), else Debian's
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\/\{0,1\}\)[[:space:]]*$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
work=$(mktemp -d /tmp/provision-compose-v2.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb [signed-by=$keyring] $mirror trixie main" > "$work/trixie.list"
APT="-o Dir::Etc::SourceList=$work/trixie.list -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache -o APT::Get::List-Cleanup=0"
# shellcheck disable=SC2086
apt-get $APT -q update > "$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
# shellcheck disable=SC2086
(cd "$work" && apt-get $APT -q download docker-compose/trixie > "$work/download.log" 2>&1) \
    || { cat "$work/download.log" >&2; exit 1; }
deb=$(ls "$work"/docker-compose_*.deb)
dpkg -x "$deb" "$work/x"
mkdir -p "$DEST"
install -m 0755 "$work/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugin.new"
mv -f "$plugin.new" "$plugin"
"$plugin" version
