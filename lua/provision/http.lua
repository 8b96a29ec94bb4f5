-- provision.http: downloads a user can trust and checks of live endpoints.
-- The C primitives (provision._http: a curl handle, a streaming download
-- into a file with its digest computed on the way, a request) are in
-- modules/http/; the policy is here:
--
--   http.file { url, dest, sha256?, mode?, headers?, user?, password?,
--               timeout?, retries?, ca_file?, insecure?, max_size? }
--     The body streams into DEST.provision-part.RANDOM beside dest (made
--     with O_EXCL | O_NOFOLLOW: a name no other user can guess or plant
--     first) and is renamed over dest (fsync'd) only once complete and,
--     when sha256 is given, matching. dest matching sha256 already: no
--     request at all. Without a checksum the ETag / Last-Modified of the
--     last download (ctx.state) are sent and a 304 is "ok". Connection
--     errors, timeouts, broken replies, 408/429 and 5xx are retried
--     (retries, default 3) with exponential backoff (0.5s doubling, at most
--     8s); a broken reply resumes with Range (If-Range: the validator) where
--     the server takes ranges. The part file's name and validator are in
--     the state before the body starts (ctx:checkpoint): a run killed
--     outright (SIGKILL) leaves the part file, which the next run resumes
--     when the validator is a strong ETag or a Last-Modified and the file
--     is still ours (a regular file of this user, one link), and removes
--     otherwise; teardown removes it too. SIGINT/SIGTERM and every failure
--     remove it. timeout: give up a transfer when no byte came for that
--     long (default 60s; connect: 30s at most). max_size (default none): a
--     file larger than that fails before more is written. A redirect from
--     https to http is refused; one to another origin does not take the
--     headers (but Accept*, Content-Type, User-Agent) or the credentials.
--   http.expect { url, status?, body_contains?, json?, user?, password?,
--                 headers?, within?, interval?, timeout?, method? }
--     check: one request. apply: keep asking until it is right or `within`
--     (default: one more try) has passed, every `interval` (default 2s).
--   http.request { method?, url, headers?, body?, user?, password?, auth?,
--                  timeout?, ... } -> { status, headers, body, json } | nil, msg
--     (an unknown option raises, naming the valid ones)
local C = require "provision._http"
local FS = require "provision._fs"
local R = require "provision.resource"
local core = require "provision._core"
local json = require "provision.json"
local secret = require "provision.secret"
local lazy = require "provision.lazy"
local URL = require "provision.http.url"

local M = {}
M.curl_version = C.curl_version   -- a function: calling it loads libcurl

local shared
local function handle()
  if not shared then shared = C.new() end
  return shared
end
M.handle = C.new

local FILE_MODE = tonumber("644", 8)
local PART_MODE = tonumber("600", 8)      -- the part file, until it lands
local NO_SETID = tonumber("1777", 8)      -- permissions and sticky bit: what an old mode passes on
local ENOENT, ENOTDIR = 2, 20

-- What the state knows a download by. With a sha256 pinned, its SHA-256.
-- Without, the digest is only for knowing the file again (has it changed
-- since we wrote it?), and SHA-256 would cost as much CPU as the download
-- itself (~0.94 s per GiB here, when curl -o takes ~0.85 s): it is XXH3-128
-- (~0.09 s per GiB; core/digest.c says why that is enough). States from
-- before keep their SHA-256 until the next download.
local digest_of = { sha256 = FS.sha256, xxh128 = FS.xxh128 }   -- both stop at SIGINT
local function recorded(st)
  if st.xxh128 then return "xxh128", st.xxh128 end
  return "sha256", st.sha256
end

-- the digest (kind) of dest, without reading it when it is still the very
-- file our last apply wrote (R.known_digest)
local function dest_digest(path, st, kind)
  st = st or {}
  return R.known_digest(path, st.stamp, st[kind], digest_of[kind])
end

-- the SHA-256 of dest, checked against a pinned sha256: the state's while
-- dest is still the file it was recorded of (its stamp: device, inode,
-- size, mtime, ctime); else dest is read, and when it holds the pinned
-- content that is recorded with the stamp it had while it was read (the
-- journal at once: ctx:checkpoint), so that the next run trusts the stamp
-- and reads nothing. A file that was in place before the first run is
-- adopted so: its digest in the state, no record in created, and teardown
-- keeps it (revert below).
local function pinned_digest(self, ctx, st)
  local stamp, err = FS.stamp(self.dest)
  if not stamp then return nil, err end
  if st.sha256 and st.stamp == stamp then return st.sha256 end
  local have, herr = FS.sha256(self.dest)
  if not have then return nil, herr end
  if have == self.sha256 and not ctx.plan and ctx.state and FS.stamp(self.dest) == stamp then
    -- an unpinned download's XXH3 is of the file at the old stamp
    if st.stamp ~= stamp then st.xxh128 = nil end
    st.stamp, st.sha256 = stamp, have
    if ctx.checkpoint then ctx:checkpoint() end
  end
  return have
end

local human_bytes = R.human_bytes
M.human_bytes = human_bytes

-- the first lines of a body, masked, for a failure message
local function body_start(body, lines)
  if not body or body == "" then return "" end
  body = R.mask(body)
  local out = {}
  for line in (body .. "\n"):gmatch("(.-)\r?\n") do
    if #out >= (lines or 5) then break end
    if #line > 200 then line = line:sub(1, 200) .. "..." end
    out[#out + 1] = line
  end
  while #out > 0 and out[#out]:match("^%s*$") do out[#out] = nil end
  if #out == 0 then return "" end
  return ": " .. table.concat(out, " | ")
end
M.body_start = body_start

local REASONS = {
  [200] = "OK", [201] = "Created", [204] = "No Content", [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [410] = "Gone",
  [416] = "Range Not Satisfiable", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}
local function status_text(s)
  return REASONS[s] and (s .. " " .. REASONS[s]) or tostring(s)
end
M.status_text = status_text

local show_url, web_url = URL.show, URL.web

-- libcurl takes its proxy from the environment (http_proxy for http;
-- https_proxy or HTTPS_PROXY for https; then all_proxy, ALL_PROXY; no_proxy
-- excludes hosts). When the proxy cannot be reached its message names only
-- the proxy's address, not the URL's: say where that address came from.
local function proxy_note(url, err)
  local scheme = (url:match("^(%a[%w+.-]*)://") or "http"):lower()
  local vars = { scheme .. "_proxy", "all_proxy", "ALL_PROXY" }
  if scheme ~= "http" then table.insert(vars, 2, scheme:upper() .. "_PROXY") end
  for _, var in ipairs(vars) do
    local v = os.getenv(var)
    if v and v ~= "" then
      local host, port = v:gsub("^%a[%w+.-]*://", ""):gsub("^[^@/]*@", ""):match("^%[?([^%]/:]+)%]?:?(%d*)")
      if host and err:find(host, 1, true) and err:find(port, 1, true) then
        return (" (the proxy from %s)"):format(var)
      end
      return ""
    end
  end
  return ""
end

-- "METHOD URL: what went wrong", masked, without the URL's credentials
local function transport_error(method, url, err)
  return ("%s %s: %s%s"):format(method, show_url(url), R.mask(err), proxy_note(url, err))
end

local function retryable_status(s) return s == 408 or s == 429 or s >= 500 end
local RETRY_KINDS = { connect = true, timeout = true, partial = true }

local function backoff(attempt)
  return math.min(0.5 * 2 ^ (attempt - 1), 8)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  return (s:gsub("..?.?", function(c)
    local a, b, d = c:byte(1, 3)
    local n = a * 65536 + (b or 0) * 256 + (d or 0)
    local out = ""
    for i = 3, 0, -1 do
      local k = (n >> (6 * i)) & 63
      out = out .. B64:sub(k + 1, k + 1)
    end
    return out:sub(1, #c + 1) .. ("="):rep(3 - #c)
  end))
end

-- user and password as libcurl sends them: "Authorization: Basic
-- base64(user:password)". When either is a secret, that base64 is one too
-- (registered with provision.secret): a server that echoes the header back
-- in a body, an error or a log line shows it masked like the password.
local function basic_auth(user, password)
  if user == nil and password == nil then return end
  if R.is_secret(user) or R.is_secret(password) then
    secret.new(base64(tostring(R.reveal(user) or "") .. ":" .. tostring(R.reveal(password) or "")))
  end
  return R.reveal(user), R.reveal(password)
end

local function common_opts(self, o)
  o = o or {}
  o.url = self.url
  o.user, o.password = basic_auth(self.user, self.password)
  o.ca_file = self.ca_file
  o.insecure = self.insecure
  if self.headers then
    local h = {}
    for k, v in pairs(self.headers) do h[k] = R.reveal(v) end
    o.headers = h
  end
  return o
end

-- ---------------------------------------------------------------- http.file

-- a validator fit for If-Range: a strong ETag, else Last-Modified
local function range_validator(h)
  if h.etag and not h.etag:match("^W/") then return h.etag end
  return h.last_modified
end

-- what the state and the part record keep of a URL: its digest. Both are
-- masked on the way to disk, and a URL may hold a secret value (a token in
-- its query): saved as is it would never match again, or land on disk in clear.
local function url_key(url) return "sha256:" .. FS.sha256_string(url) end
M.url_key = url_key

local folder_of = R.folder_of

-- a part file of an earlier run this step recorded (ctx.state.part): its
-- path beside dest. Removed by name only where the name is still a
-- regular file of ours (FS.remove_own)
local function part_path(dest, part) return folder_of(dest) .. "/" .. part.name end
function M.remove_part(dest, part)
  if type(part) == "table" and type(part.name) == "string" and not part.name:find("/", 1, true) then
    -- the very file made, when its identity was recorded
    FS.remove_own(part_path(dest, part), type(part.id) == "string" and part.id ~= "" and part.id or nil)
  end
end

local function checkpoint(ctx)
  if ctx.checkpoint then ctx:checkpoint() end
end

-- a conditional request, when there is no checksum and dest is the very
-- file we fetched last: the validators the server gave then | nil
local function conditional(self, st)
  local kind, known = recorded(st)
  if not self.sha256 and st.url == url_key(self.url) and (st.etag or st.last_modified)
     and FS.exists(self.dest) and known and dest_digest(self.dest, st, kind) == known then
    return { etag = st.etag, last_modified = st.last_modified }
  end
end

-- The part file the body streams into: the one a killed run left when it
-- is ours, for this URL, with a validator (resumed from its size); else a
-- new name, in the state before the file exists (the old file goes).
-- -> { part = st.part, offset =, validator =, create = }
local function part_file(self, ctx, st)
  local dest = self.dest
  local part = type(st.part) == "table" and st.part or nil
  if part and part.dest == dest and part.url == url_key(self.url) and range_validator(part) then
    local pst = FS.lstat(part_path(dest, part))
    if pst and pst.type == "file" and pst.uid == FS.euid() and pst.nlink == 1 and pst.id == part.id then
      if pst.size > 0 then ctx:log(("resuming %s at %s"):format(part_path(dest, part), human_bytes(pst.size))) end
      return { part = part, offset = pst.size, validator = range_validator(part), create = false }
    end
  end
  if part then M.remove_part(dest, part) end
  part = { name = FS.temp_name(dest:match("([^/]*)$") .. ".provision-part"), url = url_key(self.url), dest = dest }
  st.part = part
  checkpoint(ctx)   -- its name is in the state before the file exists
  return { part = part, offset = 0, create = true }
end

-- The mode dest gets: the recipe's; else the mode of the file it replaces
-- when that is a file of ours with one name (never another user's: a
-- planted 4755 would make the download a setuid-root program), without
-- set-id bits; else 0644
local function landing_mode(self)
  if self.mode then return self.mode end
  local dst = FS.lstat(self.dest)
  if dst and dst.type == "file" and dst.uid == FS.euid() and dst.nlink == 1 then
    return dst.mode & NO_SETID
  end
  return FILE_MODE
end

-- What a reply means for the download dl (judge_reply) or a transfer that
-- broke (judge_failure): "done", res | "not modified" | "retry", why (dl
-- says where to start again) | nil, why (final)
local function judge_reply(self, ctx, dl, res, cond)
  local s = res.status
  if s == 304 and cond then return "not modified" end
  if s == 200 or s == 206 then
    if res.committed then return "done", res end
    if not self.sha256 or res.sha256 == self.sha256 then
      return nil, ("%s: the download was not moved into place"):format(self.dest)
    end
    if res.resumed and not dl.fresh_retry then
      -- a resumed file that does not add up: once more from scratch
      dl.fresh_retry, dl.offset, dl.validator = true, 0, nil
      ctx:log("checksum mismatch after a resumed download; fetching it whole")
      return "retry", "checksum mismatch after a resumed download"
    end
    return nil, ("checksum mismatch for %s: expected sha256 %s, got %s (%s from %s); %s left as it was")
      :format(self.dest, self.sha256, res.sha256, human_bytes(res.size), show_url(self.url), self.dest)
  end
  if s == 416 and dl.offset > 0 then
    -- the partial file is already whole (or longer): fetch it again, as
    -- one more try rather than a failed one
    dl.offset, dl.validator = 0, nil
    dl.attempt = dl.attempt - 1
    return "retry", ("GET %s: %s"):format(show_url(self.url), status_text(s))
  end
  if retryable_status(s) then
    dl.offset = 0
    return "retry", ("GET %s: %s%s"):format(show_url(self.url), status_text(s), body_start(res.body, 3))
  end
  return nil, ("GET %s: %s%s"):format(show_url(self.url), status_text(s), body_start(res.body, 5))
end

-- seen: the reply's validators and whether it takes ranges (nil: none came)
local function judge_failure(self, ctx, dl, seen, err, kind, info)
  if kind == "timeout" then err = "timed out: " .. err end
  if kind == "write" and info == nil then return nil, err end   -- the part file itself
  err = transport_error("GET", self.url, err)
  if not RETRY_KINDS[kind] then return nil, err end
  -- keep what arrived when the server takes ranges and we can tell the
  -- resource did not change under us
  local v = range_validator(seen)
  if info and info.size and info.size > 0 and seen.ranges and (v or self.sha256) then
    dl.offset, dl.validator = info.size, v
    ctx:log(("connection broke at %s; resuming"):format(human_bytes(dl.offset)))
  else
    dl.offset, dl.validator = 0, nil
  end
  return "retry", err
end

-- one request of the download dl into its part file, moved to dest with
-- mode once complete (and matching sha256). -> as judge_reply
local function transfer(self, ctx, dl, cond, mode)
  local part, seen = dl.part, {}
  local res, err, kind, info = handle():download(common_opts(self, {
    dest = self.dest, part = part.name, part_id = part.id, create = dl.create, offset = dl.offset,
    if_range = dl.offset > 0 and dl.validator or nil,
    digest = self.sha256 and "sha256" or "xxh128", max_size = self.max_size,
    commit = mode, expect = self.sha256,
    timeout = self.timeout or 60, mode = PART_MODE,
    if_none_match = cond and cond.etag, if_modified_since = cond and not cond.etag and cond.last_modified or nil,
    progress = function(done, total) ctx:progress(done, total, dl.label) end,
    on_headers = function(status, headers, part_id)
      seen.etag, seen.last_modified = headers.etag, headers["last-modified"]
      seen.ranges = headers["accept-ranges"] == "bytes"
      part.etag, part.last_modified, part.id = seen.etag, seen.last_modified, part_id
      checkpoint(ctx)   -- what a killed run resumes with
    end,
  }))
  dl.create = false   -- the part file exists now (or the transfer never made it)
  local pid = res and res.part_id or info and info.part_id
  if pid and pid ~= "" and part.id ~= pid then part.id = pid; checkpoint(ctx) end
  if core.interrupted() or kind == "interrupted" then return nil, "interrupted" end
  if res then return judge_reply(self, ctx, dl, res, cond) end
  return judge_failure(self, ctx, dl, seen, err, kind, info)
end

-- the whole download, retried as RETRY_KINDS and retryable_status say,
-- with backoff -> what it did | nil, why
local function download(self, ctx)
  local st = ctx.state or {}
  local t0 = core.now()
  local committed = false
  -- whatever happens (a failure, an error, SIGINT/SIGTERM unwinding the
  -- stack), a download that did not land leaves no temp file behind; the
  -- guard runs it shielded, so the interrupt does not stop it half way
  local guard <close> = core.guard(function()   -- luacheck: ignore (used for its close)
    if not committed and st.part then M.remove_part(self.dest, st.part); st.part = nil end
  end)
  local cond = conditional(self, st)
  local dl = part_file(self, ctx, st)
  dl.label, dl.attempt = self.dest:match("[^/]+$"), 0
  local mode = landing_mode(self)
  local retries = self.retries or 3
  local res
  while true do
    dl.attempt = dl.attempt + 1
    local what, x = transfer(self, ctx, dl, cond, mode)
    if what == "done" then res = x; break end
    if what == "not modified" then
      return { status = 304, bytes = 0, seconds = core.now() - t0, not_modified = true }
    end
    if what ~= "retry" then return nil, x end
    if dl.attempt > retries then
      return nil, ("%s (gave up after %d attempts)"):format(x, dl.attempt)
    end
    local wait = backoff(dl.attempt)
    ctx:log(("%s; retrying in %.1fs"):format(x, wait))
    if not core.sleep(wait) then return nil, "interrupted" end
  end
  committed = true
  st.part = nil
  ctx:progress(res.size, res.size, dl.label)   -- the bar ends full; the runner keeps the bytes
  return { status = res.status, bytes = res.bytes, size = res.size, sha256 = res.sha256, xxh128 = res.xxh128,
           seconds = core.now() - t0, etag = res.headers.etag,
           last_modified = res.headers["last-modified"], resumed = res.resumed or dl.offset > 0 }
end

M.file = R.define {
  kind = "http.file",
  owns = "dest",
  -- with a pinned sha256, plan knows what the download leaves at dest
  writes = function(self) return { { path = self.dest, sha256 = self.sha256 } } end,
  options = {
    url = { "string", doc = "what to download: http:// or https://" },
    dest = { "string", path = true, doc = "where the file goes" },
    sha256 = { "string?", doc = "its SHA-256 (64 hex digits): a mismatch fails and leaves dest alone" },
    mode = { "mode?", doc = "the file's mode" },
    user = { "secret?", doc = "basic auth user (sent to the first origin only)" },
    password = { "secret?", doc = "basic auth password (sent to the first origin only)" },
    headers = { "table?", doc = "request headers, { Name = value }; past a redirect to another origin, not sent" },
    timeout = { "duration?", doc = "how long the transfer may go without a byte (default 60s)" },
    retries = { "integer?", doc = "how often to retry a connection error, a timeout or a 5xx (default 3)" },
    ca_file = { "string?", doc = "a CA certificate (PEM) to trust besides the system's" },
    insecure = { "boolean?", doc = "true: do not verify the server's TLS certificate" },
    max_size = { "size?", doc = "the most the file may be: past it, the step fails and dest is left as it was" },
  },
  validate = function(self)
    self.url = web_url(self.url)
    if not self.url then return nil, "url must start with http:// or https://" end
    if self.sha256 then
      self.sha256 = self.sha256:lower():gsub("^sha256:", "")
      if not self.sha256:match("^" .. ("%x"):rep(64) .. "$") then
        return nil, "sha256 must be 64 hex digits"
      end
    end
    if self.retries and self.retries < 0 then return nil, "retries must be >= 0" end
    return true
  end,
  describe = function(self) return ("download %s to %s"):format(show_url(self.url), self.dest) end,

  check = function(self, ctx)
    local st = ctx.state or {}
    local dst, derr, code = FS.lstat(self.dest)
    if not dst then
      if code ~= ENOENT and code ~= ENOTDIR then return nil, derr end   -- a refused link
      return false, ("download %s to %s"):format(show_url(self.url), self.dest)
    end
    if dst.type ~= "file" then
      return false, ("%s is a %s: replace it with the download"):format(self.dest, dst.type)
    end
    -- a file another user owns (planted in a folder they can write to) is
    -- never taken for ours: they could change it after this check
    if dst.uid ~= FS.euid() and dst.uid ~= 0 then
      return false, ("%s belongs to uid %d, not to this user: download it again"):format(self.dest, dst.uid)
    end
    if self.sha256 then
      local have, err = pinned_digest(self, ctx, st)
      if not have then return nil, err end
      if have ~= self.sha256 then
        return false, ("%s has sha256 %s, want %s: download again"):format(self.dest, have, self.sha256)
      end
    else
      local kind, known = recorded(st)
      if st.url ~= url_key(self.url) or not known then
        return false, ("download %s to %s (no checksum: the existing file is not known)"):format(
          show_url(self.url), self.dest)
      end
      local have, err = dest_digest(self.dest, st, kind)
      if not have then return nil, err end
      if have ~= known then
        return false, ("%s changed since it was downloaded: download again"):format(self.dest)
      end
      if st.etag or st.last_modified then
        -- ask the server whether it changed: a conditional GET that stops
        -- at the first body byte
        local res, rerr = handle():request(common_opts(self, {
          timeout = self.timeout or 30, headers_only = true,
          if_none_match = st.etag, if_modified_since = not st.etag and st.last_modified or nil,
        }))
        if not res then return nil, transport_error("GET", self.url, rerr) end
        if res.status ~= 304 then
          if res.status >= 200 and res.status < 300 then
            return false, ("%s changed upstream: download again"):format(show_url(self.url))
          end
          return nil, ("GET %s: %s"):format(show_url(self.url), status_text(res.status))
        end
      end
    end
    if self.mode then
      local m = (FS.stat(self.dest) or {}).mode
      if m and m ~= self.mode then
        return false, ("%s: mode %04o, want %04o"):format(self.dest, m, self.mode)
      end
    end
    return true
  end,

  apply = function(self, ctx)
    local dst = FS.lstat(self.dest)
    -- what another user planted there is replaced, and then the step's own
    local existed = dst ~= nil and (dst.uid == FS.euid() or dst.uid == 0)
    if existed and dst.type == "file" and self.sha256 and dest_digest(self.dest, ctx.state, "sha256") == self.sha256 then
      -- the pinned content is there already: only the mode may be wrong.
      -- Every digest the state keeps is of the file at its stamp, which
      -- changes now: the XXH3-128 of an unpinned download stays only while
      -- it is this file's (another file may have been put there since)
      local st = ctx.state
      if st.xxh128 and dest_digest(self.dest, st, "xxh128") ~= st.xxh128 then st.xxh128 = nil end
      if self.mode then
        local ok, err = FS.chmod(self.dest, self.mode, dst.id)
        if not ok then return nil, err end
      end
      -- with its stamp, the next check need not read it again
      st.stamp, st.sha256 = FS.stamp(self.dest), self.sha256
      return { bytes = 0, seconds = 0 }
    end
    local res, err = download(self, ctx)
    if not res then return nil, err end
    local st = ctx.state
    if res.not_modified then
      -- the file is the one we fetched and the server has nothing newer:
      -- what check found wrong can only be its mode
      if self.mode and (FS.stat(self.dest) or {}).mode ~= self.mode then
        local ok, cerr = FS.chmod(self.dest, self.mode, dst and dst.id)
        if not ok then return nil, cerr end
        st.stamp = FS.stamp(self.dest)
        ctx:detail(("not modified (304); mode set to %04o"):format(self.mode))
      else
        ctx:detail("not modified (304)")
      end
      res.bytes = 0
    else
      -- downloaded anew (another url, a change upstream), a file this step
      -- created is still its own: teardown must know the new digest
      local kind = res.sha256 and "sha256" or "xxh128"
      R.record_written(ctx, self.dest, res[kind], existed, kind, FS.euid())   -- (ours: another user's in its place stays)
      st.url, st.sha256, st.xxh128, st.size = url_key(self.url), res.sha256, res.xxh128, res.size
      st.etag, st.last_modified = res.etag, res.last_modified
      st.stamp = FS.stamp(self.dest)
      local rate = res.seconds > 0 and (" (%s/s)"):format(human_bytes(res.bytes / res.seconds)) or ""
      local took = (res.seconds < 1 and "%.2fs" or "%.1fs"):format(res.seconds)
      ctx:detail(("%s in %s%s%s"):format(human_bytes(res.bytes), took, rate, res.resumed and ", resumed" or ""))
    end
    st.bytes, st.seconds = res.bytes, res.seconds
    ctx.bytes = res.bytes
    return res
  end,

  -- the files it created (at this dest or an earlier one), while each is
  -- still what was written (as fs.file). A file that was there before the
  -- first apply is kept; the state still holds what the downloads recorded,
  -- so the runner calls revert anyway: false says that nothing was undone
  -- (the step is ok, not "reverted").
  state_revert = true,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = function(self, ctx)
    -- a part file a killed run left behind (a plan: said, not removed)
    if ctx.plan and ctx.state and ctx.state.part and ctx.log then
      ctx:log(("- the part file a stopped download of %s left"):format(ctx.state.part.dest or self.dest or "?"))
    elseif ctx.state and ctx.state.part then
      M.remove_part(ctx.state.part.dest or self.dest or "", ctx.state.part)
      ctx.state.part = nil
    end
    for _, e in ipairs((ctx.state and ctx.state.created) or {}) do
      if e.type == "file" then
        return R.revert_created_files(self, ctx)
      end
    end
    if ctx.detail then
      ctx:detail(("nothing recorded: kept %s, which existed before the first apply"):format(self.dest or "the file"))
    end
    return false
  end,
}

-- ------------------------------------------------------------- http.request

-- http.request(opts) -> { status, headers, body, json, url, seconds } | nil, msg
-- opts: method, url, headers, body (a string; a table is sent as JSON),
-- user, password (secrets are fine), timeout (default 30s), ca_file,
-- insecure, max_redirects, max_body, connect_timeout; auth = { user, password }.
-- Any other option raises: a typo (header =, methd =) would otherwise send
-- a different request than the one written.
local REQUEST_OPTIONS = {
  method = true, url = true, headers = true, body = true, user = true, password = true, auth = true,
  timeout = true, connect_timeout = true, ca_file = true, insecure = true, max_redirects = true,
  max_body = true,
}
-- the options of http.request(opts) as the C module takes them (raises on
-- misuse at level 3: the caller of http.request or http.begin)
local function request_options(opts, what)
  if type(opts) == "string" then opts = { url = opts } end
  if type(opts) ~= "table" or type(opts.url) ~= "string" then
    error(what .. ": expected { url = ... }", 3)
  end
  R.check_keys(what, opts, REQUEST_OPTIONS, nil, 4)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.url = web_url(o.url) or o.url   -- HTTP:// is http:// (libcurl refuses other schemes)
  o.user, o.password = basic_auth(opts.user, opts.password)
  if opts.auth then   -- auth = { user, password }
    o.user, o.password = basic_auth(opts.auth[1] or opts.auth.user, opts.auth[2] or opts.auth.password)
    o.auth = nil
  end
  o.timeout = o.timeout and assert(core.duration(o.timeout)) or 30
  local h = {}
  for k, v in pairs(opts.headers or {}) do h[k] = R.reveal(v) end
  if type(o.body) == "table" then
    o.body = json.encode(o.body)
    local has
    for k in pairs(h) do if type(k) == "string" and k:lower() == "content-type" then has = true end end
    if not has then h["Content-Type"] = "application/json" end
  end
  o.headers = h
  o.method = o.method and o.method:upper() or (o.body and "POST" or "GET")
  return o, opts
end

-- a reply's body decoded when it is JSON
local function with_json(res)
  local ct = res.headers["content-type"] or ""
  if ct:find("json", 1, true) or res.body:match("^%s*[%[{]") then
    res.json = json.decode(res.body)
  end
  return res
end

function M.request(opts)
  local o, given = request_options(opts, "http.request")
  local res, err, kind = handle():request(o)
  if not res then return nil, transport_error(o.method, given.url, err), kind end
  return with_json(res)
end

-- http.begin(opts) -> an early request, or nil: the request http.request(opts)
-- would make, sent now, its reply read when early:result() is asked (a
-- check's request sent early in a run: a prefetch hook, docs/concepts.md).
-- Only a plain http:// request to this machine's loopback (one libcurl is
-- not loaded for) goes early; for any other, and when it could not be sent
-- at once, nil. early:result() -> what http.request(opts) gives; nil,
-- message, kind when it timed out (its timeout counts from when it was
-- sent) or was interrupted; or nil for anything else but a whole reply that
-- is not a redirect: ask with http.request then, which says what went
-- wrong. Once. early:close() drops it.
local Early = {}
Early.__index = Early
function M.begin(opts)
  local o, given = request_options(opts, "http.begin")
  local e = handle():begin(o)
  return e and setmetatable({ e = e, method = o.method, url = given.url }, Early)
end
function Early:result()
  local e = self.e
  if not e then return nil end
  self.e = nil
  local res, err, kind = e:finish()
  if res then return with_json(res) end
  if err then return nil, transport_error(self.method, self.url, err), kind end
  return nil
end
function Early:close()
  if self.e then self.e:close(); self.e = nil end
end

-- http.answer(early, opts) -> what http.request(opts) gives: early's answer
-- when it has one (a reply, a timeout, an interrupt), else opts asked now.
-- early is a check's ctx.early, or nil (the check asks as it always does).
function M.answer(early, opts)
  request_options(opts, "http.answer")   -- (a misspelt option is said at once, answer or not)
  if early then
    local res, err, kind = early:result()
    if res or err then return res, err, kind end
  end
  return M.request(opts)
end

-- http.expect and http.contains (provision.http.expect): loaded when a
-- recipe first uses them
lazy.fields(M, {
  expect = lazy.part("provision.http.expect", "expect"),
  contains = lazy.part("provision.http.expect", "contains"),
})
R.later("http.expect", "provision.http.expect")

return M
