#!/bin/bash
# exec.run and signals: a SIGINT stops a program that closed its output; a
# second SIGINT ends provision at once and takes the program's process group
# (which is not ours, so the terminal's signal never reaches it) along.
. "$ROOT/tests/lib.sh"

# members of process group $1 that are not zombies
group_alive() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/' | grep -q .; }
# wait up to 2 s for file $1 to hold a pid
wait_pidfile() { i=0; while [ ! -e "$1" ]; do i=$((i + 1)); [ $i -gt 40 ] && return 1; sleep 0.05; done; }
# interrupt_when FILE: once FILE exists, SIGINT to $pid and wait for it:
# $RC, $ms (from the signal to the exit), $OUT (out.txt)
interrupt_when() {
    wait_pidfile "$1"
    t0=$(date +%s%N)
    kill -INT $pid
    wait $pid; RC=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    OUT=$(cat out.txt); ERR=""
}

# one SIGINT: the program closed its output, and is stopped all the same
cat > quiet.lua <<'L'
local r = require("provision.exec").run { "sh", "-c", "echo $$ > quiet.pid; exec >/dev/null 2>&1; sleep 20" }
print("returned", r.status, r.interrupted)
L
"$P" --script quiet.lua > out.txt 2>&1 &
pid=$!
interrupt_when quiet.pid
expect "SIGINT after the program closed its output: stops promptly (${ms}ms)" eval '[ $ms -lt 2500 ]'
expect "SIGINT after the program closed its output: the program is gone" eval '! group_alive "$(cat quiet.pid)"'
kill -KILL -"$(cat quiet.pid)" 2>/dev/null

# two SIGINTs: the program ignores SIGINT and SIGTERM; provision, which waits
# 2 s for it to go, gives up at the second, and the program goes with it
cat > stubborn.lua <<'L'
local r = require("provision.exec").run { "sh", "-c", "trap '' TERM INT; echo $$ > stubborn.pid; sleep 30; echo done" }
print("returned", r.status)
L
"$P" --script stubborn.lua > out.txt 2>&1 &
pid=$!
wait_pidfile stubborn.pid
pg=$(cat stubborn.pid)
kill -INT $pid; sleep 0.3; kill -INT $pid
wait $pid; RC=$?
OUT=$(cat out.txt); ERR=""
expect "second SIGINT: provision ends at once, by SIGINT" eval '[ $RC -eq 130 ]'
i=0; while group_alive "$pg" && [ $i -lt 20 ]; do i=$((i + 1)); sleep 0.05; done
expect "second SIGINT: the program's process group is killed, not orphaned" eval '! group_alive "$pg"'
kill -KILL -"$pg" 2>/dev/null
# recipe code that catches every error with pcall still stops: at --timeout
# (the step fails, timed out) and at a SIGINT (exit 130); the run still
# records what the first step made, and the step after is not run
cat > spin.lua <<'L'
recipe { name = "spin" }
step "mark" { fs.file { path = "./marked", content = "x\n" } }
step "spin" {
  check = function() return false, "spins" end,
  apply = function()
    io.open("spinning", "w"):close()
    while true do
      pcall(function() local s = 0; for i = 1, 1e6 do s = s + i end end)
      pcall(error, "again")
    end
  end,
}
step "after" { fs.file { path = "./after", content = "x\n" } }
L
t0=$(date +%s%N)
run timeout -s KILL 10 "$P" spin.lua --timeout 1s
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "pcall in a step: --timeout still stops it (${ms}ms)" eval '[ $RC -eq 1 ] && [ $ms -lt 4000 ]'
expect "pcall in a step: the step fails as timed out" has "$OUT$ERR" "spin .*timed out after 1.0s (--timeout)"
expect "pcall in a step, timed out: the first step is recorded, the next not run" \
    eval 'grep -rq marked .provision && [ ! -e after ]'
rm -rf .provision marked spinning

timeout -s KILL 10 "$P" spin.lua > out.txt 2>&1 &
pid=$!
interrupt_when spinning
expect "pcall in a step: one SIGINT still stops it (${ms}ms)" eval '[ $RC -eq 130 ] && [ $ms -lt 2000 ]'
expect "pcall in a step, interrupted: the first step is recorded, the next not run" \
    eval 'grep -rq marked .provision && [ ! -e after ] && has "$OUT" "interrupted"'

# one request delivered twice within a few ms (as `timeout`, which signals
# its child and then the child's process group, does) is one interruption:
# provision still waits for the program that ignores it, then records and
# reports; the second copy does not kill it on the spot
cat > deaf.lua <<'L'
recipe { name = "deaf" }
step "mark" { fs.file { path = "./marked", content = "x\n" } }
step "deaf" { exec.command { argv = { "sh", "-c", "trap '' INT TERM; touch deaf.on; sleep 30" } } }
step "after" { fs.file { path = "./after", content = "x\n" } }
L
rm -rf .provision marked
"$P" deaf.lua > out.txt 2>&1 &
pid=$!
wait_pidfile deaf.on
kill -INT $pid; sleep 0.01; kill -INT $pid
wait $pid; RC=$?
OUT=$(cat out.txt)
expect "SIGINT twice within 10 ms: one interruption, exit 130" eval '[ $RC -eq 130 ]'
expect "SIGINT twice within 10 ms: the first step is recorded, the run reports" \
    eval 'grep -rq marked .provision && [ ! -e after ] && has "$OUT" "interrupted"'

# a program that asks the terminal (sudo, ssh would) under a terminal: it
# has none (its own session), so it fails at once instead of stopping on
# SIGTTIN in a background process group until a timeout
cat > tty.lua <<'R'
recipe { name = "tty" }
step "asks" { exec.command { argv = { "sh", "-c", "exec 3< /dev/tty || exit 7; read x <&3" } } }
R
t0=$(date +%s%N)
timeout -s KILL 20 script -qec "\"$P\" tty.lua --no-color" /dev/null < /dev/null > out.txt 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
OUT=$(cat out.txt); ERR=""
expect "a program that opens /dev/tty fails at once, not stopped (${ms}ms)" \
    eval '[ $ms -lt 5000 ] && has "$OUT" "failed=1" && has "$OUT" "exit 7\|exited 7\|status 7"'
exit 0
