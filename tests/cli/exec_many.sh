#!/bin/bash
# exec.many and how a run is stopped from outside: SIGINT while many jobs
# run (their stdin closed at once, the grace, SIGTERM, nothing left behind;
# a second SIGINT takes every job's group along), stdin's EOF as an
# interrupt (the remote side's controller went away), SIGHUP as SIGTERM.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"

# members of process group $1 that are not zombies
group_alive() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/' | grep -q .; }
# wait up to 5 s for every file named to exist
wait_files() { i=0; for f in "$@"; do while [ ! -s "$f" ]; do i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.05; done; done; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# signal_and_wait SIG: SIG to $pid, then wait for it: $RC, $ms (from the signal to its exit)
signal_and_wait() { t0=$(date +%s%N); kill -"$1" $pid; wait $pid; RC=$?; ms=$(ms_since "$t0"); }

# ---- SIGINT while many() runs ----
# jobs 1-3 wait for EOF on stdin, as a remote run does; job 4 sleeps; job 5
# waits for a free fork and is never started
cat > many.lua <<'L'
local core = require "provision._core"
core.shield(true)   -- as the controller: it prints its recap after an interrupt
local d, grace = arg[1], tonumber(arg[2])
local jobs = {}
for i = 1, 3 do
  jobs[i] = { argv = { "sh", "-c", 'echo $$ > "$0"; cat > /dev/null; echo "got eof"', d .. "/eof" .. i .. ".pid" },
              hold_stdin = true, input = "bundle" }
end
jobs[4] = { argv = { "sh", "-c", 'echo $$ > "$0"; exec sleep 30', d .. "/sleep.pid" } }
jobs[5] = { argv = { "sh", "-c", "echo never" } }
local t0 = core.now()
local r = require("provision._exec").many(jobs, { forks = 4, grace = grace, on_line = function(i, stream, line)
  io.stdout:write(("line %d %s %s %.2f\n"):format(i, stream, line, core.now() - t0)); io.stdout:flush()
end })
for i, x in ipairs(r) do
  print(("result %d status=%s signal=%s interrupted=%s not_started=%s seconds=%.2f"):format(i,
    tostring(x.status), tostring(x.signal), tostring(x.interrupted), tostring(x.not_started), x.seconds))
end
return core.interrupted() and core.EXIT.interrupted or 0
L
"$P" --script many.lua "$SANDBOX" 1.5 > out.txt 2>&1 &
pid=$!
wait_files eof1.pid eof2.pid eof3.pid sleep.pid
sleep 0.5
signal_and_wait INT
OUT=$(cat out.txt); ERR=""
expect "many, SIGINT: provision exits 130 once the jobs are stopped (${ms}ms)" \
    eval '[ $RC -eq 130 ] && [ $ms -ge 1400 ] && [ $ms -lt 4000 ]'
expect "many, SIGINT: every job waiting on stdin saw EOF at once and ended well (status 0, interrupted)" \
    eval 'for i in 1 2 3; do has "$OUT" "result $i status=0 signal=nil interrupted=true" || exit 1; done'
secs() { printf '%s\n' "$OUT" | sed -n "s/^result $1 .*seconds=//p"; }
expect "many, SIGINT: their last lines reached on_line, and they ended well before the grace was over" \
    eval '[ $(printf "%s\n" "$OUT" | grep -c "^line [123] out got eof ") -eq 3 ] &&
          for i in 1 2 3; do awk "BEGIN { exit !($(secs $i) + 1.0 < $(secs 4)) }" || exit 1; done'
expect "many, SIGINT: the sleeping job got SIGTERM after the grace" \
    has "$OUT" "result 4 status=nil signal=15 interrupted=true not_started=nil seconds=[12]"
expect "many, SIGINT: the job waiting for a fork was not started" \
    has "$OUT" "result 5 status=nil signal=nil interrupted=nil not_started=true seconds=0.00"
expect "many, SIGINT: no job's process is left" \
    eval 'for f in eof1 eof2 eof3 sleep; do ! group_alive "$(cat $f.pid)" || exit 1; done'
rm -f ./*.pid

# ---- a second SIGINT in the grace: provision ends at once, every job's group with it ----
cat > deaf.lua <<'L'
local d = arg[1]
local jobs = {}
for i = 1, 3 do
  jobs[i] = { argv = { "sh", "-c", "trap '' TERM INT; echo $$ > \"$0\"; sleep 30", d .. "/deaf" .. i .. ".pid" }, hold_stdin = true }
end
require("provision._exec").many(jobs, { grace = 20 })
L
"$P" --script deaf.lua "$SANDBOX" > out.txt 2>&1 &
pid=$!
wait_files deaf1.pid deaf2.pid deaf3.pid
kill -INT $pid; sleep 0.3
signal_and_wait INT
OUT=$(cat out.txt); ERR=""
expect "many, second SIGINT: provision ends at once, by SIGINT (${ms}ms)" eval '[ $RC -eq 130 ] && [ $ms -lt 1000 ]'
i=0; while group_alive "$(cat deaf1.pid)" && [ $i -lt 20 ]; do i=$((i + 1)); sleep 0.05; done
expect "many, second SIGINT: every job's process group is killed, not orphaned" \
    eval 'for i in 1 2 3; do ! group_alive "$(cat deaf$i.pid)" || exit 1; done'
for i in 1 2 3; do kill -KILL -"$(cat deaf$i.pid)" 2>/dev/null; done

# ---- stdin's EOF interrupts, once asked for ----
cat > eof.lua <<'L'
local core = require "provision._core"
assert(core.interrupt_on_stdin_eof())
local f = io.open("eof.on", "w"); f:write("on"); f:close()
while true do end   -- Lua code: the hook stops it
L
t0=$(date +%s%N)
run timeout -s KILL 10 sh -c "printf '' | \"$P\" --script eof.lua"
ms=$(ms_since "$t0")
expect "stdin's EOF: exit 130 at once, interrupted (${ms}ms)" \
    eval '[ $RC -eq 130 ] && [ $ms -lt 2000 ] && has "$ERR" "provision: interrupted"'

rm -f eof.on
mkfifo stdin.fifo
exec 3<> stdin.fifo   # a writer that holds it open: no EOF until it closes
timeout -s KILL 20 "$P" --script eof.lua < stdin.fifo 3>&- > out.txt 2>&1 &
pid=$!
wait_files eof.on
sleep 0.7
printf 'bytes to drop\n' >&3
sleep 0.3
alive=no; kill -0 $pid 2>/dev/null && alive=yes
t0=$(date +%s%N)
exec 3>&-
wait $pid; RC=$?
ms=$(ms_since "$t0")
OUT=$(cat out.txt); ERR=""
expect "stdin held open: the run goes on (bytes on stdin are dropped)" test "$alive" = yes
expect "stdin held open: exit 130 once it is closed (${ms}ms)" \
    eval '[ $RC -eq 130 ] && [ $ms -lt 2000 ] && has "$OUT" "provision: interrupted"'

# the cause is told, and a blocking call returns at once (the handler wakes it)
cat > cause.lua <<'L'
local core = require "provision._core"
core.shield(true)
assert(core.interrupt_on_stdin_eof())
local r = require("provision._exec").run { "sleep", "30" }
local _, sig, cause = core.interrupted()
print("run interrupted=" .. tostring(r.interrupted) .. " signal=" .. sig .. " cause=" .. cause)
return core.EXIT.interrupted
L
t0=$(date +%s%N)
run timeout -s KILL 10 sh -c "printf 'x' | \"$P\" --script cause.lua"
ms=$(ms_since "$t0")
expect "stdin's EOF during exec.run: the program is stopped, the cause is told (${ms}ms)" \
    eval '[ $RC -eq 130 ] && [ $ms -lt 4000 ] && has "$OUT" "run interrupted=true signal=15 cause=stdin closed (the controller went away)"'

# ---- SIGHUP: as SIGTERM (a remote run whose ssh session hangs up) ----
cat > r.lua <<'R'
recipe { name = "hup" }
local core = require "provision._core"
step "project directory" { fs.directory("./proj") }
step "slow" {
  describe = "a slow marker",
  check = function() return fs.exists("./proj/slow.done") end,
  apply = function()
    fs.write("./proj/slow.started", tostring(core.getpid()), "0644")
    core.sleep(5)
    if core.interrupted() then return nil, "interrupted while waiting" end
    fs.write("./proj/slow.done", "done", "0644")
  end,
}
step "after" { fs.directory("./proj/after") }
R
# a SIGHUP ignored from the start (nohup) stays ignored: undo that here
hupdfl=""
env --default-signal=HUP true 2>/dev/null && hupdfl="env --default-signal=HUP"
$hupdfl "$P" r.lua > a.out 2>&1 &
pid=$!
wait_files proj/slow.started
signal_and_wait HUP
OUT=$(cat a.out); ERR=""
expect "SIGHUP in a step: exit 130, promptly (${ms}ms)" eval '[ $RC = 130 ] && [ $ms -lt 2000 ]'
expect "SIGHUP in a step: says interrupted, names the step" \
    eval 'has "$OUT" "interrupted" && has "$OUT" "step .slow. failed"'
expect "SIGHUP in a step: the state is saved (the first step recorded), later steps not run" \
    eval '[ ! -e proj/after ] && state_valid && [ "$(state_created "project directory")" = 1 ]'
run "$P" r.lua
expect "SIGHUP in a step: the re-run converges" eval '[ $RC = 0 ] && has "$OUT" "failed=0" && [ -d proj/after ]'
exit 0
