#!/bin/bash
# Early checks (run.lua: start_early): an http.expect's GET is sent when the
# run starts, and its step's check reads the reply; a custom step's
# prefetch hook is handed to its check as ctx.early.
#   - the GET goes before the first step's check (that check sees it at
#     the server), and a no-op or a plan asks once per check, not twice;
#   - a step before that changes anything drops the early reply: the check
#     asks again and sees what the change made (here the served file);
#   - a POST, and a step that runs on_change, are not sent early;
#   - a custom step's prefetch: its value is the check's ctx.early, closed
#     after; dropped (closed, no ctx.early) after a change;
#   - a server that is not there: the check says so as before.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
mkdir www
echo old > www/x
start_httpd --root "$SANDBOX/www"

cat > served.lua <<R
recipe { name = "served" }
step "write" { fs.file { path = "$SANDBOX/www/x", content = "new\n" } }
step "served" { http.expect { url = "$BASE/static/x", body_contains = "new" } }
R
httpd_reset
run "$P" served.lua
expect "a change before drops the early reply: the check asks again and sees the new file" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=1" && [ "$(httpd_count /static/x)" = 2 ]'
httpd_reset
run "$P" served.lua
expect "no-op: the early reply is the check's (one request)" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=2 changed=0" && [ "$(httpd_count /static/x)" = 1 ]'
httpd_reset
run "$P" plan served.lua
expect "plan: one request, the early one" eval '[ $RC -eq 0 ] && [ "$(httpd_count /static/x)" = 1 ]'
echo old > www/x
httpd_reset
run "$P" plan served.lua
expect "plan of a change: the check's answer is the early one (the file as it is)" \
    eval '[ $RC -eq 3 ] && has "$OUT" "does not contain \"new\"" && [ "$(httpd_count /static/x)" = 1 ]'

# a change in the same step, before the check: the early reply is dropped
# too (the check sees what the change made, and fails here)
echo good > www/x
cat > same.lua <<R
recipe { name = "same" }
step "deploy" {
  fs.file { path = "$SANDBOX/www/x", content = "broken\n" },
  http.expect { url = "$BASE/static/x", body_contains = "good" },
}
R
httpd_reset
run "$P" same.lua
# (3 requests: the early one, dropped; the check's; the apply's one try)
expect "a change earlier in the same step drops the early reply: the check sees the new file" \
    eval '[ $RC -ne 0 ] && has "$OUT$ERR" "does not contain \"good\"" && [ "$(httpd_count /static/x)" = 3 ]'

# a preflight check that fails: no request goes early
cat > refused.lua <<R
recipe { name = "refused" }
check "no" { check = function() return false, "refused" end }
step "get" { http.expect { url = "$BASE/json" } }
R
httpd_reset
run "$P" refused.lua
expect "a failed preflight check: nothing sent early" eval '[ $RC -ne 0 ] && [ "$(httpd_count /json)" = 0 ]'

# the order: the first step's check waits (2 s at most) to see the GET of
# the step after it at the server
cat > order.lua <<R
recipe { name = "order" }
local function seen(path, wait)
  local t = os.time() + wait
  repeat
    local res = http.request("$BASE/count")
    local n = res and res.json.paths[path] or 0
    if n > 0 or os.time() > t then return n end
    os.execute("sleep 0.05")
  until false
end
step "first" { check = function()
  local f = io.open("$SANDBOX/seen", "w")
  f:write(seen("/json", 2), " ", seen("/echo", 0), " ", seen("/auth", 0)); f:close()
  return true
end }
step "get" { http.expect { url = "$BASE/json" } }
step "post" { http.expect { url = "$BASE/echo", method = "POST" } }
step "auth" { http.expect { url = "$BASE/auth", user = "user", password = secret "password" } }
R
httpd_reset
run "$P" order.lua
expect "the GET is sent before the first step's check; a POST, and a GET with credentials, are not sent early" \
    eval '[ $RC -eq 0 ] && [ "$(cat seen)" = "1 0 0" ] && [ "$(httpd_count /json)" = 1 ] && [ "$(httpd_count /echo)" = 1 ] && [ "$(httpd_count /auth)" = 1 ]'

# at most 32 wait at once (each holds a descriptor until its check)
cat > many.lua <<R
recipe { name = "many" }
step "first" { check = function()
  local pid = io.open("/proc/self/stat"):read("a"):match("^(%d+)")
  local p = io.popen("ls -l /proc/" .. pid .. "/fd | grep -c socket:")
  local f = io.open("$SANDBOX/sockets", "w"); f:write(p:read("a")); f:close(); p:close()
  return true
end }
for i = 1, 40 do step("get " .. i) { http.expect { url = "$BASE/json?i=" .. i } } end
R
httpd_reset
run "$P" many.lua
expect "40 early checks: 32 sent at the start, every check passes, one request each" \
    eval '[ $RC -eq 0 ] && [ "$(cat sockets)" = 32 ] && [ "$(httpd_count /json)" = 40 ]'

# a custom step's prefetch
cat > custom.lua <<R
recipe { name = "custom" }
local v = vars { content = "a" }
local function note(file, text) local f = io.open("$SANDBOX/" .. file, "a"); f:write(text, "\n"); f:close() end
step "file" { fs.file { path = "$SANDBOX/f", content = v.content } }
step "custom" {
  prefetch = function() return { value = 42, close = function() note("closed", "x") end } end,
  check = function(ctx) note("got", tostring(ctx.early and ctx.early.value)); return true end,
}
step "watcher" { on_change = "file",
  prefetch = function() note("watcher", "prefetched") end,
  check = function() return true end, apply = function() return true end }
R
run "$P" custom.lua
expect "custom prefetch after a change: dropped (closed), the check has no ctx.early" \
    eval '[ $RC -eq 0 ] && [ "$(cat got)" = nil ] && [ "$(cat closed)" = x ]'
rm -f got closed
run "$P" custom.lua
expect "custom prefetch on a no-op: its value is the check's ctx.early, closed after" \
    eval '[ $RC -eq 0 ] && [ "$(cat got)" = 42 ] && [ "$(cat closed)" = x ]'
expect "a step that runs on_change is not prefetched" eval '[ ! -e watcher ]'

# a server that is not there: the check says so, as before
kill "$HTTPD_PID"; wait "$HTTPD_PID" 2> /dev/null
run "$P" plan served.lua
expect "no server: the check's own words" eval '[ $RC -ne 0 ] && has "$OUT$ERR" "Couldn.t connect to server"'
