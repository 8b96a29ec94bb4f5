#!/bin/bash
# Check lines say what was measured, not only the requirement (issue 18):
# sys.memory, sys.cpus, sys.disk and sys.port_free, when met (the check's
# detail) and when not (the failure's reason), compared with what the
# system's own tools measure.
. "$ROOT/tests/lib.sh"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > s.lua <<EOF2
recipe { name = "measured" }
local v = vars { mem = "1MiB", cpus = 1, disk = "1KiB", port = $port, where = "." }
check "memory" { sys.memory { min = v.mem } }
check "cpus" { sys.cpus { min = v.cpus } }
check "disk" { sys.disk { path = v.where, min = v.disk } }
check "port" { sys.port_free { port = v.port, host = "127.0.0.1" } }
EOF2
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpus=$(nproc)
[ "$cpus" = 1 ] && cpun="1 CPU" || cpun="$cpus CPUs"

run "$P" plan s.lua
expect "met: memory says how much there is" has "$OUT" "check memory .* ok .*  $mem of memory (need 1.0 MiB)$"
expect "met: cpus says how many" has "$OUT" "check cpus .* ok .*  $cpun (need 1)$"
expect "met: disk says how much is free where" has "$OUT" "check disk .* ok .*  [0-9.]* [KMGT]iB free at \. (need 1.0 KiB)$"
expect "met: port_free says what was tried" has "$OUT" "check port .* ok .*  port $port free on 127.0.0.1 (a bind to it succeeded)$"
df_free=$(df -B1 --output=avail . | tail -1)
shown=$(printf '%s\n' "$OUT" | sed -n 's/.*  \([0-9.]*\) GiB free at \. .*/\1/p')
expect "the free space shown is df's (to 0.2 GiB)" \
    eval '[ -n "$shown" ] && awk -v a="$df_free" -v s="$shown" "BEGIN { d = a / 1073741824 - s; exit !(d < 0.2 && d > -0.2) }"'

run "$P" plan s.lua --json
expect "--json: the measure is the check event's detail" has "$OUT" "\"name\":\"memory\",\"status\":\"ok\",\"ms\":[0-9]*,\"detail\":\"$mem of memory (need 1.0 MiB)\""

run "$P" plan s.lua -e mem=1000TiB -e cpus=99999 -e disk=900TB -e where=./not/yet
expect "not met: exit 1" test "$RC" = 1
expect "not met: memory, what there is and what is needed" \
    has "$ERR" "reason:   $mem of memory, need at least 1000.0 TiB (add memory, or lower the requirement)"
expect "not met: cpus" has "$ERR" "reason:   $cpun, need at least 99999$"
expect "not met: disk, measured at the nearest folder there is" \
    has "$ERR" "reason:   [0-9.]* GiB free at \. (for \./not/yet, not there yet), need at least 818.5 TiB (free some space)"

python3 -c 'import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(30)' "$port" &
srv=$!
cleanup_add "kill $srv 2>/dev/null"
i=0; while ! grep -q ":$(printf '%04X' "$port") 00000000:0000 0A" /proc/net/tcp && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
run "$P" plan s.lua
expect "not met: port_free says the port is in use there (as it did before)" has "$ERR" "reason:   port $port on 127.0.0.1 is in use"
kill "$srv" 2>/dev/null
