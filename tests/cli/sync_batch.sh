#!/bin/bash
# The first apply's batch (issue 19): fs.file, fs.template and fs.env_file
# steps write their files with no fsync each, fs.symlink and fs.directory
# make their links and folders; one syncfs per filesystem written puts a
# batch of them on disk, and only then are their records appended to the
# journal (each write's, link's and folder's intent is in the journal
# before the file, link or folder is). Checked here: the order under strace (the intent before
# the rename, a syncfs between the rename and the record, no fsync per
# file); the batch on disk and journaled before a step of another kind
# runs and before a failure is told; a run killed in the middle of a batch
# (SIGKILL from a step of the batch) leaves a state that the next run and
# teardown handle: teardown removes exactly what the runs created, never a
# file that was there before.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"
ST=$PROVISION_STATE_DIR
RC= OUT= ERR=   # (expect's message shows them)

# ---- the order, under strace ----
if command -v strace > /dev/null && command -v python3 > /dev/null; then
    mkdir d
    {
        echo 'recipe { name = "sb" }'
        echo 'for i = 1, 1200 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x", mode = "0644" } } end'
    } > sb.lua
    strace -f -qq -s 1000000 -e trace=openat,write,renameat,renameat2,fsync,fdatasync,syncfs,sync \
        -o "$SANDBOX/trace" "$P" sb.lua > /dev/null 2>&1
    rc=$?
    expect "1,200 files under strace: applied (exit 0)" eval '[ $rc = 0 ] && [ "$(ls d | wc -l)" = 1200 ]'
    report=$(python3 - "$SANDBOX/trace" <<'PY'
import re, sys
lines = open(sys.argv[1], errors="replace").read().split("\n")
jfd = None
renamed, pending_seen, recorded = {}, set(), {}
syncs, fsyncs, problems = [], 0, []
for i, l in enumerate(lines):
    l = re.sub(r"^\d+ +", "", l)
    m = re.match(r'openat\(\d+, "sb\.journal", .*\) = (\d+)$', l)
    if m:
        jfd = m.group(1)
        continue
    if l.startswith("syncfs("):
        syncs.append(i)
    elif l.startswith(("fsync(", "fdatasync(")):
        fsyncs += 1
    m = re.match(r'renameat2?\(\d+, "(\d+)\.provision\.[a-z0-9]+", \d+, "(\d+)"', l)
    if m:
        n = m.group(2)
        renamed[n] = i
        if n not in pending_seen:
            problems.append("d/%s renamed in before its intent was journaled" % n)
    if jfd and l.startswith("write(%s, " % jfd):
        for e in re.findall(r'\{\\"set\\":\\"f(\d+)\\",\\"value\\":(.*?)\}\\n', l):
            n, v = e
            if '\\"pending\\":' in v:
                pending_seen.add(n)
            elif '\\"created\\":[{' in v:
                if n not in renamed:
                    problems.append("f%s recorded before d/%s was renamed in" % (n, n))
                elif not any(renamed[n] < s < i for s in syncs):
                    problems.append("f%s recorded with no syncfs since d/%s was renamed in" % (n, n))
                recorded[n] = i
missing = [n for n in renamed if n not in recorded]
print("renamed=%d recorded=%d syncfs=%d fsync=%d problems=%d missing=%d first=%s" % (
    len(renamed), len(recorded), len(syncs), fsyncs, len(problems), len(missing), (problems + missing + [""])[0]))
PY
)
    echo "# $report"
    expect "strace: every intent journaled before its rename, every record after a syncfs that follows the rename ($report)" \
        eval 'has "$report" "renamed=1200 recorded=1200" && has "$report" "problems=0 missing=0"'
    # 1,200 steps: a batch of 1,000 (or fewer: a batch is flushed after a
    # second too, and strace slows the run), then the rest at the end; the
    # only fsyncs are the state file's (its temp file and its folder)
    nsync=$(printf '%s' "$report" | sed -E 's/.*syncfs=([0-9]+).*/\1/')
    expect "strace: a few syncfs for 1,200 files ($nsync), no fsync per file (only the state file's 2)" \
        eval '[ "$nsync" -ge 2 ] && [ "$nsync" -le 20 ] && has "$report" "fsync=2 "'
    run "$P" sb.lua
    expect "the re-run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'
    run "$P" teardown sb.lua
    expect "teardown removes the 1,200 files" eval '[ $RC = 0 ] && [ -z "$(ls d)" ]'
    rm -rf d "$ST" sb.lua
