#!/bin/bash
# Step lines wait in stdout's buffer when stdout is not a terminal
# (report.lua, issue 19: a plan of 142,000 files was 142,000 write(2)s),
# and still come out while the run goes on: before a step that is not one
# of whole files runs, at a step line HOLD (0.1 s) after the first one
# held, before anything on stderr, and at the end. Checked with stdout a
# file, read while the run waits in a step.
. "$ROOT/tests/lib.sh"
RC= OUT= ERR=

# wait up to 10 s for a file; the run's pid is $1 (gone: stop waiting)
wait_for() {
    i=0
    while [ ! -e "$2" ]; do
        i=$((i + 1)); [ $i -gt 200 ] && return 1
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
}

# ---- fewer writes: a plan of 2,000 files ----
if command -v strace > /dev/null; then
    {
        echo 'recipe { name = "many" }'
        echo 'for i = 1, 2000 do step("f" .. i) { fs.file { path = "d/" .. i, content = "x" } } end'
    } > many.lua
    mkdir d
    for mode in text json; do
        flag=; [ $mode = json ] && flag=--json
        strace -qq -e trace=write -o "$SANDBOX/trace" "$P" plan $flag many.lua > "$SANDBOX/out" 2> "$SANDBOX/err"
        rc=$?
        # (--json writes to a copy of stdout: every write but stderr's)
        writes=$(grep -c '^write([013-9]' "$SANDBOX/trace")
        if [ $mode = text ]; then
            lines=$(grep -c 'would-change' "$SANDBOX/out"); tail=$(tail -n 1 "$SANDBOX/out")
            # (~340 KB of lines: a few 64 KiB buffers, a flush each 0.1 s; the
            # 4 KiB buffer glibc gives a file or a pipe would be ~85 writes)
            expect "plan of 2,000 files, stdout a file: every line (exit 3, $lines lines) in $writes writes, not one a step" \
                eval '[ $rc = 3 ] && [ "$lines" = 2001 ] && [ "$writes" -lt 60 ] && has "$tail" "would-change=2000"'
        else
            events=$(grep -c '"event":"step"' "$SANDBOX/out"); last=$(tail -n 1 "$SANDBOX/out")
            expect "plan --json of 2,000 files: every event ($events) in $writes writes, the summary last" \
                eval '[ $rc = 3 ] && [ "$events" = 2000 ] && [ "$writes" -lt 400 ] && has "$last" "\"event\":\"summary\""'
        fi
    done
    rm -rf d
else
    fail "fewer writes" "needs strace"
fi

# ---- out before a step of another kind ----
# three files, then a command that waits for the test: the files' lines
# are in the output while it waits
cat > live.lua <<'R'
recipe { name = "live" }
for i = 1, 3 do step("f" .. i) { fs.file { path = "f" .. i, content = "x" } } end
step "wait" { exec.command { argv = { "sh", "-c", "touch started; while [ ! -e go ]; do sleep 0.05; done" }, creates = "go" } }
step "after" { fs.file { path = "after", content = "x" } }
R
for flag in "" --json; do
    rm -f f1 f2 f3 after started go
    "$P" live.lua $flag > "$SANDBOX/live.out" 2>&1 &
    pid=$!
    if wait_for $pid started; then
        seen=$(cat "$SANDBOX/live.out")
        touch go
        wait $pid; rc=$?
        if [ -z "$flag" ]; then
            expect "text: the 3 files' lines are out while a command runs" \
                eval 'has "$seen" "f3 *changed" && ! has "$seen" "after" && [ $rc = 0 ]'
        else
            expect "--json: the 3 files' events are out while a command runs" \
                eval '[ "$(printf "%s\n" "$seen" | grep -c "\"event\":\"step\"")" = 3 ] && [ $rc = 0 ]'
        fi
    else
        kill $pid 2>/dev/null; wait $pid 2>/dev/null
        fail "out before a step of another kind ($flag)" "the command never started: $(cat "$SANDBOX/live.out")"
    fi
done

