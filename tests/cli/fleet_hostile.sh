#!/bin/bash
# Another local user plants traps where a fleet run keeps its private files
# (~/.cache/provision: ssh's master sockets, the host's run folders), for a
# root whose HOME is not root's own (sudo -E) or sits in a shared folder.
# nobody plants (setpriv); root runs provision with -i and the host
# "local" (the whole fleet path, no ssh needed) or provision --remote with
# a real bundle. Every trap: refused with the reason, exit 2, the victim
# untouched, nothing made through the link or in nobody's folder.
. "$ROOT/tests/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    fail "fleet hostile" "needs root and setpriv (util-linux)"
    exit 1
fi
unset XDG_CACHE_HOME   # the cache folder is HOME's here
NB() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

VICTIM=$SANDBOX/victim   # root's, nobody cannot enter it
mkdir -m 0700 "$VICTIM"
victim_ok() { [ -z "$(ls -A "$VICTIM")" ] && [ "$(stat -c %a:%U "$VICTIM")" = 700:root ]; }
SHARED=$(mktemp -d /tmp/provision-shared.XXXXXX)   # like /tmp: sticky, everyone writes
chmod 1777 "$SHARED"
cleanup_add "rm -rf '$SHARED'"

mkdir work
cat > r.lua <<'R'
recipe { name = "fleet-hostile" }
step "dir" { fs.directory "./out" }
step "file" { fs.file { path = "./out/f", content = "made\n" } }
R
printf 'return { here = { hosts = { "local" } } }\n' > inv.lua
fleet() { run env HOME="$1" "$P" -i inv.lua r.lua --limit here --chdir "$SANDBOX/work"; }

# a HOME that is nobody's (root under sudo -E of nobody)
NB mkdir "$SHARED/nbhome"
fleet "$SHARED/nbhome"
expect "HOME is another user's: refused (exit 2), saying whose" \
    eval '[ $RC -eq 2 ] && has "$ERR" "nbhome belongs to uid 65534, not to us (uid 0) or root"'
expect "... and nothing made in it" test -z "$(ls -A "$SHARED/nbhome")"

# HOME is the shared sticky folder; nobody plants .cache first
NB ln -s "$VICTIM" "$SHARED/.cache"
fleet "$SHARED"
expect "a planted link .cache -> root's folder: refused, not followed" \
    eval '[ $RC -eq 2 ] && has "$ERR" "/.cache is a symbolic link" && victim_ok'
rm "$SHARED/.cache"
NB mkdir -m 0777 "$SHARED/.cache"
fleet "$SHARED"
expect "a planted folder .cache of nobody's: refused" \
    eval '[ $RC -eq 2 ] && has "$ERR" "/.cache belongs to uid 65534" && [ -z "$(ls -A "$SHARED/.cache")" ]'
rm -rf "$SHARED/.cache"

# root's own folders, but one others can write to: nobody could swap what is under it
mkdir -p home1/.cache/provision && chmod 0777 home1/.cache
fleet "$SANDBOX/home1"
expect "a .cache others can write to: refused, naming its mode" \
    eval '[ $RC -eq 2 ] && has "$ERR" "/.cache can be changed by other users (mode 777)"'
mkdir -p home2/.cache/provision && chmod 0755 home2/.cache/provision
fleet "$SANDBOX/home2"
expect "~/.cache/provision not private (0755): refused" \
    eval '[ $RC -eq 2 ] && has "$ERR" "is not a private folder of ours"'
mkdir -p -m 0700 home3/.cache/provision && chmod 0700 home3/.cache/provision && ln -s "$VICTIM" home3/.cache/provision/ssh
fleet "$SANDBOX/home3"
expect "a link where the ssh folder goes (even root's): refused, not followed" \
    eval '[ $RC -eq 2 ] && has "$ERR" "provision/ssh is a symbolic link" && victim_ok'

# a clean HOME in the shared folder: works, its folders root's and private
mkdir -m 0755 "$SHARED/roothome"
fleet "$SHARED/roothome"
expect "a clean HOME (even under a sticky shared folder): the run works" \
    eval '[ $RC -eq 0 ] && [ "$(cat work/out/f)" = made ]'
expect "... ~/.cache/provision and its ssh folder are root's, 0700" \
    eval '[ "$(stat -c %a:%U "$SHARED/roothome/.cache/provision")" = 700:root ] && [ "$(stat -c %a:%U "$SHARED/roothome/.cache/provision/ssh")" = 700:root ]'

# the host's side: provision --remote with a real bundle (what ssh carries,
# caught by a stand-in for ssh: the controller keeps stdin open after it,
# so 2 s of it), HOME nobody's: it unpacks nothing there
cat > fakessh <<EOF2
#!/bin/sh
timeout 2 cat > "$SANDBOX/bundle.bin"; exit 1
EOF2
chmod 0755 fakessh
run env HOME="$SHARED/roothome" PROVISION_SSH="$SANDBOX/fakessh" "$P" r.lua --host h1
expect "(the bundle caught)" eval 'head -c 19 bundle.bin | grep -q "^provision-bundle 1"'
cd work && run env HOME="$SHARED/nbhome" "$P" --remote < "$SANDBOX/bundle.bin"; cd "$SANDBOX"
expect "--remote with a HOME of nobody's: refused (exit 2), nothing unpacked there" \
    eval '[ $RC -eq 2 ] && has "$ERR" "provision --remote: .*nbhome belongs to uid 65534" && [ -z "$(ls -A "$SHARED/nbhome")" ]'
# (stdin stays open after the bundle, as ssh's does: its end means the controller is gone)
cd work && run env HOME="$SHARED/roothome" "$P" --remote < <(cat "$SANDBOX/bundle.bin"; sleep 10); cd "$SANDBOX"
expect "--remote with a clean HOME: the recipe runs, its run folder removed after" \
    eval '[ $RC -eq 0 ] && has "$OUT" "\"event\":\"summary\"" && [ -z "$(ls "$SHARED/roothome/.cache/provision" | grep ^run)" ]'