else
    fail "the order under strace" "needs strace and python3"
fi

# ---- folders and links join the batch: a mixed recipe, a few syncfs ----
# 20 folders, each with 10 files and a link: the links and folders do not
# flush the batch (before, each did: a syncfs per run of files); each
# link's and folder's intent is journaled before it is made, its record
# after a syncfs that follows it
if command -v strace > /dev/null && command -v python3 > /dev/null; then
    {
        echo 'recipe { name = "mx" }'
        echo 'for d = 1, 20 do'
        echo '  step("d" .. d) { fs.directory { path = "m/" .. d } }'
        echo '  for i = 1, 10 do step(d .. "f" .. i) { fs.file { path = "m/" .. d .. "/" .. i, content = "x" } } end'
        echo '  step("l" .. d) { fs.symlink { path = "m/" .. d .. "/l", target = "1" } }'
        echo 'end'
    } > mx.lua
    strace -f -qq -s 1000000 -e trace=openat,write,renameat,renameat2,mkdirat,symlinkat,syncfs \
        -o "$SANDBOX/trace" "$P" mx.lua > /dev/null 2>&1
    rc=$?
    expect "a mixed recipe of 20 folders, 200 files, 20 links under strace: applied (exit 0)" \
        eval '[ $rc = 0 ] && [ "$(ls m/*/ | grep -c .)" -ge 220 ] && [ -L m/20/l ]'
    report=$(python3 - "$SANDBOX/trace" <<'PY'
import re, sys
lines = open(sys.argv[1], errors="replace").read().split("\n")
jfd, made, intent, recorded, syncs, problems = None, {}, set(), 0, [], []
for i, l in enumerate(lines):
    l = re.sub(r"^\d+ +", "", l)
    m = re.match(r'openat\(\d+, "mx\.journal", .*\) = (\d+)$', l)
    if m:
        jfd = m.group(1)
        continue
    if l.startswith("syncfs("):
        syncs.append(i)
    m = re.match(r'mkdirat\(\d+, "(\d+)", .*\)\s+= 0$', l)
    if m:
        made["d" + m.group(1)] = i
        if "d" + m.group(1) not in intent:
            problems.append("m/%s made before its intent was journaled" % m.group(1))
    m = re.match(r'renameat2?\(\d+, "l\.provision\.[A-Za-z0-9]+", \d+, "l"', l)
    if m:
        n = "l%d" % (len([k for k in made if k.startswith("l")]) + 1)
        made[n] = i
        if n not in intent:
            problems.append("%s made before its intent was journaled" % n)
    if jfd and l.startswith("write(%s, " % jfd):
        for n, v in re.findall(r'\{\\"set\\":\\"([dl]\d+)\\",\\"value\\":(.*?)\}\\n', l):
            if '\\"pending\\":' in v:
                intent.add(n)
            elif '\\"created\\":[{' in v:
                recorded += 1
                if n not in made:
                    problems.append("%s recorded before it was made" % n)
                elif not any(made[n] < s < i for s in syncs):
                    problems.append("%s recorded with no syncfs since it was made" % n)
print("made=%d intents=%d recorded=%d syncfs=%d problems=%d first=%s" % (
    len(made), len(intent), recorded, len(syncs), len(problems), (problems + [""])[0]))
PY
)
    echo "# $report"
    expect "strace: every folder's and link's intent journaled before it is made, its record after a syncfs that follows it ($report)" \
        eval 'has "$report" "made=40 intents=40 recorded=40" && has "$report" "problems=0"'
    nsync=$(printf '%s' "$report" | sed -E 's/.*syncfs=([0-9]+).*/\1/')
    expect "strace: a few syncfs for 260 steps of three kinds ($nsync; before, a flush per link and folder: 20)" \
        eval '[ "$nsync" -ge 1 ] && [ "$nsync" -le 8 ]'
    run "$P" mx.lua
    expect "the mixed recipe's re-run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'
    run "$P" teardown mx.lua
    expect "teardown of the mixed recipe removes every folder, file and link" eval '[ $RC = 0 ] && [ ! -e m ]'
    rm -rf m "$ST" mx.lua
