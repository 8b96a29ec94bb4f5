#!/bin/bash
# Another local user plants traps; root runs provision (issue 13, cases
# 1-4). Each trap is planted as nobody (setpriv) in a world-writable sticky
# folder, as /tmp is, or in a folder nobody owns inside it; the victims are
# root's files in a folder nobody cannot even enter. After every run: the
# victims are byte for byte and mode for mode what they were, and nothing
# was written, chmodded or removed through a link.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"

if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    fail "hostile" "needs root and setpriv (util-linux)"
    exit 1
fi
NB() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# the victims: root's, in a folder only root can enter
VICTIM=$SANDBOX/root
mkdir -m 0700 "$VICTIM" "$VICTIM/dir"
echo "root's secret" > "$VICTIM/secret"; chmod 0600 "$VICTIM/secret"
echo "keep me" > "$VICTIM/dir/keep.txt"; chmod 0640 "$VICTIM/dir/keep.txt"
chmod 0700 "$VICTIM/dir"
victims_ok() {
    [ "$(cat "$VICTIM/secret")" = "root's secret" ] && [ "$(stat -c %a:%U "$VICTIM/secret")" = 600:root ] \
    && [ "$(stat -c %a:%U "$VICTIM/dir")" = 700:root ] && [ "$(cat "$VICTIM/dir/keep.txt")" = "keep me" ] \
    && [ "$(stat -c %a "$VICTIM/dir/keep.txt")" = 640 ] && [ "$(ls -A "$VICTIM/dir")" = keep.txt ]
}

# the shared folder: like /tmp (sticky, world-writable); the sandbox (0700)
# is opened just enough for nobody to reach it
SHARED=$(mktemp -d /tmp/provision-shared.XXXXXX)
chmod 1777 "$SHARED"
cleanup_add "rm -rf '$SHARED'"
start_httpd
export PROVISION_STATE_DIR="$SANDBOX/state"

# ---- case 1: http.file's partial file ----
# nobody plants what the part file used to be (DEST.provision-part, and a
# sidecar naming the URL and an ETag), and keeps re-planting it while root
# downloads into the shared folder
URL="$BASE/file/dl?size=300000"
SUM=$(curl -s "$BASE/sha256?size=300000&seed=dl")
NB sh -c "ln -s '$VICTIM/secret' '$SHARED/dl.bin.provision-part'
  printf '{\"url\":\"sha256:%s\",\"etag\":\"\\\\\"e1\\\\\"\"}' \"\$(printf %s '$URL' | sha256sum | cut -c1-64)\" > '$SHARED/dl.bin.provision-part.json'"
setpriv --reuid=65534 --regid=65534 --clear-groups \
    sh -c "while :; do for s in '' .1 .a; do ln -sf '$VICTIM/secret' '$SHARED/dl.bin.provision-part\$s' 2>/dev/null; done; done" \
    > /dev/null 2>&1 &
planter=$!   # setpriv execs sh: this is the planter's own pid
cleanup_add "kill $planter 2>/dev/null"
cat > dl.lua <<R
recipe { name = "dl" }
step "unpinned" { http.file { url = "$URL", dest = "$SHARED/dl.bin" } }
step "pinned" { http.file { url = "$URL", dest = "$SHARED/dl2.bin", sha256 = "$SUM" } }
R
run "$P" dl.lua
kill $planter; wait $planter 2>/dev/null
expect "part file: the downloads land (exit 0)" test "$RC" = 0
expect "part file: the victim is untouched (content, mode, owner)" victims_ok
expect "part file: dest is a regular file of root's with the server's bytes, not a link" \
    eval '[ ! -L "$SHARED/dl.bin" ] && [ "$(stat -c %U "$SHARED/dl.bin")" = root ] \
          && [ "$(sha256sum < "$SHARED/dl.bin" | cut -c1-64)" = "$SUM" ] && [ "$(sha256sum < "$SHARED/dl2.bin" | cut -c1-64)" = "$SUM" ]'
