-- provision.http.url: a URL as provision shows and compares it (shared by
-- provision.http and provision.http.expect)
local R = require "provision.resource"

local M = {}

-- a URL without user:password@, masked
function M.show(url)
  return R.mask((url:gsub("^(%a[%w+.-]*://)[^/@]*@", "%1")))
end

-- url with its scheme in lower case (schemes are case-insensitive, RFC 3986
-- section 3.1: HTTP://x is http://x; the state and the redirect policy
-- compare it), or nil when it is not an http or https URL
function M.web(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)(://.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil end
  return scheme .. rest
end

return M
