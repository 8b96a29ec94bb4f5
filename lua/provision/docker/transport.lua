-- provision.docker.transport: what an engine URL means and how provision
-- reaches it (a library: provision.docker.api opens its clients here).
--
--   unix:///path             the socket at /path (the default engine:
--                            DOCKER_HOST, else unix:///var/run/docker.sock)
--   tcp://host:port          HTTP, or HTTPS with mutual TLS when
--                            DOCKER_TLS_VERIFY is set (not empty), as the
--                            docker CLI decides it (--tlsverify's default):
--                            the port (2376 or any) decides nothing. The
--                            files are DOCKER_CERT_PATH's (default
--                            ~/.docker) ca.pem (what the engine's
--                            certificate must be signed by; its name or
--                            address is checked too), cert.pem and key.pem
--                            (ours); each must be readable, or the error
--                            names it. DOCKER_TLS alone (TLS without
--                            checking the engine) is refused. The port is
--                            required (the CLI would guess 2375/2376).
--   ssh://[user@]host[:port] the engine's /var/run/docker.sock on host,
--                            through one `ssh -N -L` per engine per run:
--                            provision.ssh_command's ssh (PROVISION_SSH,
--                            BatchMode) with ExitOnForwardFailure=yes,
--                            ControlMaster=no and ControlPath=none (the
--                            process is this run's, stopped by its pid),
--                            LogLevel=INFO (its reasons; kept, shown
--                            only in an error),
--                            forwarding a socket in a private folder of
--                            ours (provision.cache's engines/ssh.RANDOM,
--                            0700). Started on the first request to that
--                            engine, reused by every other; at exit (or
--                            close_all) ssh gets SIGTERM and the folder
--                            goes. It also dies with provision
--                            (PR_SET_PDEATHSIG).
--
-- parse(url) -> { scheme=, path= | host=, port=, user= } | nil, message
-- check(url) -> true | nil, message            (load time: the options)
-- tls() -> nil (plain) | { ca=, cert=, key=, dir= } | nil, false, message
-- open(url) -> client (client:request as provision._docker's) | nil, message
--   (unix:// and ssh://: core/uhttp.c on the socket, no libcurl; tcp://:
--   libcurl, loaded then)
-- env(url) -> { DOCKER_HOST = ..., ... } | nil, message: the environment a
--   docker or Compose CLI process needs to reach that engine (ssh: the
--   forwarded socket, which it opens)
-- close_all(): stop every tunnel now
local C = require "provision._docker"
local FS = require "provision._fs"
local cache = require "provision.cache"
local ssh_command = require "provision.ssh_command"

local M = {}

M.FORMS = "unix:///path, tcp://host:port or ssh://[user@]host[:port]"
M.REMOTE_SOCKET = "/var/run/docker.sock"
local PRIVATE = tonumber("700", 8)
local TUNNEL_TIMEOUT = 30

local function bad(url, why) return nil, ("engine %q: %s"):format(url, why) end

-- "host:port" or "[v6]:port" or "host" -> host, port (a string or nil) | nil
local function host_port(hp)
  local h, p = hp:match("^%[([%x:.]+)%]:?(%d*)$")
  if not h then
    h, p = hp:match("^([^:]*):?(%d*)$")
    if not h then return nil end
  end
  return h, p ~= "" and p or nil
end

local function valid_port(url, p, scheme)
  local n = tonumber(p)
  if not n or n < 1 or n > 65535 then return bad(url, ("port %s is not 1-65535 (%s)"):format(p, scheme)) end
  return n
end

function M.parse(url)
  if type(url) ~= "string" then return nil, "engine: a URL string (" .. M.FORMS .. ")" end
  if url:find("[%s%c]") then return bad(url, "no blanks or control characters in an engine URL") end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if scheme == "unix" then
    if rest == "" then return bad(url, "no socket path (unix:///path)") end
    if rest:sub(1, 1) ~= "/" then return bad(url, "the socket path must be absolute (unix:///path)") end
    if #rest > 107 then return bad(url, "socket path longer than 107 bytes") end
    return { scheme = "unix", path = rest }
  elseif scheme == "tcp" then
    local hp, path = rest:match("^([^/]*)(.*)$")
    if path ~= "" and path ~= "/" then return bad(url, "no path after host:port (tcp://host:port)") end
    local h, p = host_port(hp)
    if not h or h == "" then return bad(url, "no host (tcp://host:port)") end
    if not p then return bad(url, "no port (tcp://host:port)") end
    local n, perr = valid_port(url, p, "tcp://host:port")
    if not n then return nil, perr end
    return { scheme = "tcp", host = h, port = n, hostport = hp }
  elseif scheme == "ssh" then
    local auth, path = rest:match("^([^/]*)(.*)$")
    if path ~= "" and path ~= "/" then return bad(url, "no path after the host (ssh://[user@]host[:port])") end
    local user, hp = auth:match("^(.*)@(.*)$")
    hp = hp or auth
    if user and user:find(":") then return bad(url, "no password in an ssh:// URL (ssh uses your keys or agent)") end
    if user and not user:find("^[%w_.][%w_.-]*$") then return bad(url, "not a user name: " .. user) end
    local h, p = host_port(hp)
    if not h or h == "" then return bad(url, "no host (ssh://[user@]host[:port])") end
    if h:sub(1, 1) == "-" then return bad(url, "a host cannot start with '-'") end
    local n
    if p then
      local perr
      n, perr = valid_port(url, p, "ssh://[user@]host[:port]")
      if not n then return nil, perr end
    end
    return { scheme = "ssh", host = h, port = n, user = user,
             dest = (user and (user .. "@") or "") .. hp }
  end
  if not scheme then return bad(url, "not a URL (" .. M.FORMS .. ")") end
  return bad(url, ("unknown scheme %s:// (%s)"):format(scheme, M.FORMS))
end

function M.check(url)
  if url == "" then return true end   -- "": the default engine (a recipe's var left empty)
  local p, err = M.parse(url)
  if not p then return nil, err end
  return true
end

-- the TLS files, as the docker CLI finds them
function M.tls()
  local verify = os.getenv("DOCKER_TLS_VERIFY")
  if not verify or verify == "" then
    local plain = os.getenv("DOCKER_TLS")
    if plain and plain ~= "" then
      return nil, false, "DOCKER_TLS is set without DOCKER_TLS_VERIFY: TLS without checking the engine's "
        .. "certificate is not supported (set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
    end
    return nil
  end
  local dir = os.getenv("DOCKER_CERT_PATH")
  if not dir or dir == "" then
    local home = os.getenv("HOME")
    if not home or home == "" then return nil, false, "DOCKER_TLS_VERIFY: no DOCKER_CERT_PATH and no HOME" end
    dir = home .. "/.docker"
  end
  dir = dir:gsub("/+$", "")
  return { dir = dir, ca = dir .. "/ca.pem", cert = dir .. "/cert.pem", key = dir .. "/key.pem" }
end

-- ---- ssh tunnels: url -> { t = tunnel, dir =, id =, sock = } (closed on collection)

local tunnels = {}

local function stop(tu)
  if tu.t then tu.t:close(); tu.t = nil end
  if tu.dir then FS.remove_own(tu.dir, tu.id); tu.dir = nil end
end
local TUNNEL_MT = { __gc = stop }

-- the ssh command line forwarding sock to the host's engine socket
function M.ssh_argv(p, sock)
  local argv = ssh_command.base()
  -- LogLevel INFO: ssh says why a forwarded connection failed ("open
  -- failed"; its stderr is read only to explain a failure)
  for _, opt in ipairs { "ExitOnForwardFailure=yes", "ControlMaster=no", "ControlPath=none", "LogLevel=INFO" } do
    argv[#argv + 1] = "-o"; argv[#argv + 1] = opt
  end
  for _, a in ipairs { "-N", "-L", sock .. ":" .. M.REMOTE_SOCKET } do argv[#argv + 1] = a end
  if p.port then argv[#argv + 1] = "-p"; argv[#argv + 1] = tostring(p.port) end
  if p.user then argv[#argv + 1] = "-l"; argv[#argv + 1] = p.user end
  argv[#argv + 1] = "--"
  argv[#argv + 1] = p.host
  return argv
end

-- the tunnel of url (started now if need be) -> its record | nil, message
local function tunnel(url, p)
  local tu = tunnels[url]
  if tu then   -- one per engine per run, also once it died (its errors say so)
    if tu.failed then return nil, tu.failed end
    return tu
  end
  local base, berr = cache.dir("engines")
  if not base then return nil, ("engine %s: %s"):format(url, berr) end
  local dir = base .. "/" .. FS.temp_name("ssh")
  local made, id = FS.mkdir(dir, PRIVATE)
  if not made then return nil, ("engine %s: %s"):format(url, id) end
  tu = setmetatable({ dir = dir, id = id, sock = dir .. "/docker.sock", dest = p.dest }, TUNNEL_MT)
  local t, terr = C.tunnel(M.ssh_argv(p, tu.sock), tu.sock, TUNNEL_TIMEOUT)
  if not t then   -- kept: no second ssh for this engine in this run
    stop(tu)
    tu.failed = ("engine %s: ssh to %s failed: %s"):format(url, p.dest, terr)
    tunnels[url] = tu
    return nil, tu.failed
  end
  tu.t = t
  tunnels[url] = tu
  return tu
end

-- a failed request through a tunnel: what ssh said last, and the host
local function explain(url, tu, err)
  if err == "interrupted" or tostring(err):find(": interrupted$") then return err end
  local said = tu.t and tu.t:stderr(200) or ""
  local last
  for l in said:gmatch("[^\r\n]+") do last = l end
  if tu.t and not tu.t:alive() then
    return ("engine %s: the ssh connection to %s ended%s"):format(url, tu.dest, last and (": " .. last) or "")
  end
  -- the forwarded connection closed before any reply (core/uhttp.c's
  -- words; libcurl's were "Failure when receiving data", "returned nothing")
  local closed = err:find("before any reply came", 1, true) or err:find(": no reply: ", 1, true)
    or err:find("sending the request: ", 1, true) or err:find("receiving data", 1, true)
    or err:find("returned nothing", 1, true)
  if not last and closed then
    return ("engine %s: %s closed the forwarded connection: no Docker engine at %s there, or sshd refuses to forward to it"
      .. " (%s)"):format(url, tu.dest, M.REMOTE_SOCKET, err)
  end
  if last then
    if last:find("open failed") or last:find("connect failed") then
      return ("engine %s: %s has no Docker engine at %s: ssh says: %s"):format(url, tu.dest, M.REMOTE_SOCKET, last)
    end
    return ("engine %s (through ssh to %s): %s; ssh says: %s"):format(url, tu.dest, err, last)
  end
  return ("engine %s (through ssh to %s): %s"):format(url, tu.dest, err)
end

function M.open(url)
  local p, err = M.parse(url)
  if not p then return nil, err end
  if p.scheme == "unix" then return C.open(url) end
  if p.scheme == "tcp" then
    local tls, _, terr = M.tls()
    if terr then return nil, ("engine %s: %s"):format(url, terr) end
    local c, cerr = C.open("tcp://" .. p.hostport, tls)
    if not c then return nil, ("engine %s: %s"):format(url, cerr) end
    return c
  end
  local tu, terr = tunnel(url, p)
  if not tu then return nil, terr end
  local c, cerr = C.open("unix://" .. tu.sock)
  if not c then return nil, cerr end
  -- the client, its failures explained with the host and ssh's words
  return {
    host = url,
    socket = tu.sock,
    request = function(_, ...)
      local status, body, headers = c:request(...)
      if not status then return nil, explain(url, tu, body), headers end
      return status, body, headers
    end,
    close = function() c:close() end,
  }
end

function M.env(url)
  local p, err = M.parse(url)
  if not p then return nil, err end
  -- an empty DOCKER_TLS_VERIFY is no TLS to the docker CLI and Compose
  if p.scheme == "unix" then return { DOCKER_HOST = url, DOCKER_TLS_VERIFY = "", DOCKER_TLS = "" } end
  if p.scheme == "tcp" then
    local tls, _, terr = M.tls()
    if terr then return nil, ("engine %s: %s"):format(url, terr) end
    if not tls then return { DOCKER_HOST = "tcp://" .. p.hostport, DOCKER_TLS_VERIFY = "", DOCKER_TLS = "" } end
    return { DOCKER_HOST = "tcp://" .. p.hostport, DOCKER_TLS_VERIFY = "1", DOCKER_CERT_PATH = tls.dir }
  end
  local tu, terr = tunnel(url, p)
  if not tu then return nil, terr end
  return { DOCKER_HOST = "unix://" .. tu.sock, DOCKER_TLS_VERIFY = "", DOCKER_TLS = "" }
end

function M.close_all()
  for url, tu in pairs(tunnels) do
    stop(tu)
    tunnels[url] = nil
  end
end

return M