else
    fail "folders and links in the batch" "needs strace and python3"
fi

# ---- the batch is on disk and journaled before a step of another kind ----
mkdir d
cat > mixed.lua <<'R'
recipe { name = "mixed" }
for i = 1, 20 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x" } } end
step "t" { fs.template { path = "d/t", template = "v=${v}\n", vars = { v = 1 } } }
step "e" { fs.env_file { path = "d/e.env", values = { A = "1" } } }
step "look" { exec.command { argv = { "sh", "-c", "cp \"$PROVISION_STATE_DIR/mixed.journal\" seen.journal" }, creates = "seen.journal" } }
for i = 21, 30 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x" } } end
R
run "$P" mixed.lua
done_in_seen=$(grep -c '"created":\[{' seen.journal 2>/dev/null)
expect "a command step: the 22 file steps before it are in the journal when it runs ($done_in_seen)" \
    eval '[ $RC = 0 ] && [ "$done_in_seen" = 22 ]'
run "$P" teardown mixed.lua
expect "teardown of the mixed recipe removes every file it wrote" \
    eval '[ $RC = 0 ] && [ -z "$(ls d)" ]'
rm -rf d "$ST" seen.journal

# ---- the batch is journaled before a failure is told ----
if command -v strace > /dev/null; then
    mkdir d
    cat > fails.lua <<'R'
recipe { name = "fails" }
for i = 1, 10 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x" } } end
step "bad" { fs.file { path = "nowhere/x", content = "x" } }
R
    strace -f -qq -s 100000 -e trace=write,syncfs -o "$SANDBOX/trace" "$P" fails.lua > /dev/null 2>&1
    rc=$?
    # the journal's record of f10, the syncfs before it, and the failure's
    # message after both
    order=$(grep -nE 'syncfs\(|\\"set\\":\\"f10\\",.*created|step .bad. failed' "$SANDBOX/trace" | cut -d: -f1 | tr '\n' ' ')
    sync_at=$(grep -n 'syncfs(' "$SANDBOX/trace" | head -1 | cut -d: -f1)
    rec_at=$(grep -n '\\"set\\":\\"f10\\",.*created' "$SANDBOX/trace" | head -1 | cut -d: -f1)
    fail_at=$(grep -n "step .bad. failed" "$SANDBOX/trace" | head -1 | cut -d: -f1)
    expect "a failing step: syncfs, then the batch's records, then the failure is told (lines $sync_at < $rec_at < $fail_at)" \
        eval '[ $rc = 1 ] && [ -n "$sync_at" ] && [ -n "$rec_at" ] && [ -n "$fail_at" ] && [ $sync_at -lt $rec_at ] && [ $rec_at -lt $fail_at ]'
    run "$P" teardown fails.lua
    expect "teardown after the failure removes the 10 files" eval '[ $RC = 0 ] && [ -z "$(ls d)" ]'
    rm -rf d "$ST"
else
    fail "the batch before a failure" "needs strace"
fi