expect "part file: the planted names were never used (still nobody's links)" \
    eval '[ "$(stat -c %U "$SHARED/dl.bin.provision-part")" = nobody ] && [ -L "$SHARED/dl.bin.provision-part" ]'
expect "part file: no part file of ours left" eval '[ -z "$(find "$SHARED" -user root -name "*provision-part*")" ]'
# a part file of ours, swapped for nobody's file before a resume: left alone
rm -rf "$PROVISION_STATE_DIR" "$SHARED"/dl*

# ---- case 2: the state folder ----
mkdir -m 0777 "$SHARED/proj"; chown nobody: "$SHARED/proj"
NB sh -c "mkdir -m 0777 '$SHARED/proj/.provision' && ln -s '$VICTIM/secret' '$SHARED/proj/.provision/lock'"
cat > "$SHARED/proj/s.lua" <<R
recipe { name = "s" }
step "a" { fs.directory "$SHARED/proj/made" }
R
( cd "$SHARED/proj" && unset PROVISION_STATE_DIR && "$P" s.lua > "$SANDBOX/out" 2>&1 ); RC=$?; OUT=$(cat "$SANDBOX/out"); ERR=""
expect "state folder of another user: refused, exit 2, saying why and how to fix it" \
    eval '[ $RC = 2 ] && has "$OUT" "state folder ./.provision is not safe to use: it belongs to uid 65534" && has "$OUT" "chmod 0700"'
expect "state folder of another user: the lock's victim is untouched, nothing made" \
    eval 'victims_ok && [ ! -e "$SHARED/proj/made" ]'
# a state file nobody wrote, whose orphan step "created" a folder of root's
mkdir -m 0700 "$SANDBOX/important" && echo data > "$SANDBOX/important/file"
NB sh -c "rm -f '$SHARED/proj/.provision/lock'; chmod 0700 '$SHARED/proj/.provision'; cat > '$SHARED/proj/.provision/s.json'" <<J
{"version":1,"recipe":"s","steps":{"gone":{"resources":[{"kind":"archive.extract","state":{"created":[{"type":"directory","path":"$SANDBOX/important"}]}}]}}}
J
( cd "$SHARED/proj" && unset PROVISION_STATE_DIR && "$P" teardown s.lua > "$SANDBOX/out" 2>&1 ); RC=$?; OUT=$(cat "$SANDBOX/out")
expect "a state nobody planted (their folder, 0700): teardown refuses it, exit 2" \
    eval '[ $RC = 2 ] && has "$OUT" "belongs to uid 65534"'
expect "a state nobody planted: the folder it names is untouched" test "$(cat "$SANDBOX/important/file")" = data
# root's folder, but others may write to it
mkdir -m 0777 "$SANDBOX/st777"
run "$P" "$SHARED/proj/s.lua" --state-dir "$SANDBOX/st777"
expect "a state folder others can write to: refused, exit 2" eval '[ $RC = 2 ] && has "$ERR" "others can write to it (mode 0777)"'
# root's folder, a state file of nobody's in it (put there while it was open)
mkdir -m 0700 "$SANDBOX/st2"
echo '{"version":1,"steps":{}}' > "$SANDBOX/st2/s.json"; chown nobody "$SANDBOX/st2/s.json"
run "$P" "$SHARED/proj/s.lua" --state-dir "$SANDBOX/st2"
expect "a state file of another user's: refused, exit 2, nothing made" \
    eval '[ $RC = 2 ] && has "$ERR" "state file $SANDBOX/st2/s.json is not safe to use" && [ ! -e "$SHARED/proj/made" ]'
# the lock a link (in a folder of root's: O_NOFOLLOW, not only ownership)
mkdir -m 0700 "$SANDBOX/st3" && ln -s "$VICTIM/secret" "$SANDBOX/st3/lock"
run "$P" "$SHARED/proj/s.lua" --state-dir "$SANDBOX/st3"
expect "a lock that is a symbolic link: refused, exit 2, its target untouched" \
    eval '[ $RC = 2 ] && has "$ERR" "lock is a symbolic link" && victims_ok'

