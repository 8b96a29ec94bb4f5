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
work=$(mktemp -d /tmp/provision-compose-v2.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh "$(dirname "$0")/trixie-unpack.sh" "$work" docker-compose
mkdir -p "$DEST"
install -m 0755 "$work/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugin.new"
mv -f "$plugin.new" "$plugin"
"$plugin" version