# ---- SIGKILL in the middle of a batch ----
# A plugin kind in the batch (sync_later) that kills the run (kill -KILL
# from a shell whose parent is provision) while it is armed: the steps
# before it wrote their files and journaled their intents, but no record
# of any was appended (no syncfs yet). Before the run, the user has d/7
# with the recipe's content (left alone: nothing to write), d/8 with other
# content (rewritten: not the recipe's to remove) and d/mine (not in the
# recipe).
mkdir -p modules
cat > modules/tkill.lua <<'L'
local R = require "provision.resource"
local M = {}
M.kill = R.define {
  kind = "tkill.kill",
  options = { armed = { "string", doc = "a file: while it is there, apply kills the run" } },
  describe = function(self) return "kill the run while " .. self.armed .. " is there" end,
  check = function(self) return io.open(self.armed) == nil end,
  apply = function(self)
    os.remove(self.armed)
    os.execute("kill -KILL $PPID")
    return true
  end,
  sync_later = true,   -- a step of the batch: the kill comes in its middle
}
return M
L
cat > kill.lua <<'R'
recipe { name = "killed" }
local tkill = require "tkill"
for i = 1, 20 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x" } } end
step "t" { fs.template { path = "d/t", template = "v=${v}\n", vars = { v = 1 } } }
step "boom" { tkill.kill { armed = "armed" } }
for i = 21, 30 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x" } } end
R
user_files() {
    rm -rf d "$ST" armed
    mkdir d
    printf 'x' > d/7; printf 'the user wrote this' > d/8; printf 'mine' > d/mine
    touch armed
}
# what teardown must leave: the user's three files, d/8 with what the
# recipe wrote over it (it was there before: not the recipe's to remove)
left_ok() {
    [ "$(ls d | sort | tr '\n' ' ')" = "7 8 mine " ] && [ "$(cat d/7)" = x ] && [ "$(cat d/mine)" = mine ] \
        && [ -z "$(find d -name '*.provision.*')" ]
}
for then in teardown apply; do
    user_files
    { "$P" kill.lua > /dev/null 2>&1; } 2> /dev/null   # (not bash's "Killed" line)
    rc=$?
    n_files=$(ls d | wc -l)
    recorded=$(grep -c '"created":\[{' "$ST/killed.journal" 2>/dev/null)
    intents=$(grep -c '"pending":{' "$ST/killed.journal" 2>/dev/null)
    expect "killed mid-batch ($then next): exit 137, 20 files and the template written, their intents journaled ($intents), no record appended ($recorded)" \
        eval '[ $rc = 137 ] && [ "$n_files" = 22 ] && [ "$intents" = 20 ] && [ "$recorded" = 0 ] && state_valid'
    if [ $then = apply ]; then
        run "$P" kill.lua
        expect "killed mid-batch, then apply: converges (exit 0), all 30 files" \
            eval '[ $RC = 0 ] && [ "$(ls d | wc -l)" = 32 ] && [ "$(cat d/30)" = x ]'
        run "$P" kill.lua
        expect "killed mid-batch, then apply: the next run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'
    fi
    before=$(ls d | sort | tr '\n' ' ')
    run "$P" plan --teardown kill.lua
    would=$(grep -E '^ +- ' <<< "$OUT" | sed 's|.*/||' | sort | tr '\n' ' ')
    expect "killed mid-batch, then $then: plan --teardown removes nothing" \
        eval '[ $RC = 3 ] && [ "$(ls d | sort | tr "\n" " ")" = "$before" ] \
              && { [ $then = apply ] || [ "$(grep -c "\"pending\":{" "$ST/killed.journal")" = 20 ]; }'
    run "$P" teardown kill.lua
    expect "killed mid-batch, then $then: teardown removes exactly what the runs created ($(ls d | tr '\n' ' '))" \
        eval '[ $RC = 0 ] && left_ok'
    gone=$(comm -23 <(tr ' ' '\n' <<< "$before" | grep .) <(ls d | sort) | tr '\n' ' ')
    expect "killed mid-batch, then $then: plan --teardown named just those ($would)" eval '[ "$would" = "$gone" ]'
    run "$P" teardown kill.lua
    expect "killed mid-batch, then $then: a second teardown has nothing left to do" \
        eval '[ $RC = 0 ] && left_ok'
done
rm -rf d "$ST" armed

