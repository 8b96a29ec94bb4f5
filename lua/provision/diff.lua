-- provision.diff: a unified diff of two texts, for plan output (fs.file,
-- fs.template) and -v.
--
--   diff.unified(old, new [, { context = 3, from = "a/path", to = "b/path",
--                             max_lines = 200 }]) -> { lines } ({} when equal)
--   diff.added(head, text, to [, max_lines]) -> { head, ... }: unified("",
--                             text) from /dev/null to `to`, after the line head
--   diff.edits(a, b) -> { {op, line}, ... }   op: " " same, "-" removed, "+" added
--
-- Myers' O(ND) algorithm on interned lines, after stripping the common head
-- and tail. When the texts differ in more than MAX_D lines the middle is
-- shown as all removed, then all added: still a correct diff, not a minimal
-- one, and a 10,000-line file never takes seconds.
local M = {}

local MAX_D = 1000
M.MAX_D = MAX_D

-- split into lines; a last line without "\n" is marked so that "x" and "x\n"
-- differ, and shown with "\ No newline at end of file"
local NOEOL = "\0noeol"
local function split(text)
  local lines, n = {}, 0
  local pos, len = 1, #text
  while pos <= len do
    local nl = text:find("\n", pos, true)
    n = n + 1
    if nl then
      lines[n] = text:sub(pos, nl - 1)
      pos = nl + 1
    else
      lines[n] = text:sub(pos) .. NOEOL
      pos = len + 1
    end
  end
  return lines, n
end
M.split = split