# ---- case 3: writes that would follow links ----
NB sh -c "mkdir -m 0777 '$SHARED/w' && ln -s '$VICTIM/dir' '$SHARED/w/data' && ln -s '$VICTIM' '$SHARED/w/sub'
  echo planted > '$SHARED/w/app.env' && chmod 0666 '$SHARED/w/app.env'"
cat > w1.lua <<R
recipe { name = "w1" }
step "chmod through a link" { fs.directory { path = "$SHARED/w/data", mode = "0777" } }
R
run "$P" w1.lua
expect "fs.directory over nobody's link: fails naming the link, the victim keeps 0700" \
    eval '[ $RC = 1 ] && has "$OUT" "$SHARED/w/data: a symbolic link owned by uid 65534, not followed" && victims_ok'
run "$P" plan w1.lua
expect "plan says so too (the check fails; nothing would be done through it)" \
    eval '[ $RC = 1 ] && has "$OUT" "not followed"'
cat > w2.lua <<R
recipe { name = "w2" }
step "a file under a linked folder" { fs.file { path = "$SHARED/w/sub/new.txt", content = "x" } }
step "a folder under it" { fs.directory "$SHARED/w/sub/newdir" }
R
run "$P" w2.lua
expect "fs.file under nobody's linked parent: refused, nothing created in the target" \
    eval '[ $RC = 1 ] && has "$OUT" "not followed" && victims_ok && [ ! -e "$VICTIM/new.txt" ] && [ ! -e "$VICTIM/newdir" ]'
cat > w3.lua <<R
recipe { name = "w3" }
local v = vars { token = secret "Tok-hostile-77Qz" }
step "env" { fs.env_file { path = "$SHARED/w/app.env", values = { TOKEN = v.token } } }
step "conf" { fs.template { path = "$SHARED/w/app.conf", template = "token=\${t}\n", vars = { t = v.token } } }
R
NB sh -c "echo planted > '$SHARED/w/app.conf' && chmod 0666 '$SHARED/w/app.conf'"
run "$P" w3.lua
expect "a planted env file and template: replaced by root's own files, 0600" \
    eval '[ $RC = 0 ] && [ "$(stat -c %U:%a "$SHARED/w/app.env")" = root:600 ] && [ "$(stat -c %U:%a "$SHARED/w/app.conf")" = root:600 ]'
expect "nobody cannot read the secret now" \
    eval '! NB cat "$SHARED/w/app.env" 2>/dev/null && ! NB cat "$SHARED/w/app.conf" 2>/dev/null'
run "$P" w3.lua
expect "the re-run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'

# ---- case 4: teardown after the links are swapped ----
rm -rf "$PROVISION_STATE_DIR"
NB sh -c "mkdir -m 0777 '$SHARED/t'"
mkdir -p "$SANDBOX/tar/app/sub" && echo one > "$SANDBOX/tar/app/sub/keep.txt" && echo two > "$SANDBOX/tar/app/f.txt"
tar -C "$SANDBOX/tar" -cf "$SANDBOX/app.tar" app
cp "$SANDBOX/tar/app/sub/keep.txt" "$VICTIM/dir/f.txt"   # the same names and bytes as ours
cat > t.lua <<R
recipe { name = "t" }
step "unpack" { archive.extract { src = "$SANDBOX/app.tar", dest = "$SHARED/t" } }
step "conf folder" { fs.directory "$SHARED/t/conf" }
step "conf" { fs.file { path = "$SHARED/t/conf/f.txt", content = "one\n" } }
teardown { fs.absent "$SHARED/t/app/sub" }
R
run "$P" t.lua
expect "swap: the apply" test "$RC" = 0
chmod 0711 "$SANDBOX" "$VICTIM"; chmod 0777 "$VICTIM/dir"   # reachable for nobody's links to resolve
cp -p "$VICTIM/dir/keep.txt" "$SANDBOX/keep.bak"
NB sh -c "cd '$SHARED/t' && mv app app.moved && ln -s '$VICTIM/dir' app && mv conf conf.moved && ln -s '$VICTIM/dir' conf" \
    2>/dev/null || { chown -R nobody "$SHARED/t"; NB sh -c "cd '$SHARED/t' && mv app app.moved && ln -s '$VICTIM/dir' app && mv conf conf.moved && ln -s '$VICTIM/dir' conf"; }