# ---- SIGKILL in the middle of a batch that rewrites files the recipe created ----
# The files' records (from the first apply) have the old digest; the kill
# comes after the new content landed and before the records were updated:
# the next run and teardown still know the files as the recipe's
sed 's/content = "x"/content = v.c/; s/^local tkill = require "tkill"$/local tkill = require "tkill"\nlocal v = vars { c = "x" }/' kill.lua > rewrite.lua
for then in teardown apply; do
    rm -rf d "$ST" armed
    mkdir d
    run "$P" rewrite.lua
    touch armed
    { "$P" rewrite.lua --var c=y > /dev/null 2>&1; } 2> /dev/null
    rc=$?
    expect "rewrite killed mid-batch ($then next): exit 137, the 20 files rewritten" \
        eval '[ $rc = 137 ] && [ "$(cat d/20)" = y ] && [ "$(cat d/21)" = x ] && state_valid'
    if [ $then = apply ]; then
        run "$P" rewrite.lua --var c=y
        expect "rewrite killed mid-batch, then apply: converges" eval '[ $RC = 0 ] && [ "$(cat d/30)" = y ]'
    fi
    run "$P" teardown rewrite.lua
    expect "rewrite killed mid-batch, then $then: teardown removes every file the recipe created ($(ls d | tr '\n' ' '))" \
        eval '[ $RC = 0 ] && [ -z "$(ls d)" ]'
done
rm -rf d "$ST" armed

# ---- another user, after a run killed in the middle of a batch ----
# The files of the killed batch are in the journal as writes begun, not as
# records. Nobody (uid 65534), who can write to the folder (0777, not
# sticky: they can rename over root's files), puts a file of theirs with
# the recipe's very content in place of one, and a link to root's file in
# place of another: teardown removes a file begun only while it is the
# running user's, as written, and never goes through a link.
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
    NB() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    chmod 0711 "$SANDBOX"
    rm -rf d "$ST" armed
    mkdir -m 0777 d
    mkdir -m 0700 victim && printf 'x' > victim/root.txt
    touch armed
    { "$P" kill.lua > /dev/null 2>&1; } 2> /dev/null
    rc=$?
    NB sh -c "cd '$SANDBOX/d' && printf x > n2 && mv -f n2 2 && ln -s '$SANDBOX/victim/root.txt' n3 && mv -f n3 3"
    expect "hostile, after the kill: nobody's file and link are in place of two of root's (rc $rc)" \
        eval '[ $rc = 137 ] && [ "$(stat -c %U d/2)" = nobody ] && [ -L d/3 ]'
    run "$P" teardown kill.lua
    expect "hostile: teardown leaves nobody's file and link, and root's file the link names; removes the rest" \
        eval '[ $RC = 0 ] && [ "$(ls d | sort | tr "\n" " ")" = "2 3 " ] && [ "$(cat d/2)" = x ] && [ "$(cat victim/root.txt)" = x ]'
    rm -rf d victim "$ST" armed
    # files the recipe gives another owner: begun, not recorded, still the recipe's
    cat > owned.lua <<'R'
recipe { name = "owned" }
local tkill = require "tkill"
for i = 1, 5 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x", owner = "nobody" } } end
step "boom" { tkill.kill { armed = "armed" } }
R
    mkdir d && touch armed
    { "$P" owned.lua > /dev/null 2>&1; } 2> /dev/null
    rc=$?
    run "$P" teardown owned.lua
    expect "killed mid-batch, files given to nobody by the recipe (rc $rc): teardown removes them ($(ls d | tr '\n' ' '))" \
        eval '[ $rc = 137 ] && [ $RC = 0 ] && [ -z "$(ls d)" ]'
    rm -rf d "$ST" armed owned.lua
    chmod 0700 "$SANDBOX"
else
    fail "another user after a killed batch" "needs root and setpriv (util-linux)"
fi

