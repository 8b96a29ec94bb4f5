-- provision.ssh_command: the start of every ssh command line provision
-- runs (fleets, provision.fleet; engines at ssh://, provision.docker.
-- transport): PROVISION_SSH split at blanks (else "ssh"), then BatchMode:
-- a host that would ask for a password or a host key fails at once. The
-- user's ssh_config, agent, ProxyJump and known_hosts apply as they do
-- for ssh itself.
local M = {}

-- base() -> { "ssh", ..., "-o", "BatchMode=yes" } (a new table each time)
function M.base()
  local argv = {}
  for w in (os.getenv("PROVISION_SSH") or "ssh"):gmatch("%S+") do argv[#argv + 1] = w end
  if #argv == 0 then argv[1] = "ssh" end
  argv[#argv + 1] = "-o"; argv[#argv + 1] = "BatchMode=yes"
  return argv
end

return M