mkdir -p "$VICTIM/dir/sub" && echo one > "$VICTIM/dir/sub/keep.txt"
run "$P" teardown t.lua
expect "swap: teardown's block (fs.absent through the link) fails, naming it" \
    eval '[ $RC = 1 ] && has "$OUT" "not followed"'
expect "swap: nothing of the victim's was removed" \
    eval '[ "$(cat "$VICTIM/dir/sub/keep.txt")" = one ] && [ "$(cat "$VICTIM/dir/f.txt")" = "one" ] && [ -e "$VICTIM/dir/keep.txt" ]'
cat > t2.lua <<R
recipe { name = "t" }
step "unpack" { archive.extract { src = "$SANDBOX/app.tar", dest = "$SHARED/t" } }
step "conf folder" { fs.directory "$SHARED/t/conf" }
step "conf" { fs.file { path = "$SHARED/t/conf/f.txt", content = "one\n" } }
R
run "$P" teardown t2.lua --adopt-state   # the same recipe name, another file: on purpose
expect "swap: the teardown without a block leaves what it cannot reach, and says why" \
    eval '[ $RC = 0 ] && has "$OUT" "left"'
expect "swap: the victim's same-named files are still there" \
    eval '[ "$(cat "$VICTIM/dir/sub/keep.txt")" = one ] && [ "$(cat "$VICTIM/dir/f.txt")" = "one" ] && [ -e "$VICTIM/dir/keep.txt" ]'
chmod 0700 "$VICTIM" "$VICTIM/dir"

# ---- found by review (each an attack that worked before) ----
rm -rf "$PROVISION_STATE_DIR"
NB sh -c "mkdir -m 0755 '$SHARED/r' && echo x > '$SHARED/r/env' && chmod 4755 '$SHARED/r/env'"
BIN_SUM=$(curl -s "$BASE/sha256?size=2000&seed=bin")
cat > r1.lua <<R
recipe { name = "r1" }
step "tool" { http.file { url = "$BASE/file/bin?size=2000", dest = "$SHARED/r/env", sha256 = "$BIN_SUM" } }
R
run "$P" r1.lua
expect "a download over nobody's setuid file: root's, 0644, no set-id bit taken from it" \
    eval '[ $RC = 0 ] && [ "$(stat -c %U:%a "$SHARED/r/env")" = root:644 ]'
# archive.create of a folder that is nobody's link to root's files
mkdir -m 0700 "$SANDBOX/rootonly" && echo "root only" > "$SANDBOX/rootonly/secret.txt"
NB ln -s "$SANDBOX/rootonly" "$SHARED/r/build"
cat > r2.lua <<R
recipe { name = "r2" }
step "pack" { archive.create { src = "$SHARED/r/build", dest = "$SANDBOX/out.tar" } }
R
run "$P" r2.lua
expect "archive.create of nobody's link: refused, nothing packed" \
    eval '[ $RC = 1 ] && has "$OUT" "not followed" && [ ! -e "$SANDBOX/out.tar" ]'
# a link of root's moved (by nobody) into a folder nobody owns: not followed
mkdir -p "$SANDBOX/rootonly2" && echo "original" > "$SANDBOX/rootonly2/app.conf"
cat > r3.lua <<R
recipe { name = "r3" }
step "link" { fs.symlink { path = "$SHARED/r/current", target = "$SANDBOX/rootonly2" } }
step "conf dir" { fs.directory "$SHARED/r/conf" }
step "conf" { fs.file { path = "$SHARED/r/conf/app.conf", content = "new\n" } }
R
run "$P" r3.lua
NB sh -c "cd '$SHARED/r' && mv conf conf.old && mv current conf"
run "$P" plan r3.lua -v
expect "root's link moved into nobody's folder: plan does not read through it" \
    eval '[ $RC = 1 ] && has "$OUT" "in a folder other users can change" && ! has "$OUT" "original"'