# ---- SIGKILL in the middle of a batch of folders, files and links ----
# The intents of the folders (d/sub/deep and d/sub, made by one step) and
# the links are journaled, not their records: teardown removes what the
# killed run made and nothing else; an apply after it converges and records
# them. As nobody: a link of theirs with the same target in place of one
# begun, a folder of theirs in place of the one begun: left alone.
cat > killfl.lua <<'R'
recipe { name = "killfl" }
local tkill = require "tkill"
step "dir" { fs.directory { path = "d/sub/deep" } }
for i = 1, 5 do step("f" .. i) { fs.file { path = "d/sub/deep/" .. i, content = "x" } } end
for i = 1, 3 do step("l" .. i) { fs.symlink { path = "d/l" .. i, target = "sub/deep/" .. i } } end
step "boom" { tkill.kill { armed = "armed" } }
step "l9" { fs.symlink { path = "d/l9", target = "sub" } }
R
for then in teardown apply; do
    rm -rf d "$ST" armed
    mkdir d && printf 'mine' > d/mine && touch armed
    { "$P" killfl.lua > /dev/null 2>&1; } 2> /dev/null
    rc=$?
    recorded=$(grep -c '"created":\[{' "$ST/killfl.journal" 2>/dev/null)
    intents=$(grep -c '"pending":{' "$ST/killfl.journal" 2>/dev/null)
    expect "folders and links killed mid-batch ($then next): exit 137, made, 9 intents journaled ($intents), no record ($recorded)" \
        eval '[ $rc = 137 ] && [ -L d/l3 ] && [ -f d/sub/deep/5 ] && [ "$intents" = 9 ] && [ "$recorded" = 0 ] && state_valid'
    if [ $then = apply ]; then
        run "$P" killfl.lua
        expect "folders and links killed mid-batch, then apply: converges" eval '[ $RC = 0 ] && [ -L d/l9 ]'
        run "$P" killfl.lua
        expect "folders and links killed mid-batch, then apply: the next run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0"'
    fi
    run "$P" teardown killfl.lua
    expect "folders and links killed mid-batch, then $then: teardown removes the folders, files and links made ($(ls -A d | tr '\n' ' '))" \
        eval '[ $RC = 0 ] && [ "$(ls -A d)" = mine ]'
done
rm -rf d "$ST" armed
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
    NB() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    chmod 0711 "$SANDBOX"
    mkdir -m 0777 d && touch armed
    { "$P" killfl.lua > /dev/null 2>&1; } 2> /dev/null
    rc=$?
    # nobody: their own link to the same target over l1; d/sub moved away
    # (d is theirs to write in) and a folder of theirs in its place
    NB sh -c "cd '$SANDBOX/d' && ln -s sub/deep/1 n1 && mv -f n1 l1 && mv sub moved && mkdir -p sub/deep"
    expect "hostile, after the kill: nobody's link and folders in place of root's (rc $rc)" \
        eval '[ $rc = 137 ] && [ "$(stat -c %U d/l1)" = nobody ] && [ "$(stat -c %U d/sub/deep)" = nobody ]'
    run "$P" teardown killfl.lua
    expect "hostile: teardown leaves nobody's link and folders, removes root's links l2 and l3 ($(ls -A d | tr '\n' ' '))" \
        eval '[ $RC = 0 ] && [ "$(ls -A d | sort | tr "\n" " ")" = "l1 moved sub " ] && [ -d d/sub/deep ] && [ "$(stat -c %U d/l1)" = nobody ]'
    rm -rf d "$ST" armed
    # recorded (a whole run): nobody's link with the same target in place
    # of root's l2 is theirs, not removed
    mkdir -m 0777 d
    run "$P" killfl.lua
    NB sh -c "cd '$SANDBOX/d' && ln -s sub/deep/2 n2 && mv -f n2 l2"
    run "$P" teardown killfl.lua
    expect "hostile: a recorded link replaced by nobody's with the same target: teardown leaves theirs ($(ls -A d | tr '\n' ' '))" \
        eval '[ $RC = 0 ] && [ "$(ls -A d)" = l2 ] && [ "$(stat -c %U d/l2)" = nobody ]'
    rm -rf d "$ST"
    chmod 0700 "$SANDBOX"
else
    fail "another user after a killed batch of folders and links" "needs root and setpriv (util-linux)"
fi
rm -f killfl.lua