-- the edit script between two lists of lines (strings compared by value)
local function edits(a, b)
  local n, m = #a, #b
  -- intern: compare small integers, not (possibly long) strings
  local ids, next_id = {}, 0
  local A, B = {}, {}
  for i = 1, n do
    local s = a[i]; local id = ids[s]
    if not id then next_id = next_id + 1; id = next_id; ids[s] = id end
    A[i] = id
  end
  for i = 1, m do
    local s = b[i]; local id = ids[s]
    if not id then next_id = next_id + 1; id = next_id; ids[s] = id end
    B[i] = id
  end
  local out, o = {}, 0
  -- common head
  local head = 0
  while head < n and head < m and A[head + 1] == B[head + 1] do
    head = head + 1
    o = o + 1; out[o] = { " ", a[head] }
  end
  -- common tail
  local tail = 0
  while tail < n - head and tail < m - head and A[n - tail] == B[m - tail] do
    tail = tail + 1
  end
  local N, Mm = n - head - tail, m - head - tail
  local middle = {}
  -- nothing in common in the middle (or one side empty): no search needed
  local common = false
  if N > 0 and Mm > 0 then
    local inb = {}
    for i = head + 1, head + Mm do inb[B[i]] = true end
    for i = head + 1, head + N do if inb[A[i]] then common = true; break end end
  end
  if not common then
    for i = 1, N do middle[#middle + 1] = { "-", a[head + i] } end
    for i = 1, Mm do middle[#middle + 1] = { "+", b[head + i] } end
  else
    -- Myers on A[head+1 .. head+N] and B[head+1 .. head+Mm]
    local V = { [1] = 0 }
    local trace = {}
    local found_d
    local limit = math.min(N + Mm, MAX_D)
    for d = 0, limit do
      local snap = {}
      for k = -d + 1, d + 1 do snap[k] = V[k] end
      trace[d] = snap
      for k = -d, d, 2 do
        local x
        if k == -d or (k ~= d and V[k - 1] < V[k + 1]) then x = V[k + 1] else x = V[k - 1] + 1 end
        local y = x - k
        while x < N and y < Mm and A[head + x + 1] == B[head + y + 1] do x = x + 1; y = y + 1 end
        V[k] = x
        if x >= N and y >= Mm then found_d = d; break end
      end
      if found_d then break end
    end
    local rev, r = {}, 0
    if found_d then
      local x, y = N, Mm
      for d = found_d, 1, -1 do
        local v = trace[d]
        local k = x - y
        local ins = k == -d or (k ~= d and v[k - 1] < v[k + 1])
        local pk = ins and k + 1 or k - 1
        local px = v[pk]
        local py = px - pk
        local sx, sy = px, py
        if ins then sy = sy + 1 else sx = sx + 1 end
        while x > sx and y > sy do
          r = r + 1; rev[r] = { " ", a[head + x] }
          x = x - 1; y = y - 1
        end
        if ins then r = r + 1; rev[r] = { "+", b[head + y] }
        else r = r + 1; rev[r] = { "-", a[head + x] } end
        x, y = px, py
      end
      while x > 0 and y > 0 do
        r = r + 1; rev[r] = { " ", a[head + x] }
        x = x - 1; y = y - 1
      end
      for i = r, 1, -1 do middle[#middle + 1] = rev[i] end
    else
      for i = 1, N do middle[#middle + 1] = { "-", a[head + i] } end
      for i = 1, Mm do middle[#middle + 1] = { "+", b[head + i] } end
    end
  end
  for _, e in ipairs(middle) do o = o + 1; out[o] = e end
  for i = n - tail + 1, n do o = o + 1; out[o] = { " ", a[i] } end
  return out
end
M.edits = edits

local function range(start, count)
  if count == 0 then return ("%d,0"):format(start - 1) end
  if count == 1 then return tostring(start) end
  return ("%d,%d"):format(start, count)
end

-- one side empty (a file emptied, or an empty one filled: every line
-- removed or added): one hunk of the other's lines, with no edit script,
-- from out[base + 1] (its two header lines are out[base - 1] and
-- out[base]). One pass over text: no list of its lines first, no
-- end-of-line marker looked for. (A new file's diff is M.added's, in C.)
local find, sub = string.find, string.sub
local RANGE = {}   -- range(1, n) for n < 256, each made once
local function one_sided(out, base, text, op)
  local o, n, pos, len = base + 1, 0, 1, #text
  while pos <= len do
    local nl = find(text, "\n", pos, true)
    o, n = o + 1, n + 1
    if not nl then
      out[o], out[o + 1] = op .. sub(text, pos), "\\ No newline at end of file"
      break
    end
    out[o] = op .. sub(text, pos, nl - 1)
    pos = nl + 1
  end
  local r = RANGE[n]
  if not r then
    r = range(1, n)
    if n < 256 then RANGE[n] = r end
  end
  out[base + 1] = op == "+" and "@@ -0,0 +" .. r .. " @@" or "@@ -" .. r .. " +0,0 @@"
end

-- at most max lines after out[base]: the rest counted on the last
local function cut(out, max, base)
  base = base or 0
  if max and #out - base > max then
    local more = #out - base - max
    for k = #out, base + max + 1, -1 do out[k] = nil end
    out[#out + 1] = ("... (%d more diff lines)"):format(more)
  end
  return out
end

-- diff.added(head, text, to, max_lines) -> { head, then a new file's diff
-- (from /dev/null, every line added) }: what a plan shows for each file it
-- would create (142,000 times in a plan of 142,000 new files: written in C,
-- core/ldiff.c, each line one string in a list made at its size)
M.added = require("provision._core").diff_added

function M.unified(old, new, opts)
  opts = opts or {}
  old, new = old or "", new or ""
  if old == new then return {} end
  local context = opts.context or 3
  local out = { "--- " .. (opts.from or "a"), "+++ " .. (opts.to or "b") }
  if old == "" or new == "" then
    one_sided(out, 2, old == "" and new or old, old == "" and "+" or "-")
    return cut(out, opts.max_lines)
  end
  local a = split(old)
  local b = split(new)
  local es = edits(a, b)
  local i, n = 1, #es
  -- line numbers at each edit index
  local oa, ob = {}, {}
  local la, lb = 1, 1
  for j = 1, n do
    oa[j], ob[j] = la, lb
    local op = es[j][1]
    if op ~= "+" then la = la + 1 end
    if op ~= "-" then lb = lb + 1 end
  end
  while i <= n do
    -- next change
    while i <= n and es[i][1] == " " do i = i + 1 end
    if i > n then break end
    local s = math.max(1, i - context)
    -- extend the hunk while changes are within 2*context of each other
    local e = i
    local j = i
    while j <= n do
      if es[j][1] ~= " " then e = j; j = j + 1
      elseif j - e > 2 * context then break
      else j = j + 1 end
    end
    local last = math.min(n, e + context)
    local ca, cb = 0, 0
    for t = s, last do
      local op = es[t][1]
      if op ~= "+" then ca = ca + 1 end
      if op ~= "-" then cb = cb + 1 end
    end
    out[#out + 1] = ("@@ -%s +%s @@"):format(range(oa[s], ca), range(ob[s], cb))
    for t = s, last do
      local op, line = es[t][1], es[t][2]
      if line:sub(-#NOEOL) == NOEOL then
        out[#out + 1] = op .. line:sub(1, -#NOEOL - 1)
        out[#out + 1] = "\\ No newline at end of file"
      else
        out[#out + 1] = op .. line
      end
    end
    i = last + 1
  end
  return cut(out, opts.max_lines)
end

return M