# ---- out HOLD after the first line held, in a run of slow file steps ----
# a plugin kind of whole files (sync_later) whose check takes 0.3 s, then
# one that waits for the test: the lines of the two slow steps are out
mkdir -p modules
cat > modules/tslow.lua <<'L'
local R = require "provision.resource"
local core = require "provision._core"
local M = {}
M.step = R.define {
  kind = "tslow.step",
  options = { wait = { "number?", doc = "seconds the check takes" }, until_file = { "string?", doc = "a file the check waits for" } },
  describe = function(self) return "a slow step" end,
  check = function(self)
    if self.until_file then
      io.open("started", "w"):close()
      local t0 = core.now()
      while io.open(self.until_file) == nil and core.now() - t0 < 10 do os.execute("sleep 0.05") end
    else
      local t0 = core.now()
      while core.now() - t0 < self.wait do end
    end
    return true
  end,
  apply = function(self) return true end,
  sync_later = true,
}
return M
L
cat > slow.lua <<'R'
recipe { name = "slow" }
local tslow = require "tslow"
step "s1" { tslow.step { wait = 0.3 } }
step "s2" { tslow.step { wait = 0.3 } }
step "s3" { tslow.step { until_file = "go" } }
R
rm -f started go
"$P" slow.lua > "$SANDBOX/slow.out" 2>&1 &
pid=$!
if wait_for $pid started; then
    seen=$(cat "$SANDBOX/slow.out")
    touch go
    wait $pid; rc=$?
    expect "slow file steps: the lines held for 0.1 s or more are out while the next step runs" \
        eval 'has "$seen" "s1 *ok" && has "$seen" "s2 *ok" && [ $rc = 0 ]'
else
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    fail "slow file steps" "the third step never started: $(cat "$SANDBOX/slow.out")"
fi

# ---- stderr keeps its place (2>&1) ----
# two files, then one whose folder is a file: the step lines, the error,
# then the summary
cat > err.lua <<'R'
recipe { name = "err" }
step "f1" { fs.file { path = "e1", content = "x" } }
step "f2" { fs.file { path = "e2", content = "x" } }
step "bad" { fs.file { path = "e1/inside", content = "x" } }
R
rm -f e1 e2
"$P" err.lua > "$SANDBOX/err.out" 2>&1
rc=$?
order=$(grep -n -e 'f2 *changed' -e '^error:' -e 'failed=1' "$SANDBOX/err.out" | cut -d: -f1 | tr '\n' ' ')
expect "2>&1: the step lines, then the error, then the summary ($order)" \
    eval '[ $rc = 1 ] && [ "$(echo $order | tr " " "\n" | sort -n | tr "\n" " ")" = "$order" ] && [ "$(echo $order | wc -w)" = 3 ]'

# ---- os.exit in a step of whole files ----
# a plugin kind of the batch (sync_later) whose check ends the process
# with os.exit: the lines and events held for the steps before it are out
# (stdio's buffers, which exit() flushes: --json's file too)
cat > modules/texit.lua <<'L'
local R = require "provision.resource"
local M = {}
M.step = R.define {
  kind = "texit.step",
  options = {},
  describe = function() return "exit" end,
  check = function() os.exit(7) end,
  apply = function() return true end,
  sync_later = true,
}
return M
L
cat > exit.lua <<'R'
recipe { name = "exit" }
local texit = require "texit"
step "x1" { fs.file { path = "x1", content = "x" } }
step "x2" { fs.file { path = "x2", content = "x" } }
step "bye" { texit.step {} }
R
for flag in "" --json; do
    rm -f x1 x2
    "$P" exit.lua $flag > "$SANDBOX/exit.out" 2> "$SANDBOX/exit.err"
    rc=$?
    if [ -z "$flag" ]; then
        expect "os.exit in a file step: exit 7, the two lines before it out" \
            eval '[ $rc = 7 ] && grep -q "x1 *changed" "$SANDBOX/exit.out" && grep -q "x2 *changed" "$SANDBOX/exit.out"'
    else
        expect "os.exit in a file step, --json: exit 7, the two events before it out" \
            eval '[ $rc = 7 ] && [ "$(grep -c "\"event\":\"step\"" "$SANDBOX/exit.out")" = 2 ]'
    fi
done
