-- tests/lua/test_http.lua: provision.http against tests/servers/httpd.py on
-- loopback, which this file starts and stops (by its pid).
local T = dofile "tests/lua/harness.lua"
local http = require "provision.http"
local C = require "provision._http"
local FS = require "provision._fs"
local json = require "provision.json"
local core = require "provision._core"
local secret = require "provision.secret"

-- ---- the server
local dir = T.tmpdir()
local start_server = T.httpd
local pids = {}
local pid, port = start_server()
pids[#pids + 1] = pid
local base = "http://127.0.0.1:" .. port

local function get(path) return assert(http.request(base .. path)) end
local function count(path)
  local c = get("/count").json
  if path then return c.paths[path] or 0 end
  return c.total
end
local function reset() get("/count/reset") end
local function sha(size, seed) return get(("/sha256?size=%d&seed=%s"):format(size, seed)).body end
-- XXH3-128 of a file by xxhsum (Debian's xxhash): a reference that is not ours
local function xxhsum(path)
  local p = assert(io.popen(("xxhsum -H2 '%s' 2>/dev/null"):format(path)))
  local out = p:read("a"); p:close()
  return assert(out:match("^(%x+)  "), "xxhsum gave: " .. out)
end

local function new_ctx()
  local ctx = { state = {}, logs = {}, progressed = {} }
  function ctx:created(e) self.state.created = self.state.created or {}; table.insert(self.state.created, e) end
  function ctx:log(l) self.logs[#self.logs + 1] = l end
  function ctx:detail(d) self.detail_text = d end
  function ctx:progress(done, total) self.progressed[#self.progressed + 1] = { done, total } end
  function ctx:spin() end
  function ctx.interrupted() return core.interrupted() end
  return ctx
end

local function exists(p) local f = io.open(p); if f then f:close() return true end return false end
-- no DEST.provision-part.* beside dest
local function no_temp(dest)
  local folder, name = dest:match("^(.*)/([^/]*)$")
  local left = {}
  for _, n in ipairs(FS.listdir(folder) or {}) do
    if n:sub(1, #name + 15) == name .. ".provision-part" then left[#left + 1] = n end
  end
  T.eq(left, {}, "no part file left beside " .. dest)
end

T.test("file: downloads, records state, leaves no temp file", function()
  reset()
  local dest = dir .. "/a.bin"
  local r = http.file { url = base .. "/file/a?size=300000", dest = dest }
  local ctx = new_ctx()
  local ok, why = r:check(ctx)
  T.eq(ok, false); T.match(why, "download")
  local res = assert(r:apply(ctx))
  T.eq(res.bytes, 300000)
  T.eq(FS.sha256(dest), sha(300000, "a"))
  -- no checksum pinned: the state knows the file by its XXH3-128
  T.eq(ctx.state.xxh128, xxhsum(dest))
  T.eq(ctx.state.sha256, nil)
  T.eq(res.xxh128, ctx.state.xxh128)
  T.eq(ctx.state.etag, '"a-a-300000-1"')
  T.ok(ctx.state.last_modified)
  T.eq(ctx.state.created[1].path, dest)
  T.match(ctx.detail_text, "KiB in")
  T.eq(FS.stat(dest).mode, 420)
  no_temp(dest)
  -- now check passes (a conditional GET answered 304)
  reset()
  T.eq(r:check(ctx), true)
  T.eq(count("/file/a"), 1)
end)

T.test("file: a matching checksum makes no request at all", function()
  local dest = dir .. "/b.bin"
  local want = sha(5000, "b")
  local r = http.file { url = base .. "/file/b?size=5000", dest = dest, sha256 = want, mode = "0640" }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  T.eq(FS.stat(dest).mode, 416)
  reset()
  T.eq(r:check(new_ctx()), true)
  T.eq(r:check(ctx), true)
  T.eq(count(), 0)
end)

T.test("file: wrong checksum fails, names both digests, leaves dest as it was", function()
  local dest = dir .. "/c.bin"
  local f = assert(io.open(dest, "w")); f:write("old content"); f:close()
  local want = ("0"):rep(64)
  local r = http.file { url = base .. "/file/c?size=2000", dest = dest, sha256 = want }
  local ok, err = r:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "checksum mismatch")
  T.match(err, want)
  T.match(err, sha(2000, "c"))
  T.eq(core.read_file(dest), "old content")
  no_temp(dest)
end)

T.test("file: ETag: 304 is ok, a new version downloads again", function()
  local dest = dir .. "/d.bin"
  local r = http.file { url = base .. "/file/d?size=1000&lastmod=0", dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  T.eq(ctx.state.last_modified, nil)
  reset()
  local res = assert(r:apply(ctx))   -- conditional: If-None-Match
  T.eq(res.status, 304)
  T.eq(res.bytes, 0)
  T.match(ctx.detail_text, "not modified")
  T.eq(count(), 1)
  no_temp(dest)
  -- the same URL, now a new version upstream (the state still has the old ETag)
  local r2 = http.file { url = base .. "/file/d?size=1000&lastmod=0&version=2", dest = dest }
  ctx.state.url = http.url_key(r2.url)
  local ok, why = r2:check(ctx)
  T.eq(ok, false); T.match(why, "changed upstream")
  res = assert(r2:apply(ctx))
  T.eq(res.status, 200)
  T.eq(ctx.state.etag, '"d-d-1000-2"')
end)

T.test("file: Last-Modified only: If-Modified-Since and 304", function()
  local dest = dir .. "/e.bin"
  local r = http.file { url = base .. "/file/e?size=1000&etag=0", dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  T.eq(ctx.state.etag, nil)
  T.ok(ctx.state.last_modified)
  T.eq(r:check(ctx), true)
  local res = assert(r:apply(ctx))
  T.eq(res.status, 304)
end)

T.test("file: no checksum, a new mode: the 304 apply sets it, no download", function()
  local dest = dir .. "/mode304.bin"
  local ctx = new_ctx()
  assert(http.file { url = base .. "/file/m?size=1000", dest = dest }:apply(ctx))
  T.eq(FS.stat(dest).mode, 420)
  local r = http.file { url = base .. "/file/m?size=1000", dest = dest, mode = "0600" }
  local ok, why = r:check(ctx)
  T.eq(ok, false); T.match(why, "mode 0644, want 0600")
  reset()
  local res = assert(r:apply(ctx))
  T.eq(res.status, 304)
  T.eq(res.bytes, 0)
  T.match(ctx.detail_text, "mode set to 0600")
  T.eq(FS.stat(dest).mode, 384)
  T.eq(count(), 1)
  -- converged: check is true again (the stamp changed with the chmod)
  T.eq(r:check(ctx), true)
  no_temp(dest)
end)

T.test("file: a local change is noticed", function()
  local dest = dir .. "/e.bin"
  local r = http.file { url = base .. "/file/e?size=1000&etag=0", dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  local f = assert(io.open(dest, "a")); f:write("x"); f:close()
  local ok, why = r:check(ctx)
  T.eq(ok, false); T.match(why, "changed since")
  assert(r:apply(ctx))
  -- the same size, the old mtime put back: the stamp (ctime) still tells
  os.execute(("cp -p '%s' '%s.ref' && printf X | dd of='%s' bs=1 seek=10 conv=notrunc 2>/dev/null && touch -r '%s.ref' '%s'")
    :format(dest, dest, dest, dest, dest))
  ok, why = r:check(ctx)
  T.eq(ok, false); T.match(why, "changed since")
  assert(r:apply(ctx))
  T.eq(FS.sha256(dest), sha(1000, "e"))
end)

T.test("file: connection dropped mid-body resumes with Range", function()
  reset()
  local dest = dir .. "/f.bin"
  local r = http.file { url = base .. "/drop/f?size=400000&after=150000", dest = dest, sha256 = sha(400000, "f") }
  local ctx = new_ctx()
  local res = assert(r:apply(ctx))
  T.eq(res.resumed, true)
  -- only the rest came in the second request: from the break, or from the
  -- 4 KiB boundary below it where the file is written with O_DIRECT
  T.ok(res.bytes == 250000 or res.bytes == 400000 - 150000 // 4096 * 4096, "bytes " .. res.bytes)
  T.eq(FS.sha256(dest), sha(400000, "f"))
  T.eq(count("/drop/f"), 2)
  T.match(table.concat(ctx.logs, "\n"), "resuming")
  no_temp(dest)
end)

T.test("file: no checksum, connection dropped mid-body: resumed, the digest is of the whole file", function()
  local dest = dir .. "/q.bin"
  local ctx = new_ctx()
  local res = assert(http.file { url = base .. "/drop/q?size=400000&after=150000", dest = dest }:apply(ctx))
  T.eq(res.resumed, true)
  T.eq(FS.sha256(dest), sha(400000, "q"))
  T.eq(ctx.state.xxh128, xxhsum(dest))
  T.eq(ctx.state.created[1].xxh128, xxhsum(dest))
end)

T.test("file: a pinned checksum is recorded as SHA-256, with no XXH3-128", function()
  local dest = dir .. "/p1.bin"
  local ctx = new_ctx()
  local res = assert(http.file { url = base .. "/file/p1?size=5000", dest = dest, sha256 = sha(5000, "p1") }:apply(ctx))
  T.eq(res.sha256, sha(5000, "p1")); T.eq(res.xxh128, nil)
  T.eq(ctx.state.sha256, sha(5000, "p1")); T.eq(ctx.state.xxh128, nil)
  T.eq(ctx.state.created[1].sha256, sha(5000, "p1")); T.eq(ctx.state.created[1].xxh128, nil)
  -- the checksum dropped from the recipe: the file downloaded anew is
  -- known by XXH3-128 alone (a stale SHA-256 would be a lie after a change)
  local r = http.file { url = base .. "/file/p1?size=6000", dest = dest }
  assert(r:apply(ctx))
  T.eq(ctx.state.sha256, nil); T.eq(ctx.state.xxh128, xxhsum(dest))
  T.eq(ctx.state.created[1].sha256, nil); T.eq(ctx.state.created[1].xxh128, xxhsum(dest))
  T.eq(r:check(ctx), true)
  local tctx = new_ctx(); tctx.state = ctx.state
  T.ok(r:revert(tctx)); T.ok(not exists(dest))
end)

T.test("file: a state from before XXH3-128 (SHA-256, no checksum pinned) is still known", function()
  local dest = dir .. "/p2.bin"
  local r = http.file { url = base .. "/file/p2?size=3000", dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  -- what an older provision saved: the SHA-256 of the file, created-entry too
  ctx.state.xxh128, ctx.state.sha256 = nil, sha(3000, "p2")
  ctx.state.created[1].xxh128, ctx.state.created[1].sha256 = nil, sha(3000, "p2")
  ctx.state.stamp = nil   -- read it, do not trust the stamp
  reset()
  T.eq(r:check(ctx), true)          -- a conditional GET, answered 304
  T.eq(count("/file/p2"), 1)
  local f = assert(io.open(dest, "a")); f:write("x"); f:close()
  local ok, why = r:check(ctx)
  T.eq(ok, false); T.match(why, "changed since")
  -- and its teardown still compares SHA-256: a changed file is left
  local tctx = new_ctx(); tctx.state = ctx.state
  T.eq(r:revert(tctx), false); T.ok(exists(dest))
  assert(r:apply(ctx))
  T.eq(ctx.state.sha256, nil); T.eq(ctx.state.xxh128, xxhsum(dest))
  tctx = new_ctx(); tctx.state = ctx.state
  T.ok(r:revert(tctx)); T.ok(not exists(dest))
end)

T.test("file: a file that matched its checksum before the first apply is recorded with its digest", function()
  local dest = dir .. "/p3.bin"
  local body = get("/file/p3?size=2000").body
  local f = assert(io.open(dest, "wb")); f:write(body); f:close()
  local r = http.file { url = base .. "/file/p3?size=2000", dest = dest, sha256 = sha(2000, "p3"), mode = "0600" }
  local ctx = new_ctx()
  T.eq(r:check(ctx), false)   -- its mode
  reset()
  assert(r:apply(ctx))
  T.eq(count(), 0)
  -- with the stamp, the next check trusts it without reading it again
  T.eq(ctx.state.sha256, sha(2000, "p3"))
  T.eq(r:check(ctx), true)
  T.eq(ctx.state.created, nil)   -- not ours: teardown keeps it
end)

T.test("file: no checksum, SIGINT stops the check's reading of a large dest at once", function()
  -- a sparse 16 GiB dest whose XXH3-128 the check must read (a stamp it
  -- does not know): the reading stops at the signal, as SHA-256's does
  local big, script = dir .. "/sparse.bin", dir .. "/sigint_check.lua"
  assert(os.execute(("truncate -s 16G '%s'"):format(big)))
  local url = base .. "/file/sp?size=10"
  core.write_atomic(script, ([[
local http = require "provision.http"
local ctx = { state = { url = http.url_key(%q), xxh128 = ("0"):rep(32) } }
print(http.file { url = %q, dest = %q }:check(ctx))
]]):format(url, url, big), 420)
  local p = assert(io.popen(([[
%s --script '%s' > /dev/null 2>&1 & c=$!
sleep 0.5; t0=$(date +%%s%%N); kill -INT $c; wait $c; echo "$? $(( ($(date +%%s%%N) - t0) / 1000000 ))"
]]):format(os.getenv("PROVISION") or "./provision", script)))
  local out = p:read("a"); p:close()
  os.remove(big)
  local rc, ms = out:match("^(%d+) (%d+)")
  T.ok(rc, "no result: " .. out)
  T.ok(tonumber(ms) < 2000, ("the check went on reading for %s ms after SIGINT"):format(ms))
end)

T.test("file: pinned after an unpinned download, only the mode wrong: the digests kept are of the file there", function()
  local dest = dir .. "/p4.bin"
  local url = base .. "/file/p4?size=3000"
  local ctx = new_ctx()
  assert(http.file { url = url, dest = dest }:apply(ctx))
  -- the same file pinned, a new mode: the XXH3-128 still describes it
  local pinned = http.file { url = url, dest = dest, sha256 = sha(3000, "p4"), mode = "0600" }
  assert(pinned:apply(ctx))
  T.eq(ctx.state.sha256, sha(3000, "p4")); T.eq(ctx.state.xxh128, xxhsum(dest))
  -- another file put there, pinned, a new mode again: the XXH3-128 of the
  -- download is not of this file, and must not come with its stamp
  local f = assert(io.open(dest, "wb")); f:write(get("/file/p5?size=3000").body); f:close()
  pinned = http.file { url = url, dest = dest, sha256 = sha(3000, "p5"), mode = "0640" }
  assert(pinned:apply(ctx))
  T.eq(ctx.state.sha256, sha(3000, "p5"))
  T.ok(ctx.state.xxh128 == nil or ctx.state.xxh128 == xxhsum(dest), "a stale xxh128 " .. tostring(ctx.state.xxh128))
  -- unpinned again: the same answer whether the stamp is trusted or not
  local r = http.file { url = url, dest = dest, mode = "0640" }
  local before = { r:check(ctx) }
  os.execute(("touch -d '2001-01-01' '%s'"):format(dest))
  T.eq({ r:check(ctx) }, before)
end)

T.test("download: the digest option, and a bad one", function()
  local h = C.new()
  local p = dir .. "/d.bin"
  local res = assert(h:download { url = base .. "/file/d?size=70000", dest = p, part = "d.part1", create = true,
                                  digest = "xxh128", commit = tonumber("644", 8) })
  T.eq(res.committed, true)
  T.eq(res.xxh128, xxhsum(p)); T.eq(res.sha256, nil)
  res = assert(h:download { url = base .. "/file/d?size=70000", dest = p, part = "d.part2", create = true,
                            commit = tonumber("644", 8), expect = ("0"):rep(64) })
  T.eq(res.sha256, sha(70000, "d")); T.eq(res.xxh128, nil)
  T.eq(res.committed, false, "not the digest expected: not moved into place")
  T.ok(exists(dir .. "/d.part2")); FS.remove(dir .. "/d.part2")
  T.raises(function() h:download { url = base .. "/file/d", dest = p, part = "x", digest = "md5" } end,
    "option 'digest' must be \"sha256\" or \"xxh128\", not \"md5\"")
  T.raises(function() h:download { url = base .. "/file/d", dest = p, part = "x", digest = 256 } end,
    "option 'digest' must be a string, not a number")
  T.raises(function() h:download { url = base .. "/file/d", dest = p, part = "../x" } end,
    "option 'part' must be a file name")
end)

T.test("file: redirects are followed, a loop is not", function()
  local dest = dir .. "/g.bin"
  assert(http.file { url = base .. "/redirect?n=3&to=/file/g%3Fsize%3D777", dest = dest }:apply(new_ctx()))
  T.eq(FS.sha256(dest), sha(777, "g"))
  local ok, err = http.file { url = base .. "/redirect-loop", dest = dir .. "/loop", retries = 0 }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "redirect")
  no_temp(dir .. "/loop")
end)

T.test("file: basic auth, and a wrong password never shows", function()
  local dest = dir .. "/h.bin"
  local url = base .. "/auth/file/h?size=999&user=alice&password=s3cr3t-pw"
  assert(http.file { url = url, dest = dest, user = "alice", password = secret.new("s3cr3t-pw") }:apply(new_ctx()))
  T.eq(FS.sha256(dest), sha(999, "h"))
  local bad = secret.new("wr0ng-pw")
  local ok, err = http.file { url = base .. "/auth/file/h2?size=10", dest = dir .. "/h2", user = "x", password = bad }:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "401")
  T.match(err, "authentication required")
  T.ok(not err:find("wr0ng", 1, true), "the password is not in the message")
  T.ok(not exists(dir .. "/h2"))
end)

T.test("basic auth: the Authorization header (base64 of user:password) is masked too", function()
  local pw = secret.new("Sup3rS3cret")
  local b64 = "YWxpY2U6U3VwM3JTM2NyZXQ="   -- base64("alice:Sup3rS3cret")
  -- an error body that echoes the request's headers
  local ok, err = http.file { url = base .. "/echo?status=403", dest = dir .. "/echoed", user = "alice",
    password = pw }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "403 Forbidden")
  T.ok(not err:find(b64, 1, true), err)
  T.match(err, "Basic %*%*%*%*%*%*%*%*")
  ok, err = http.expect { url = base .. "/echo?status=500", user = "bob", password = secret.new("hunter3-pw") }
    :check(new_ctx())
  T.eq(ok, false)
  T.ok(not err:find("Ym9iOmh1bnRlcjMtcHc=", 1, true), err)   -- base64("bob:hunter3-pw")
  T.match(err, "Basic %*%*%*%*%*%*%*%*")
  -- http.request registers it too (its errors and whatever the caller prints are masked)
  local res = assert(http.request { url = base .. "/echo", auth = { "carol", secret.new("pa55-carol") } })
  T.eq(res.json.headers.authorization, "Basic Y2Fyb2w6cGE1NS1jYXJvbA==")
  T.eq(secret.mask(res.body):find("Y2Fyb2w6cGE1NS1jYXJvbA==", 1, true), nil)
  -- plain (non-secret) credentials are not hidden: nothing secret in them
  res = assert(http.request { url = base .. "/echo", user = "dave", password = "plain" })
  T.ok(secret.mask(res.body):find("ZGF2ZTpwbGFpbg==", 1, true), "plain credentials are left alone")
end)

T.test("file: 4xx fails at once with the status and the start of the body", function()
  reset()
  local ok, err = http.file { url = base .. "/status/404?body=nothing+here", dest = dir .. "/i" }:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "404 Not Found: nothing here")
  T.eq(count(), 1)
  no_temp(dir .. "/i")
end)

T.test("file: 500 then 200 is retried with backoff", function()
  reset()
  local dest = dir .. "/j.bin"
  local t0 = core.now()
  local ctx = new_ctx()
  assert(http.file { url = base .. "/flaky/j?fail=2&size=3000", dest = dest }:apply(ctx))
  T.ok(core.now() - t0 >= 1.4, "backoff 0.5s + 1s")
  T.eq(count("/flaky/j"), 3)
  T.eq(FS.sha256(dest), sha(3000, "j"))
  T.match(ctx.logs[1], "500 Internal Server Error")
  -- and retries run out
  local ok, err = http.file { url = base .. "/flaky/j2?fail=5&status=503", dest = dest .. "2", retries = 1 }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "503"); T.match(err, "gave up after 2 attempts")
end)

T.test("file: a wrong Content-Length is a failure, never a file", function()
  local dest = dir .. "/k.bin"
  local ok, err = http.file { url = base .. "/badlength/k?size=5000&claim=9000", dest = dest, retries = 1 }:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "gave up")
  T.ok(not exists(dest))
  no_temp(dest)
end)

T.test("file: a stalled server times out", function()
  local t0 = core.now()
  local ok, err = http.file { url = base .. "/slow/l?delay=5", dest = dir .. "/l", timeout = "1s", retries = 0 }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "[Tt]ime")
  T.ok(core.now() - t0 < 4, "gave up within the timeout")
  no_temp(dir .. "/l")
end)

T.test("file: progress is reported with the total", function()
  local ctx = new_ctx()
  assert(http.file { url = base .. "/slow/m?size=100000&rate=200000", dest = dir .. "/m" }:apply(ctx))
  T.ok(#ctx.progressed >= 2, "progress called")
  T.ok(#ctx.progressed <= 12, "at most ~10 a second")
  T.eq(ctx.progressed[#ctx.progressed][2], 100000)
end)

T.test("file: a partial file from a killed run is resumed", function()
  local dest = dir .. "/n.bin"
  local url = base .. "/file/n?size=100000"
  -- what a killed run leaves: the first bytes, and the part file's record
  -- in the state (saved before the body came)
  local full = get("/file/n?size=100000").body
  local part = "n.bin.provision-part.k1ll3d"
  local f = assert(io.open(dir .. "/" .. part, "wb")); f:write(full:sub(1, 60000)); f:close()
  local ctx = new_ctx()
  ctx.state.part = { name = part, dest = dest, url = http.url_key(url), etag = '"n-n-100000-1"',
                     id = FS.lstat(dir .. "/" .. part).id }
  local res = assert(http.file { url = url, dest = dest, sha256 = sha(100000, "n") }:apply(ctx))
  T.ok(res.bytes == 40000 or res.bytes == 100000 - 60000 // 4096 * 4096, "bytes " .. res.bytes)
  T.eq(res.resumed, true)
  T.eq(ctx.state.part, nil)
  no_temp(dest)
  -- a validator that no longer matches: If-Range makes it whole again
  f = assert(io.open(dir .. "/" .. part, "wb")); f:write(("x"):rep(60000)); f:close()
  ctx = new_ctx()
  ctx.state.part = { name = part, dest = dest .. "2", url = http.url_key(url), etag = '"stale"',
                     id = FS.lstat(dir .. "/" .. part).id }
  res = assert(http.file { url = url, dest = dest .. "2", sha256 = sha(100000, "n") }:apply(ctx))
  T.eq(res.bytes, 100000)
  T.ok(not exists(dir .. "/" .. part), "the part file was resumed into place")
end)

T.test("file: revert removes what apply created", function()
  local dest = dir .. "/o.bin"
  local r = http.file { url = base .. "/file/o?size=10", dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  assert(r:revert(ctx))
  T.ok(not exists(dest))
end)

T.test("file: downloaded anew (another url, a change upstream), it is still removed at revert", function()
  local dest = dir .. "/o4.bin"
  local ctx = new_ctx()
  assert(http.file { url = base .. "/file/o4?size=10", dest = dest }:apply(ctx))
  -- the url changes: another body lands at dest, written by this same step
  local r = http.file { url = base .. "/file/o4?size=20", dest = dest }
  T.eq(r:check(ctx), false)
  assert(r:apply(ctx))
  T.eq(r:check(ctx), true)
  T.eq(#ctx.state.created, 1)
  T.eq(FS.sha256(dest), sha(20, "o4"))
  T.eq(ctx.state.created[1].xxh128, xxhsum(dest))
  local tctx = new_ctx(); tctx.state = ctx.state
  T.ok(r:revert(tctx))
  T.ok(not exists(dest), "removed, not 'left: changed since it was written'")
  -- with a checksum too: the new sha256 is the one teardown compares
  local c = new_ctx()
  assert(http.file { url = base .. "/file/o5?size=10", dest = dest, sha256 = sha(10, "o5") }:apply(c))
  r = http.file { url = base .. "/file/o5?size=30", dest = dest, sha256 = sha(30, "o5") }
  assert(r:apply(c))
  tctx = new_ctx(); tctx.state = c.state
  T.ok(r:revert(tctx))
  T.ok(not exists(dest))
end)

T.test("file: revert keeps a file that existed before, and says so rather than \"reverted\"", function()
  local dest = dir .. "/o2.bin"
  local f = assert(io.open(dest, "wb")); f:write("there before\n"); f:close()
  local r = http.file { url = base .. "/file/o2?size=10", dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  local tctx = new_ctx(); tctx.state = ctx.state   -- teardown: the saved state, a fresh detail
  T.eq(r:revert(tctx), false, "false: nothing undone")
  T.ok(exists(dest), "kept")
  T.eq(tctx.detail_text, "nothing recorded: kept " .. dest .. ", which existed before the first apply")
  -- one it created and that changed since: left, as fs.file says
  local dest2 = dir .. "/o3.bin"
  local r2 = http.file { url = base .. "/file/o3?size=10", dest = dest2 }
  local ctx2 = new_ctx()
  assert(r2:apply(ctx2))
  f = assert(io.open(dest2, "ab")); f:write("edited"); f:close()
  local tctx2 = new_ctx(); tctx2.state = ctx2.state
  T.eq(r2:revert(tctx2), false, "false: nothing undone")
  T.ok(exists(dest2)); T.eq(tctx2.detail_text, "left " .. dest2 .. ": changed since it was written")
end)

T.test("file: after dest changed to a file that was there before, revert removes the first dest it created", function()
  local first, second = dir .. "/o6.bin", dir .. "/o7.bin"
  local f = assert(io.open(second, "wb")); f:write("there before\n"); f:close()
  local ctx = new_ctx()
  assert(http.file { url = base .. "/file/o6?size=10", dest = first }:apply(ctx))
  local r = http.file { url = base .. "/file/o6?size=10", dest = second }
  assert(r:apply(ctx))
  T.eq(r:check(ctx), true)
  local tctx = new_ctx(); tctx.state = ctx.state
  T.ok(r:revert(tctx))
  T.ok(not exists(first), "the file it created at the first dest is removed")
  T.ok(exists(second), "the one that was there before is kept")
end)

T.test("file: bad options raise", function()
  T.raises(function() http.file { url = "ftp://x", dest = "y" } end, "http://")
  T.raises(function() http.file { url = base, dest = "y", sha256 = "abc" } end, "64 hex")
  T.raises(function() http.file { url = base, dest = "y", bogus = 1 } end, "unknown option")
end)

T.test("TLS: verified against ca_file, refused without", function()
  local key, crt = dir .. "/key.pem", dir .. "/crt.pem"
  local rc = os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 " ..
    "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null"):format(key, crt))
  T.ok(rc, "openssl made a certificate")
  local tpid, tport = start_server("--tls " .. crt .. " " .. key)
  pids[#pids + 1] = tpid
  local url = ("https://127.0.0.1:%d/file/tls?size=500"):format(tport)
  local ok, err = http.file { url = url, dest = dir .. "/tls", retries = 0 }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "certificate")
  assert(http.file { url = url, dest = dir .. "/tls", ca_file = crt }:apply(new_ctx()))
  T.eq(FS.sha256(dir .. "/tls"), sha(500, "tls"))
  local res = assert(http.request { url = ("https://127.0.0.1:%d/json"):format(tport), ca_file = crt })
  T.eq(res.json.ok, true)
end)

T.test("request: GET with JSON, POST a table, HEAD, headers", function()
  local res = assert(http.request { url = base .. "/json?x=1" })
  T.eq(res.status, 200)
  T.eq(res.json.query.x, "1")
  T.eq(res.json.items[3].tags[2], "b")
  res = assert(http.request { url = base .. "/echo", method = "put", body = { a = 1 }, headers = { ["X-Token"] = secret.new("tok") } })
  T.eq(res.json.method, "PUT")
  T.eq(json.decode(res.json.body), { a = 1 })
  T.eq(res.json.headers["content-type"], "application/json")
  T.eq(res.json.headers["x-token"], "tok")
  res = assert(http.request { url = base .. "/file/x?size=10", method = "HEAD" })
  T.eq(res.status, 200); T.eq(res.body, ""); T.eq(res.headers["content-length"], "10")
  res = assert(http.request { url = base .. "/auth", auth = { "user", "password" } })
  T.eq(res.json.user, "user")
  local ok, err = http.request { url = "http://127.0.0.1:1/", timeout = 2 }
  T.eq(ok, nil); T.match(err, "GET http://127.0.0.1:1/")
end)

T.test("request: an unknown option raises, naming it and the valid ones", function()
  reset()
  T.raises(function() http.request { url = base .. "/echo", header = { ["X-A"] = "1" } } end,
    "http%.request: unknown option 'header' %(options: auth, body, ca_file, .*headers, .*method, .*url, user%)")
  T.raises(function() http.request { url = base .. "/echo", methd = "POST" } end, "http%.request: unknown option 'methd'")
  T.eq(count("/echo"), 0, "no request was made")
  local res = assert(http.request { url = base .. "/echo", method = "POST", headers = { ["X-A"] = "1" }, body = "b",
    timeout = "5s", max_redirects = 2, max_body = 1000, insecure = false })
  T.eq(res.json.method, "POST"); T.eq(res.json.headers["x-a"], "1")
end)

T.test("request: a timeout", function()
  local t0 = core.now()
  local ok, err, kind = http.request { url = base .. "/delay?seconds=3", timeout = "0.5s" }
  T.eq(ok, nil); T.eq(kind, "timeout"); T.match(err, "[Tt]ime")
  T.ok(core.now() - t0 < 2)
end)

T.test("expect: status, body, JSON subset", function()
  T.eq(http.expect { url = base .. "/json" }:check(new_ctx()), true)
  T.eq(http.expect { url = base .. "/json", json = { ok = true, nested = { a = { b = "c" } }, items = { 2, { id = 3 } } } }:check(new_ctx()), true)
  local ok, why = http.expect { url = base .. "/json", json = { nested = { a = { b = "d" } } } }:check(new_ctx())
  T.eq(ok, false); T.match(why, "%$%.nested%.a%.b is \"c\", want \"d\"")
  ok, why = http.expect { url = base .. "/json", json = { items = { 7 } } }:check(new_ctx())
  T.eq(ok, false); T.match(why, "no item like 7")
  T.eq(http.expect { url = base .. "/status/201?body=made", status = { 200, 201 }, body_contains = "made" }:check(new_ctx()), true)
  ok, why = http.expect { url = base .. "/status/200?body=hello", body_contains = "bye" }:check(new_ctx())
  T.eq(ok, false); T.match(why, "does not contain")
  ok, why = http.expect { url = base .. "/status/500?body=line1%0Aline2%0Aline3" }:check(new_ctx())
  T.eq(ok, false); T.match(why, "500 Internal Server Error, want 200: line1 | line2 | line3")
  T.eq(http.expect { url = base .. "/auth?user=u&password=pw-expect-0", user = "u", password = secret.new("pw-expect-0"), json = { user = "u" } }:check(new_ctx()), true)
end)

T.test("expect: a failure names the method it used", function()
  local ok, why = http.expect { url = base .. "/status/404?body=gone", method = "DELETE" }:check({})
  T.eq(ok, false)
  T.match(why, "^DELETE http://127%.0%.0%.1:%d+/status/404%?body=gone: status 404")
end)

T.test("expect: within keeps trying; failure names the last status and body", function()
  reset()
  local r = http.expect { url = base .. "/until/w?after=2", within = "10s", interval = "0.2s", body_contains = "ready" }
  local ctx = new_ctx()
  T.eq((r:check(new_ctx())), false)
  T.eq(r:apply(ctx), true)
  T.eq(count("/until/w"), 3)
  T.match(ctx.detail_text, "2 tries")
  local t0 = core.now()
  local pw = secret.new("hunter2-pw")
  local ok, err = http.expect { url = base .. "/until/z?after=100", within = "1s", interval = "0.2s",
    user = "u", password = pw }:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "503 Service Unavailable")
  T.match(err, "not yet")
  T.match(err, "still failing after %d+ tries in [%d.]+m?s; another try 200ms later would be past within = 1s")
  T.ok(core.now() - t0 < 3)
  T.ok(not err:find("hunter2", 1, true))
  -- a body echoing a secret is masked
  ok, err = http.expect { url = base .. "/status/500?body=token+hunter2-pw" }:check(new_ctx())
  T.ok(not err:find("hunter2", 1, true), err)
  T.match(err, "%*%*%*%*")
end)

T.test("expect: a failure says how long it really waited and how many tries", function()
  -- a 401 answers at once; with within = 1s and the default 2s interval
  -- there is no time for a second try: the message must not claim a wait
  local t0 = core.now()
  local ok, err = http.expect { url = base .. "/status/401", within = "1s" }:apply(new_ctx())
  local took = core.now() - t0
  T.eq(ok, nil)
  T.ok(took < 0.5, "gave up at once")
  T.match(err, "401 Unauthorized")
  T.ok(not err:find("after 1s", 1, true), err)
  T.ok(not err:find("1 tries", 1, true), err)
  T.match(err, "%(still failing after 1 try in %d+ms; another try 2s later would be past within = 1s%)$")
end)

T.test("expect: connection refused is a failure, not an error", function()
  local ok, err = http.expect { url = "http://127.0.0.1:1/x", timeout = "2s" }:check(new_ctx())
  T.eq(ok, false); T.match(err, "127.0.0.1:1")
end)

-- ---- redirects: what each origin sees, https to http, the count, methods

-- a second plain server (another port: another origin) and a TLS one, each
-- started when a test first needs it
local servers = {}
local function other_base()
  if not servers.other then
    local opid, oport = start_server()
    pids[#pids + 1] = opid
    servers.other = "http://127.0.0.1:" .. oport
  end
  return servers.other
end
local function tls_base()
  if not servers.tls then
    local key, crt = dir .. "/redir-key.pem", dir .. "/redir-crt.pem"
    assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 " ..
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null"):format(key, crt)))
    local tpid, tport = start_server("--tls " .. crt .. " " .. key)
    pids[#pids + 1] = tpid
    servers.tls, servers.crt = ("https://127.0.0.1:%d"):format(tport), crt
  end
  return servers.tls, servers.crt
end
local function count_at(b, path)
  local c = assert(http.request { url = b .. "/count", ca_file = servers.crt }).json
  return c.paths[path] or 0
end
local function reset_at(b) assert(http.request { url = b .. "/count/reset", ca_file = servers.crt }) end
local function enc(s) return (s:gsub("[^%w._~/-]", function(c) return ("%%%02X"):format(c:byte()) end)) end
-- /redirect on b, to `to` (a path or a URL), with this status
local function redirect(b, to, code) return ("%s/redirect?code=%d&to=%s"):format(b, code or 302, enc(to)) end
-- what /echo saw, from an http.file download of it
local function echoed(dest) return assert(json.decode(assert(core.read_file(dest)))) end

T.test("redirects: to the same origin, the caller's headers and credentials still go", function()
  reset()
  local tok = secret.new("Tok-same-origin-1")
  local opts = { headers = { ["PRIVATE-TOKEN"] = tok, ["X-Api-Key"] = "plain-key-1" },
                 user = "alice", password = secret.new("Pw-same-origin-1") }
  -- a relative Location, and an absolute one naming the same origin
  for _, url in ipairs { redirect(base, "/echo"), redirect(base, base .. "/echo", 307) } do
    local res = assert(http.request { url = url, headers = opts.headers, user = opts.user, password = opts.password })
    T.eq(res.status, 200); T.eq(res.url, base .. "/echo")
    T.eq(res.json.headers["private-token"], "Tok-same-origin-1")
    T.eq(res.json.headers["x-api-key"], "plain-key-1")
    T.eq(res.json.headers.authorization, "Basic YWxpY2U6UHctc2FtZS1vcmlnaW4tMQ==")
    local dest = dir .. "/same-origin.json"
    assert(http.file { url = url, dest = dest, headers = opts.headers, user = opts.user,
                       password = opts.password }:apply(new_ctx()))
    local e = echoed(dest)
    T.eq(e.path, "/echo")
    T.eq(e.headers["private-token"], "Tok-same-origin-1")
    T.eq(e.headers.authorization, "Basic YWxpY2U6UHctc2FtZS1vcmlnaW4tMQ==")
    no_temp(dest)
  end
  T.eq(count("/echo"), 4)
end)

T.test("redirects: another port gets neither the caller's headers nor the credentials, but Accept and User-Agent", function()
  local other = other_base()
  reset_at(other)
  local headers = {
    ["PRIVATE-TOKEN"] = secret.new("Tok-other-port-2"), ["X-Api-Key"] = "plain-key-2", Cookie = "session=c00k1e",
    Authorization = "Bearer hand-made-2",
    -- an empty value is sent as "Name;": kept all the same
    Accept = "application/x-provision-test", ["Accept-Language"] = "eo", ["Accept-Encoding"] = "",
    ["User-Agent"] = "provision-test-agent/2", ["Content-Type"] = "text/x-provision-test",
  }
  local function check(h, what)
    for _, name in ipairs { "private-token", "x-api-key", "cookie", "authorization" } do
      T.eq(h[name], nil, what .. ": " .. name .. " went to another origin")
    end
    T.eq(h.accept, "application/x-provision-test", what)
    T.eq(h["accept-language"], "eo", what)
    T.eq(h["accept-encoding"], "", what)
    T.eq(h["user-agent"], "provision-test-agent/2", what)
    T.eq(h["content-type"], "text/x-provision-test", what)
  end
  local pw = secret.new("Pw-other-port-2")
  local url = redirect(base, other .. "/echo")
  local res = assert(http.request { url = url, headers = headers, user = "alice", password = pw })
  T.eq(res.url, other .. "/echo")
  check(res.json.headers, "http.request")
  local dest = dir .. "/other-port.json"
  assert(http.file { url = url, dest = dest, headers = headers, user = "alice", password = pw }:apply(new_ctx()))
  check(echoed(dest).headers, "http.file")
  T.eq(count_at(other, "/echo"), 2, "both arrived at the other port")
  -- and what the first origin got, to show the headers were given at all:
  -- the same request to it straight
  res = assert(http.request { url = base .. "/echo", headers = headers, user = "alice", password = pw })
  T.eq(res.json.headers["private-token"], "Tok-other-port-2")
  T.eq(res.json.headers.authorization, "Bearer hand-made-2")
  -- once gone to another origin, a redirect back to the first does not bring them back
  url = redirect(base, redirect(other, base .. "/echo"))
  res = assert(http.request { url = url, headers = headers, user = "alice", password = pw })
  T.eq(res.url, base .. "/echo")
  check(res.json.headers, "back on the first origin")
  -- another host name for the same address and port is another origin too
  res = assert(http.request { url = redirect(base, ("http://localhost:%d/echo"):format(port)), headers = headers,
                              user = "alice", password = pw })
  T.eq(res.url, ("http://localhost:%d/echo"):format(port))
  check(res.json.headers, "localhost")
  -- credentials alone (no headers): no Authorization either; provision's
  -- own User-Agent goes on
  res = assert(http.request { url = url, user = "alice", password = pw })
  T.eq(res.json.headers.authorization, nil)
  T.match(res.json.headers["user-agent"], "^provision/")
  -- http.file's check (a conditional GET) goes the same way, and the 304
  -- from the other origin is "ok"
  reset_at(other)
  local r = http.file { url = redirect(base, other .. "/file/cond?size=300"), dest = dir .. "/cond.bin",
                        headers = headers, user = "alice", password = pw }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  T.eq(FS.sha256(dir .. "/cond.bin"), sha(300, "cond"))
  T.eq({ r:check(ctx) }, { true })
  T.eq(count_at(other, "/file/cond"), 2)
end)

T.test("redirects: from https to plain http is refused, nothing is fetched, the secret never shows", function()
  local tbase, crt = tls_base()
  local tok, pw = secret.new("Tok-downgrade-3"), secret.new("Pw-downgrade-3")
  reset(); reset_at(tbase)
  local target = base .. "/file/down?size=100"
  local dest = dir .. "/down.bin"
  local f = assert(io.open(dest, "w")); f:write("old content"); f:close()
  local ok, err = http.file { url = redirect(tbase, target), dest = dest, ca_file = crt, user = "alice", password = pw,
                              headers = { ["PRIVATE-TOKEN"] = tok } }:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "refusing a redirect from https to plain http")
  T.ok(err:find(target, 1, true), "it names where it was sent: " .. err)
  for _, s in ipairs { "Tok-downgrade-3", "Pw-downgrade-3", "YWxpY2U6UHctZG93bmdyYWRlLTM=" } do
    T.ok(not err:find(s, 1, true), "a secret in the message: " .. err)
  end
  T.eq(core.read_file(dest), "old content")
  no_temp(dest)
  T.eq(count("/file/down"), 0, "nothing was asked of the http server")
  T.eq(count_at(tbase, "/redirect"), 1, "not retried")
  local res, rerr, kind = http.request { url = redirect(tbase, target), ca_file = crt, headers = { ["PRIVATE-TOKEN"] = tok } }
  T.eq(res, nil); T.eq(kind, "redirects")
  T.match(rerr, "^GET https://127%.0%.0%.1:%d+/redirect%?.*: refusing a redirect from https to plain http")
  T.ok(not rerr:find("Tok-downgrade-3", 1, true), rerr)
  T.eq(count("/file/down"), 0)
  -- the primitive's own message (before any masking) holds neither
  local h = C.new()
  res, rerr, kind = h:request { url = redirect(tbase, target), ca_file = crt, user = "alice", password = "Pw-downgrade-3",
                                headers = { ["PRIVATE-TOKEN"] = "Tok-downgrade-3" } }
  h:close()
  T.eq(res, nil); T.eq(kind, "redirects")
  T.match(rerr, "^refusing a redirect from https to plain http %(http://127%.0%.0%.1:%d+/file/down%?size=100%)")
  for _, s in ipairs { "Tok-downgrade-3", "Pw-downgrade-3", "YWxpY2U6UHctZG93bmdyYWRlLTM=" } do
    T.ok(not rerr:find(s, 1, true), "in the message: " .. rerr)
  end
  -- https to https (here the same origin) is followed
  res = assert(http.request { url = redirect(tbase, tbase .. "/echo"), ca_file = crt, headers = { ["PRIVATE-TOKEN"] = tok } })
  T.eq(res.json.headers["private-token"], "Tok-downgrade-3")
end)

T.test("redirects: more than max_redirects stops with a message naming the count", function()
  reset()
  local res, err, kind = http.request { url = base .. "/redirect?n=11&to=/echo" }
  T.eq(res, nil); T.eq(kind, "redirects")
  T.match(err, "stopped after 10 redirects")
  T.eq(count("/echo"), 0)
  T.eq(count("/redirect"), 11)
  -- ten are fine
  res = assert(http.request { url = base .. "/redirect?n=10&to=/echo" })
  T.eq(res.status, 200); T.eq(res.json.path, "/echo")
  -- max_redirects sets the count
  res, err = http.request { url = base .. "/redirect?n=3&to=/echo", max_redirects = 2 }
  T.eq(res, nil); T.match(err, "stopped after 2 redirects")
  res, err = http.request { url = base .. "/redirect?to=/echo", max_redirects = 0 }
  T.eq(res, nil); T.match(err, "stopped after 0 redirects")
  T.raises(function() http.request { url = base .. "/echo", max_redirects = -1 } end, "'max_redirects' must be >= 0")
  -- the message names the last URL, without the credentials curl writes
  -- into a redirect's URL (here plain ones, which masking would not hide)
  res, err = http.request { url = base .. "/redirect?n=11&to=/echo", user = "alice", password = "plain-pw-4" }
  T.eq(res, nil); T.match(err, "stopped after 10 redirects %(the last to http://127%.0%.0%.1:%d+/echo%)")
  T.ok(not err:find("plain-pw-4", 1, true), err)
  -- a redirect to anything but http or https is refused
  res, err, kind = http.request { url = redirect(base, "ftp://127.0.0.1/x") }
  T.eq(res, nil); T.eq(kind, "redirects"); T.match(err, "refusing a redirect to ftp://127%.0%.0%.1/x")
  -- http.file: fails at once (no retries), dest untouched, no part file
  reset()
  local dest = dir .. "/eleven.bin"
  local f = assert(io.open(dest, "w")); f:write("old content"); f:close()
  local ok
  ok, err = http.file { url = base .. "/redirect?n=11&to=/file/eleven", dest = dest }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "stopped after 10 redirects")
  T.eq(count("/redirect"), 11); T.eq(count("/file/eleven"), 0)
  T.eq(core.read_file(dest), "old content")
  no_temp(dest)
end)

T.test("redirects: 303 (and 301/302 of a POST) make a GET without the body; 307/308 and other methods keep theirs", function()
  for _, c in ipairs {
    { 303, "POST", "GET" }, { 302, "POST", "GET" }, { 301, "POST", "GET" }, { 303, "PUT", "GET" },
    { 307, "POST", "POST" }, { 308, "POST", "POST" }, { 302, "PUT", "PUT" }, { 301, "DELETE", "DELETE" },
  } do
    local code, method, want = c[1], c[2], c[3]
    local what = ("%s then %d"):format(method, code)
    local res = assert(http.request { url = redirect(base, "/echo", code), method = method, body = "payload-" .. code,
                                      headers = { ["PRIVATE-TOKEN"] = secret.new("Tok-method-5") } })
    T.eq(res.status, 200, what)
    T.eq(res.json.method, want, what)
    T.eq(res.json.body, want == "GET" and "" or "payload-" .. code, what)
    if want == "GET" then T.eq(res.json.headers["content-length"], nil, what) end
    T.eq(res.json.headers["private-token"], "Tok-method-5", what .. ": the same origin")
  end
  -- HEAD stays HEAD
  local res = assert(http.request { url = redirect(base, "/file/h303?size=10", 303), method = "HEAD" })
  T.eq(res.status, 200); T.eq(res.body, ""); T.eq(res.headers["content-length"], "10")
end)

-- ---- max_size

T.test("file: max_size: a larger file fails (Content-Length, chunked, close-delimited), dest untouched", function()
  for _, c in ipairs {
    { "/file/big1?size=5000", "the file is 5000 bytes, more than max_size %(4096%)" },
    { "/stream/big2?size=5000", "more than max_size %(4096 bytes%) arrived" },
    { "/stream/big3?size=5000&mode=close", "more than max_size %(4096 bytes%) arrived" },
    -- past the ring's first slot: the threads have started writing
    { "/stream/big4?size=3000000", "more than max_size %(4096 bytes%) arrived" },
  } do
    reset()
    local dest = dir .. "/big.bin"
    local f = assert(io.open(dest, "w")); f:write("old content"); f:close()
    local ctx = new_ctx()
    local ok, err = http.file { url = base .. c[1], dest = dest, max_size = "4KiB" }:apply(ctx)
    T.eq(ok, nil, c[1])
    T.match(err, c[2], c[1])
    T.eq(core.read_file(dest), "old content", c[1])
    no_temp(dest)
    T.eq(ctx.state.part, nil, c[1])
    T.eq(count(c[1]:match("^[^?]+")), 1, c[1] .. ": not retried")
  end
  -- the same through the primitive: kind "too_large"
  local h = C.new()
  local res, err, kind = h:download { url = base .. "/stream/big5?size=9000", dest = dir .. "/big5", part = "big5.part",
                                      create = true, max_size = 8192, commit = 420 }
  T.eq(res, nil); T.eq(kind, "too_large"); T.match(err, "max_size")
  T.ok(not exists(dir .. "/big5"))
  local st = FS.lstat(dir .. "/big5.part")
  T.ok(st and st.size <= 8192, "no more than max_size written: " .. tostring(st and st.size))
  FS.remove(dir .. "/big5.part")
  h:close()
  T.raises(function() http.file { url = base .. "/file/x", dest = dir .. "/x", max_size = "lots" } end, "size")
end)

T.test("file: max_size: a file of exactly max_size lands", function()
  for _, path in ipairs { "/file/exact1?size=4096", "/stream/exact2?size=4096", "/stream/exact3?size=4096&mode=close" } do
    local dest = dir .. "/exact.bin"
    local name = path:match("^/%w+/(%w+)")
    local res = assert(http.file { url = base .. path, dest = dest, max_size = "4KiB",
                                   sha256 = sha(4096, name) }:apply(new_ctx()))
    T.eq(res.size, 4096, path)
    T.eq(FS.sha256(dest), sha(4096, name), path)
    no_temp(dest)
  end
end)

T.test("file: max_size counts the part kept from a killed run", function()
  local url = base .. "/file/mr?size=100000"
  local full = get("/file/mr?size=100000").body
  local dest = dir .. "/mr.bin"
  for _, c in ipairs { { 99999, false }, { 100000, true } } do
    local part = "mr.bin.provision-part.k1ll3d"
    local f = assert(io.open(dir .. "/" .. part, "wb")); f:write(full:sub(1, 60000)); f:close()
    local ctx = new_ctx()
    ctx.state.part = { name = part, dest = dest, url = http.url_key(url), etag = '"mr-mr-100000-1"',
                       id = FS.lstat(dir .. "/" .. part).id }
    local res, err = http.file { url = url, dest = dest, max_size = c[1] }:apply(ctx)
    if c[2] then
      T.ok(res, err); T.eq(res.resumed, true); T.eq(FS.sha256(dest), sha(100000, "mr"))
    else
      T.eq(res, nil); T.match(err, "the file is 100000 bytes, more than max_size %(99999%)")
      T.ok(not exists(dest))
    end
    no_temp(dest)
  end
end)

T.test("begin: an early request's result is http.request's; once; nil where it cannot go early", function()
  -- the same request, sent early and the usual way: the same result but its time
  local function same(opts)
    local early = assert(http.begin(opts), "sent early")
    core.sleep(0.05)   -- (the reply waits in the socket)
    local got = assert(early:result())
    T.eq(early:result(), nil, "a second result")
    local want = assert(http.request(opts))
    got.seconds, want.seconds = nil, nil
    got.headers.date, want.headers.date = nil, nil
    T.eq(json.encode(got), json.encode(want), opts.url or opts)
  end
  same(base .. "/json?a=1")
  same { url = "http://127.0.0.1:" .. port .. "?x=1" }   -- ("/?x=1" is asked, as libcurl asks it)
  same { url = base .. "/echo", method = "POST", body = { k = "v" }, headers = { ["X-A"] = "b" } }
  same { url = base .. "/auth", user = "user", password = secret.new "password" }
  same { url = base .. "/status/503?body=later" }
  -- not early: a name to resolve, https (libcurl's), another machine, a server that is not there
  T.eq(http.begin("http://localhost.invalid:" .. port .. "/json"), nil, "a name")
  T.eq(http.begin("https://127.0.0.1:" .. port .. "/json"), nil, "https")
  local t0 = core.now()
  T.eq(http.begin("http://192.0.2.1:" .. port .. "/json"), nil, "not loopback")
  T.ok(core.now() - t0 < 0.1, "not loopback: no connect tried")
  local gone, freeport = start_server()
  os.execute("kill " .. gone .. "; sleep 0.2")
  T.eq(http.begin("http://127.0.0.1:" .. freeport .. "/json"), nil, "nothing listens")
  -- a redirect is not followed early: nil, and http.request follows it
  reset()
  local early = assert(http.begin(base .. "/redirect?to=/json"))
  T.eq(early:result(), nil, "a redirect")
  T.eq(count("/redirect"), 1)
  -- a server slower than the request's timeout, counted from the send:
  -- the timeout, said as http.request says it, and no second request
  reset()
  early = assert(http.begin { url = base .. "/delay?seconds=2", timeout = 0.3 })
  core.sleep(0.2)
  t0 = core.now()
  local res, err, kind = early:result()
  T.eq(res, nil); T.eq(kind, "timeout"); T.match(err, "^GET .*/delay%?seconds=2: Operation timed out after %d+ milliseconds")
  T.ok(core.now() - t0 < 0.25, "the time waited counts from the send")
  T.eq(count("/delay"), 1)
  -- a reply cut short: nil (http.request says what went wrong)
  early = assert(http.begin(base .. "/badlength/b?size=100"))
  T.eq(early:result(), nil, "a cut reply")
  -- closed before its result: nil; misuse raises at the caller's line, as http.request's
  early = assert(http.begin(base .. "/json"))
  early:close()
  T.eq(early:result(), nil, "closed")
  -- http.answer: the early answer when there is one, else the request asked now
  reset()
  early = assert(http.begin(base .. "/status/200?n=1"))
  core.sleep(0.05)
  T.eq(assert(http.answer(early, base .. "/status/200?n=2")).status, 200)
  T.eq(count("/status/200"), 1, "the early answer, no second request")
  T.eq(assert(http.answer(nil, base .. "/status/200?n=3")).status, 200)
  T.eq(count("/status/200"), 2, "no early request: asked now")
  early = assert(http.begin(base .. "/redirect?to=/json"))
  T.eq(assert(http.answer(early, base .. "/redirect?to=/json")).status, 200, "no early answer: asked now")
  T.eq(count("/redirect"), 2)
  early = assert(http.begin { url = base .. "/delay?seconds=2", timeout = 0.3 })
  res, err, kind = http.answer(early, { url = base .. "/delay?seconds=2", timeout = 0.3 })
  T.eq(res, nil); T.eq(kind, "timeout"); T.match(err, "Operation timed out")
  T.eq(count("/delay"), 1, "an early timeout is the answer: no second request")
  local ok, raised = pcall(http.begin, { url = base, methd = "GET" })
  T.eq(ok, false); T.match(raised, "^http.begin: unknown option 'methd'")
  T.raises(function() http.request { url = base, methd = "GET" } end, "test_http.lua:%d+: http.request: unknown option 'methd'")
  T.raises(function() http.begin { url = base, methd = "GET" } end, "test_http.lua:%d+: http.begin: unknown option 'methd'")
  T.raises(function() http.begin(42) end, "test_http.lua:%d+: http.begin: expected { url = ... }")
  -- http.answer says a misspelt option even when the early answer is used
  reset()
  early = assert(http.begin(base .. "/status/200?n=4"))
  core.sleep(0.05)
  T.raises(function() http.answer(early, { url = base .. "/status/200?n=4", methd = "GET" }) end,
    "test_http.lua:%d+: http.answer: unknown option 'methd'")
  T.raises(function() http.answer(nil, 42) end, "test_http.lua:%d+: http.answer: expected { url = ... }")
  T.eq(count("/status/200"), 1, "the misspelt answer asked nothing more")
  early:close()
end)

for _, p in ipairs(pids) do os.execute("kill " .. p) end
return T.done()
