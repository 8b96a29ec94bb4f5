-- provision.http.expect: http.expect, the check of a live endpoint, and
-- http.contains, its JSON matcher (provision.http loads this part when a
-- recipe first uses either).
local R = require "provision.resource"
local core = require "provision._core"
local json = require "provision.json"
local http = require "provision.http"
local URL = require "provision.http.url"
local show_url, web_url, body_start, status_text = URL.show, URL.web, http.body_start, http.status_text

local M = {}

-- a duration for a message: "8ms", "2s", "1.5s"
local function seconds(n)
  if n < 1 then return ("%dms"):format(math.floor(n * 1000 + 0.5)) end
  if n == math.floor(n) then return ("%ds"):format(n) end
  return ("%.1fs"):format(n)
end

-- contains(actual, expected): is expected a subset of actual? Objects: every
-- key expected must match; arrays: every expected item must match some
-- item; scalars: equal (numbers by value).
local function contains(actual, expected, path)
  path = path or "$"
  if type(expected) ~= "table" and actual == expected then return true end
  if type(expected) ~= "table" or type(actual) ~= "table" then
    return false, ("%s is %s, want %s"):format(path, actual == nil and "missing" or json.encode(actual),
      json.encode(expected))
  end
  if #expected > 0 then   -- an array: each item like one of actual's
    for _, want in ipairs(expected) do
      local found = false
      for _, have in ipairs(actual) do
        if contains(have, want) then found = true; break end
      end
      if not found then return false, ("%s has no item like %s"):format(path, json.encode(want)) end
    end
    return true
  end
  for k, want in pairs(expected) do
    local ok, why = contains(actual[k], want, path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  return true
end
M.contains = contains

local function expect_request(self)
  return {
    url = self.url, method = self.method, headers = self.headers, user = self.user,
    password = self.password, timeout = self.timeout or 10, ca_file = self.ca_file,
    insecure = self.insecure,
  }
end

-- expect_once(self, early?): one try; early: the same request sent at the
-- start of the run (prefetch), whose reply is used when it came whole
local function expect_once(self, early)
  local res, err = http.answer(early, expect_request(self))
  if not res then return false, err end
  local want = self.status or { 200 }
  local ok_status = false
  for _, s in ipairs(want) do if res.status == s then ok_status = true end end
  local function fail(why)
    return false, ("%s %s: %s%s"):format((self.method or "GET"):upper(), show_url(self.url), why, body_start(res.body, 5)), res
  end
  if not ok_status then
    return fail(("status %s, want %s"):format(status_text(res.status), table.concat(want, " or ")))
  end
  for _, s in ipairs(self.body_contains or {}) do
    if not res.body:find(s, 1, true) then
      return fail(("status %d but the body does not contain %q"):format(res.status, R.mask(s)))
    end
  end
  if self.json ~= nil then
    if res.json == nil then
      local _, jerr = json.decode(res.body)
      return fail(("status %d but the body is not JSON (%s)"):format(res.status, jerr or "?"))
    end
    local ok, why = contains(res.json, self.json)
    if not ok then return fail(("status %d but %s"):format(res.status, R.mask(why))) end
  end
  return true, nil, res
end

M.expect = R.define {
  kind = "http.expect",
  positional = "url",
  options = {
    url = { "string", doc = "what to ask: http:// or https://" },
    status = { "any?", doc = "the status wanted: a number or a list of them (default 200)" },
    body_contains = { "strings?", doc = "text the body must hold (a string or a list)" },
    json = { "any?", doc = "a table the JSON body must hold (a subset)" },
    user = { "secret?", doc = "basic auth user (sent to the first origin only)" },
    password = { "secret?", doc = "basic auth password (sent to the first origin only)" },
    headers = { "table?", doc = "request headers, { Name = value }; past a redirect to another origin, not sent" },
    within = { "duration?", doc = "apply asks again until this has passed (without it: one try); plan asks once" },
    interval = { "duration?", doc = "the time between two tries (default 2s)" },
    timeout = { "duration?", doc = "how long one request may take (default 10s)" },
    method = { "string?", doc = "the request's method (default GET)" },
    ca_file = { "string?", doc = "a CA certificate (PEM) to trust besides the system's" },
    insecure = { "boolean?", doc = "true: do not verify the server's TLS certificate" },
  },
  validate = function(self)
    self.url = web_url(self.url)
    if not self.url then return nil, "url must start with http:// or https://" end
    local s = self.status
    if s ~= nil then
      if math.type(s) == "integer" then self.status = { s }
      elseif type(s) == "table" and #s > 0 then
        for _, v in ipairs(s) do
          if math.type(v) ~= "integer" then return nil, "status must be an integer or a list of them" end
        end
      else return nil, "status must be an integer or a list of them" end
    end
    return true
  end,
  describe = function(self)
    local s = self.status and table.concat(self.status, "/") or "200"
    return ("%s answers %s"):format(show_url(self.url), s)
  end,
  -- the check's request, sent early in the run (run.lua: after the
  -- preflight checks); its reply is read when the check comes, if nothing
  -- changed before it. A GET or HEAD without credentials or headers of its
  -- own only: any other is sent when its step comes, as written (a server
  -- an earlier step would start or check first gets no password early)
  prefetch = function(self)
    local m = (self.method or "GET"):upper()
    if m ~= "GET" and m ~= "HEAD" or self.user or self.password or self.headers then return nil end
    return http.begin(expect_request(self))
  end,
  check = function(self, ctx)
    local ok, why = expect_once(self, ctx.early)
    if ok then return true end
    return false, why
  end,
  apply = function(self, ctx)
    local t0 = core.now()
    local deadline = t0 + (self.within or 0)
    local interval = self.interval or 2
    local tries = 0
    while true do
      tries = tries + 1
      local ok, why = expect_once(self)
      if ok then
        ctx:detail(("up after %d %s"):format(tries, tries == 1 and "try" or "tries"))
        return true
      end
      if core.now() + interval > deadline then
        if self.within then
          -- what really happened: the time spent and the tries made, and
          -- why it stopped (the next try would come after `within`)
          return nil, ("%s (still failing after %d %s in %s; another try %s later would be past within = %s)")
            :format(why, tries, tries == 1 and "try" or "tries", seconds(core.now() - t0), seconds(interval),
                    seconds(self.within))
        end
        return nil, why
      end
      if ctx.spin then ctx:spin(("waiting for %s"):format(show_url(self.url))) end
      if not core.sleep(interval) then return nil, "interrupted" end
    end
  end,
}

return M