run "$P" r3.lua
expect "... nor does apply write through it" eval '[ $RC = 1 ] && [ "$(cat "$SANDBOX/rootonly2/app.conf")" = original ]'
# fs.absent in a teardown block over a folder of root's that nobody renamed into its place
mkdir -p "$SHARED/r/precious/sub" && echo "keep" > "$SHARED/r/precious/sub/data" && chmod 0700 "$SHARED/r/precious/sub"
NB sh -c "cd '$SHARED/r' && mv precious cache"
cat > r4.lua <<R
recipe { name = "r4" }
teardown { fs.absent "$SHARED/r/cache" }
R
run "$P" teardown r4.lua
expect "fs.absent of a root folder in nobody's folder: refused, it stays" \
    eval '[ $RC = 1 ] && has "$OUT" "in a folder other users can change" && [ "$(cat "$SHARED/r/cache/sub/data")" = keep ]'
# exec.command's cwd through nobody's link
NB ln -s "$SANDBOX/rootonly" "$SHARED/r/work"
cat > r5.lua <<R
recipe { name = "r5" }
step "cmd" { exec.command { argv = { "sh", "-c", "echo hi > out.txt" }, cwd = "$SHARED/r/work" } }
R
run "$P" r5.lua
expect "exec.command with cwd through nobody's link: refused, nothing written there" \
    eval '[ $RC = 1 ] && has "$OUT" "not followed" && [ ! -e "$SANDBOX/rootonly/out.txt" ]'
# a FIFO where an archive is expected: a clear failure, not a hang
NB mkfifo "$SHARED/r/app.tar"
cat > r6.lua <<R
recipe { name = "r6" }
step "unpack" { archive.extract { src = "$SHARED/r/app.tar", dest = "$SANDBOX/fifo-dest" } }
R
run timeout 10 "$P" r6.lua
expect "a FIFO as an archive: 'not a regular file', at once" eval '[ $RC = 1 ] && has "$OUT" "not a regular file"'
# root's file in nobody's folder, which nobody replaced with a file of their
# own holding the same content: teardown leaves nobody's file (the record
# says whose the file was); plan --teardown says it would
NB sh -c "mkdir -m 0755 '$SHARED/own'"
# (the same of a download, pinned and not, and of an archive made)
mkdir -m 0755 "$SANDBOX/pack" && echo packed > "$SANDBOX/pack/a.txt"
cat > r7.lua <<R
recipe { name = "r7" }
step "conf" { fs.file { path = "$SHARED/own/app.conf", content = "port=1\n" } }
step "tool" { http.file { url = "$BASE/file/bin?size=2000", dest = "$SHARED/own/tool", sha256 = "$BIN_SUM" } }
step "data" { http.file { url = "$BASE/file/data?size=3000", dest = "$SHARED/own/data" } }
step "pack" { archive.create { src = "$SANDBOX/pack", dest = "$SHARED/own/pack.tar" } }
R
run "$P" r7.lua
expect "files of root's in nobody's folder: a file, two downloads, an archive" \
    eval '[ $RC = 0 ] && [ "$(stat -c %U "$SHARED/own/app.conf" "$SHARED/own/tool" "$SHARED/own/data" "$SHARED/own/pack.tar" | sort -u)" = root ]'
NB sh -c "cd '$SHARED/own' && for f in app.conf tool data pack.tar; do cat \$f > \$f.copy && rm -f \$f && mv \$f.copy \$f; done"
run "$P" plan --teardown r7.lua
expect "plan --teardown: nobody's files of the same content would be left" \
    eval '[ $RC = 0 ] && [ "$(grep -c "left, another user'"'"'s file now" <<< "$OUT")" = 4 ] && [ -e "$SHARED/own/app.conf" ]'
run "$P" teardown r7.lua
expect "teardown: nobody's files of the same content are left, and it says so" \
    eval '[ $RC = 0 ] && [ "$(grep -c "another user'"'"'s file now" <<< "$OUT")" = 4 ] \
          && [ "$(stat -c %U "$SHARED/own/app.conf" "$SHARED/own/tool" "$SHARED/own/data" "$SHARED/own/pack.tar" | sort -u)" = nobody ]'
