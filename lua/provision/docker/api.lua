-- provision.docker.api: the Docker Engine API client (modules/docker.c:
-- core/uhttp.c on a unix socket, libcurl for tcp://) to the engine at a URL
-- (unix://, tcp:// with or without TLS, ssh://: provision.docker.transport). A library: plain calls, no resource; provision.docker (the
-- docker.* resources) and provision.compose both use it.
--
-- Calls (each -> value | nil, "what: why"):
--   api.ping()                       -> true
--   api.version() / api.info()       -> the engine's tables; api.engine_version() -> "24.0.7"
--   api.containers { project=, service=, volume=, all=true, labels={"k=v"} } -> list
--        volume: the containers (any state) that mount that volume
--   api.inspect(id_or_name)          -> table (State.Status, State.Health, State.ExitCode)
--   api.logs(id, { tail = 50 })      -> text (stdout and stderr, demultiplexed)
--   api.container_remove(id, { force=, volumes= }) -> true (also when it is not there)
--   api.image_exists(ref)            -> true | false
--   api.image_inspect(ref)           -> table | nil, msg, 404
--   api.image_import(tar_path, { repo=, tag= }) -> image id
--   api.image_remove(ref, { force= }) -> true (also when it is not there) | nil, msg, status
--   api.volumes { project= } / api.networks { project= } -> list
--   api.volume_inspect(name)         -> table | false (no such volume)
--   api.volume_remove(name)          -> true (also when it is not there) | nil, msg, 409 (in use)
--   api.network_remove(id)           -> true (also when it is not there)
--   api.call(method, path, opts)     -> decoded reply | nil, msg, status
--   api.request(method, path, opts)  -> status, body (raw)
--   api.version_compare(a, b)        -> -1 | 0 | 1 ("20.10.24" vs "20.10")
--
-- Engines: the calls above go to the default engine (DOCKER_HOST, else the
-- local socket). api.on(url) -> the same calls bound to the engine at url
-- ("unix:///path", "tcp://host:port", "ssh://[user@]host[:port]": what
-- transport.lua says of each), made once per url and kept for the
-- run (one connection each, reused); api.on(nil) is the default. Each bound
-- table has .url and the same pure helpers (urlencode, split_ref, ...).
local C = require "provision._docker"
local json = require "provision.json"
local transport = require "provision.docker.transport"
local kept = require "provision.kept"

local M = {}
M.demux = C.demux
M.PROJECT_LABEL = "com.docker.compose.project"
M.SERVICE_LABEL = "com.docker.compose.service"

function M.host()
  local h = os.getenv("DOCKER_HOST")
  if h and h ~= "" then return h end
  return "unix:///var/run/docker.sock"
end

local clients = {}
local function client(url)
  local c = clients[url]
  if c then return c end
  local err
  c, err = transport.open(url)
  if not c then return nil, err end
  clients[url] = c
  return c
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-_.~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end
M.urlencode = urlencode

local function query(params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. urlencode(params[k]) end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

function M.version_compare(a, b)
  local function parts(v)
    local t = {}
    for n in tostring(v):gsub("^v", ""):gmatch("%d+") do t[#t + 1] = tonumber(n) end
    return t
  end
  local x, y = parts(a), parts(b)
  for i = 1, math.max(#x, #y) do
    local p, q = x[i] or 0, y[i] or 0
    if p ~= q then return p < q and -1 or 1 end
  end
  return 0
end

local function split_ref(ref)
  local repo, tag = ref:match("^(.+):([%w_.%-]+)$")
  if repo and not tag:find("/") then return repo, tag end
  return ref, "latest"
end
M.split_ref = split_ref

-- what plan knows an image by (resource.lua, writes and reads): docker.image
-- that would import it, and compose.up whose services run it
-- Docker Hub's names are spelled several ways: "x", "library/x",
-- "docker.io/library/x" and "index.docker.io/library/x" are one image
function M.image_key(ref)
  local repo, tag = split_ref(ref)
  repo = repo:gsub("^index%.docker%.io/", ""):gsub("^docker%.io/", ""):gsub("^library/([^/]+)$", "%1")
  return { name = ("image %s:%s"):format(repo, tag) }
end

local function label_filters(o)
  local labels = {}
  if o.project then labels[#labels + 1] = M.PROJECT_LABEL .. "=" .. o.project end
  if o.service then labels[#labels + 1] = M.SERVICE_LABEL .. "=" .. o.service end
  for _, l in ipairs(o.labels or {}) do labels[#labels + 1] = l end
  local f = {}
  if #labels > 0 then f.label = labels end
  if o.volume then f.volume = { o.volume } end
  return f
end

-- DELETE path on engine E -> true (also when it was not there: 404) | nil, msg, status
local function delete(E, path)
  local _, err, status = E.call("DELETE", path)
  if status == 404 then return true end
  if err then return nil, err, status end
  return true
end

-- the calls of one engine, into E (its E.call and E.request made by bind)
local function bind_images(E)
  function E.image_exists(ref)
    local _, err, status = E.call("GET", "/images/" .. urlencode(ref) .. "/json")
    if status == 404 then return false end
    if err then return nil, err end
    return true
  end

  function E.image_inspect(ref)
    return E.call("GET", "/images/" .. urlencode(ref) .. "/json")
  end

  -- image_import(tar, { repo=, tag= }) -> image id: POST /images/create?fromSrc=-
  -- with the tar streamed from the file.
  function E.image_import(tar, o)
    local repo, tag = o.repo, o.tag
    if not repo and o.ref then repo, tag = split_ref(o.ref) end
    assert(repo, "docker.image_import: repo or ref needed")
    local body, err = E.call("POST", "/images/create" ..
      query { fromSrc = "-", repo = repo, tag = tag or "latest" },
      { file = tar, timeout = o.timeout or 600, raw = true })
    if not body then return nil, err end
    -- a stream of JSON progress objects; the last has "status": "sha256:..." or an error
    local id
    for line in body:gmatch("[^\r\n]+") do
      local j = json.decode(line)
      if type(j) == "table" then
        if j.error or j.errorDetail then
          return nil, "docker image import: " .. tostring(j.error or (j.errorDetail and j.errorDetail.message))
        end
        if type(j.status) == "string" and j.status:match("^sha256:") then id = j.status end
      end
    end
    local ok, ierr = E.image_exists(repo .. ":" .. (tag or "latest"))
    if not ok then return nil, ierr or ("docker image import: %s:%s not there afterwards"):format(repo, tag or "latest") end
    return id or true
  end

  -- image_remove(ref, { force= }) -> true | nil, msg, status (409: in use,
  -- or another name holds it)
  function E.image_remove(ref, o)
    return delete(E, "/images/" .. urlencode(ref) .. query { force = (o and o.force) and "1" or "0" })
  end

end

local function bind_storage(E)
  function E.volumes(o)
    local f = label_filters(o or {})
    local q = next(f) and query { filters = json.encode(f) } or ""
    local v, err = E.call("GET", "/volumes" .. q)
    if not v then return nil, err end
    return v.Volumes ~= json.null and v.Volumes or {}
  end

  function E.volume_inspect(name)
    local v, err, status = E.call("GET", "/volumes/" .. urlencode(name))
    if status == 404 then return false end
    if not v then return nil, err end
    return v
  end

  -- volume_remove(name) -> true | nil, msg, status (409: a container uses it)
  function E.volume_remove(name)
    return delete(E, "/volumes/" .. urlencode(name))
  end

  function E.networks(o)
    local f = label_filters(o or {})
    local q = next(f) and query { filters = json.encode(f) } or ""
    return E.call("GET", "/networks" .. q)
  end

  -- network_remove(id) -> true | nil, msg, status
  function E.network_remove(id)
    return delete(E, "/networks/" .. urlencode(id))
  end
end

-- bind(E, url_of): the calls, bound to the engine url_of() names, into E
local function bind(E, url_of)
  -- a plain GET a check makes: its 200 answer's body kept for a later check
  -- of the run, and taken from an earlier one (provision.kept: until an
  -- apply, or anything but a GET sent to an engine)
  function E.request(method, path, opts)
    local url = url_of()
    local key = method == "GET" and not opts and kept.checking() and url .. " " .. path
    if key then
      local body = kept.take(key)
      if body then return 200, body end
    elseif method ~= "GET" and method ~= "HEAD" then
      kept.forget()
    end
    local c, err = client(url)
    if not c then return nil, err end
    local status, body, headers = c:request(method, path, opts)
    if key and status == 200 and body then kept.put(key, body) end
    return status, body, headers
  end

  -- call(method, path, opts) -> decoded reply (or raw text) | nil, msg, status
  local function call(method, path, opts)
    local status, body = E.request(method, path, opts)
    if not status then return nil, body end
    if status >= 400 then
      local msg = body
      local j = json.decode(body)
      if type(j) == "table" and j.message then msg = j.message end
      msg = tostring(msg):gsub("%s+$", "")
      return nil, ("docker %s %s: %d %s"):format(method, path:gsub("%?.*", ""), status, msg), status
    end
    if (opts and opts.raw) or body == "" then return body, nil, status end
    local v, jerr = json.decode(body)
    if v == nil then return body, nil, status end
    return v, jerr, status
  end
  E.call = call

  function E.ping()
    local status, body = E.request("GET", "/_ping", { timeout = 10 })
    if not status then return nil, body end
    if status ~= 200 then return nil, ("docker: /_ping answered %d %s"):format(status, body) end
    return true
  end

  function E.version() return call("GET", "/version") end

  -- the engine's version, from the Server header of /_ping (GET /version asks
  -- containerd and runc too, and costs ~10 ms); /version when there is none
  function E.engine_version()
    local status, body, headers = E.request("GET", "/_ping", { timeout = 10, headers = true })
    if not status then return nil, body end
    local v = headers and headers.server and headers.server:match("^Docker/(%S+)")
    if v then return v end
    local t, err = E.version()
    if not t then return nil, err end
    return t.Version
  end
  function E.info() return call("GET", "/info") end

  function E.containers(o)
    o = o or {}
    local q = { all = (o.all == false) and "0" or "1" }
    local f = label_filters(o)
    if next(f) then q.filters = json.encode(f) end
    return call("GET", "/containers/json" .. query(q))
  end

  function E.inspect(id)
    return call("GET", "/containers/" .. urlencode(id) .. "/json")
  end

  -- container_remove(id, { force=, volumes= }) -> true | nil, msg, status;
  -- volumes: its anonymous volumes too
  function E.container_remove(id, o)
    o = o or {}
    local q = {}
    if o.force then q.force = "1" end
    if o.volumes then q.v = "1" end
    return delete(E, "/containers/" .. urlencode(id) .. query(q))
  end

  function E.logs(id, o)
    o = o or {}
    local body, err = call("GET", "/containers/" .. urlencode(id) .. "/logs" ..
      query { stdout = "1", stderr = "1", tail = tostring(o.tail or 50) }, { raw = true })
    if not body then return nil, err end
    return C.demux(body)
  end

  bind_images(E)
  bind_storage(E)
  return E
end
bind(M, M.host)

-- check_engine(url) -> true | nil, message: url is an engine URL (load time)
M.check_engine = transport.check
-- engine_env(url) -> the environment a docker/Compose CLI process needs to
-- reach that engine (nil url: none, the default is inherited) | nil, message
function M.engine_env(url)
  if url == nil or url == "" then return {} end
  return transport.env(url)
end

local PURE = { "check_engine", "engine_env", "demux", "PROJECT_LABEL", "SERVICE_LABEL", "urlencode", "version_compare",
  "split_ref", "image_key" }
local engines = {}
-- on(url) -> the calls bound to the engine at url (nil or "": the default)
function M.on(url)
  if url == nil or url == "" then return M end
  local e = engines[url]
  if e then return e end
  e = { url = url }
  for _, k in ipairs(PURE) do e[k] = M[k] end
  e.host = function() return url end
  e.on = M.on
  bind(e, e.host)
  engines[url] = e
  return e
end

return M
