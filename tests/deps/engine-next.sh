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
work=$(mktemp -d /tmp/provision-engine-next.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh "$(dirname "$0")/trixie-unpack.sh" "$work" docker.io containerd
rm -rf "$DEST.new" && mkdir -p "$DEST.new/usr/bin" "$DEST.new/usr/sbin"
for b in dockerd docker-proxy; do cp "$work/x/usr/sbin/$b" "$DEST.new/usr/sbin/"; done
for b in containerd containerd-shim-runc-v2; do cp "$work/x/usr/bin/$b" "$DEST.new/usr/bin/"; done
rm -rf "$DEST" && mv "$DEST.new" "$DEST"
"$DEST/usr/sbin/dockerd" --version