# a part file swapped for another file of root's (renamed by nobody in their
# folder) between a killed run and the next: never resumed from
. "$ROOT/tests/fixtures/faults/lib.sh"
rm -rf "$PROVISION_STATE_DIR"
NB sh -c "mkdir -m 0755 '$SHARED/p'"
printf 'DB_PASSWORD=s3cr3t-hostile-91\n' > "$SHARED/p/app.env"; chmod 600 "$SHARED/p/app.env"
SLOW_SUM=$(curl -s "$BASE/sha256?size=2000000&seed=slowp")
cat > p.lua <<R
recipe { name = "p" }
step "data" { http.file { url = "$BASE/slow/slowp?size=2000000&rate=400000", dest = "$SHARED/p/data.bin" } }
R
"$P" p.lua > /dev/null 2>&1 &
pid=$!
wait_for_part "$SHARED/p/data.bin" 100000
kill -KILL $pid; wait $pid 2>/dev/null
part=$(part_file "$SHARED/p/data.bin")
NB sh -c "cd '$SHARED/p' && rm -f '$(basename "$part")' && mv app.env '$(basename "$part")'" 2>/dev/null \
    || { rm -f "$part"; mv "$SHARED/p/app.env" "$part"; }   # nobody can rename in their folder; else as root
run "$P" p.lua -v
expect "a part file swapped for another root file: not resumed, the download is the server's" \
    eval '[ $RC = 0 ] && ! has "$OUT" "resuming" && [ "$(sha256sum < "$SHARED/p/data.bin" | cut -c1-64)" = "$SLOW_SUM" ]'
expect "... and that file was left alone (not removed, not read into dest)" \
    eval '[ -e "$part" ] && ! grep -q s3cr3t-hostile "$SHARED/p/data.bin"'

# ---- the Compose detection cache: what command provision runs ----
# root with a HOME of nobody's (sudo -E): nobody plants compose-detected.json
# naming a version (it could as well name a program of theirs), with the
# signature of the real binaries so it would pass as fresh. Root must not
# read it: the detection is redone, and nothing is written in nobody's home.
if docker compose version > /dev/null 2>&1 || command -v docker-compose > /dev/null; then
    NB mkdir -p -m 0755 "$SHARED/nbhome/.cache/provision"
    cat > "$SHARED/plant.lua" <<'L'
local cli = require "provision.compose.cli"
local json = require "provision.json"
local argv = { "docker", "compose" }
if not cli.detect { command = "docker compose" } then argv = { "docker-compose" } end
local f = assert(io.open(os.getenv("HOME") .. "/.cache/provision/compose-detected.json", "w"))
f:write(json.encode { key = "auto", argv = argv, version = "9.9.9", signature = cli.signature(argv) })
f:close()
L
    chmod 0644 "$SHARED/plant.lua"
    NB sh -c "cd '$SHARED' && XDG_CACHE_HOME= HOME='$SHARED/nbhome' '$P' --script plant.lua"
    planted=$(cat "$SHARED/nbhome/.cache/provision/compose-detected.json")
    cat > cc.lua <<'R'
recipe { name = "cc" }
check "compose" { compose.available { min_version = "1.0.0" } }
R
    run env -u XDG_CACHE_HOME -u PROVISION_COMPOSE HOME="$SHARED/nbhome" "$P" cc.lua -v
    expect "a compose-detected.json planted in nobody's HOME: not believed (the real version, not 9.9.9)" \
        eval '[ $RC = 0 ] && ! has "$OUT$ERR" "9.9.9" && has "$planted" "9.9.9"'
    expect "... and root wrote nothing in nobody's home" \
        eval '[ "$(cat "$SHARED/nbhome/.cache/provision/compose-detected.json")" = "$planted" ] && [ "$(stat -c %U "$SHARED/nbhome/.cache/provision")" = nobody ] && [ -z "$(find "$SHARED/nbhome" -user root)" ]'
else
    fail "compose detection cache" "no Compose installed (make deps)"
fi
