-- tests/lua/test_diff.lua: provision.diff against GNU diff: every diff we
-- make applies (old + our hunks = new), is as small as GNU diff's, and a
-- 10,000-line file is quick.
local T = dofile "tests/lua/harness.lua"
local D = require "provision.diff"
local core = require "provision._core"

-- apply a unified diff (our output) to old; returns the new text
local function patch(old, lines)
  local a = D.split(old)
  local out, ai = {}, 1
  local i = 3
  while i <= #lines do
    local os_ = lines[i]:match("^@@ %-(%d+)")
    assert(os_, "expected a hunk header at " .. i .. ": " .. tostring(lines[i]))
    local start = tonumber(os_)
    local count = lines[i]:match("^@@ %-%d+,(%d+)")
    if count == "0" then start = start + 1 end
    while ai < start do out[#out + 1] = a[ai]; ai = ai + 1 end
    i = i + 1
    while i <= #lines and not lines[i]:match("^@@") do
      local op, text = lines[i]:sub(1, 1), lines[i]:sub(2)
      local noeol = lines[i + 1] == "\\ No newline at end of file"
      if noeol then text = text .. "\0noeol" end
      if op == " " then assert(a[ai] == text, "context mismatch at line " .. ai); out[#out + 1] = text; ai = ai + 1
      elseif op == "-" then assert(a[ai] == text, "removed line mismatch at " .. ai); ai = ai + 1
      elseif op == "+" then out[#out + 1] = text
      else error("bad line " .. lines[i]) end
      i = i + (noeol and 2 or 1)
    end
  end
  while ai <= #a do out[#out + 1] = a[ai]; ai = ai + 1 end
  local s = {}
  for k, l in ipairs(out) do
    if l:sub(-6) == "\0noeol" then s[k] = l:sub(1, -7) else s[k] = l .. "\n" end
  end
  return table.concat(s)
end

local function changed_lines(lines)
  local n = 0
  for k = 3, #lines do
    local c = lines[k]:sub(1, 1)
    if (c == "+" or c == "-") and not lines[k]:match("^%+%+%+ ") and not lines[k]:match("^%-%-%- ") then n = n + 1 end
  end
  return n
end

local dir = T.tmpdir()
local function gnu(old, new)
  local fa, fb = dir .. "/a", dir .. "/b"
  local f = io.open(fa, "wb"); f:write(old); f:close()
  f = io.open(fb, "wb"); f:write(new); f:close()
  local p = io.popen("diff -u " .. fa .. " " .. fb)
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

T.test("equal texts: no lines", function()
  T.eq(D.unified("a\nb\n", "a\nb\n"), {})
end)

T.test("the exact output of a small change", function()
  T.eq(D.unified("a\nb\nc\n", "a\nB\nc\n", { from = "x", to = "y" }),
    { "--- x", "+++ y", "@@ -1,3 +1,3 @@", " a", "-b", "+B", " c" })
  T.eq(D.unified("", "new\n"), { "--- a", "+++ b", "@@ -0,0 +1 @@", "+new" })
  T.eq(D.unified("x", "x\n"), { "--- a", "+++ b", "@@ -1 +1 @@", "-x", "\\ No newline at end of file", "+x" })
end)

T.test("hunks and line numbers match GNU diff -u", function()
  local old, new = {}, {}
  for i = 1, 40 do old[i] = "line " .. i end
  for i = 1, 40 do new[i] = old[i] end
  new[5] = "changed 5"; table.insert(new, 20, "inserted"); table.remove(new, 35)
  local a, b = table.concat(old, "\n") .. "\n", table.concat(new, "\n") .. "\n"
  local ours, theirs = D.unified(a, b), gnu(a, b)
  for k = 3, #theirs do T.eq(ours[k], theirs[k], "line " .. k) end
  T.eq(#ours, #theirs)
end)

T.test("random edits: our diff applies and is as small as GNU diff's", function()
  math.randomseed(42)
  local words = { "alpha", "beta", "gamma", "delta", "", "{", "}", "x = 1" }
  for round = 1, 150 do
    local old = {}
    for i = 1, math.random(0, 30) do old[i] = words[math.random(#words)] end
    local new = {}
    for _, l in ipairs(old) do
      local r = math.random()
      if r < 0.15 then -- luacheck: ignore 542 (drop it)
      elseif r < 0.3 then new[#new + 1] = words[math.random(#words)]
      else new[#new + 1] = l end
      if math.random() < 0.1 then new[#new + 1] = words[math.random(#words)] end
    end
    local a = table.concat(old, "\n") .. (math.random() < 0.8 and #old > 0 and "\n" or "")
    local b = table.concat(new, "\n") .. (math.random() < 0.8 and #new > 0 and "\n" or "")
    local ours = D.unified(a, b)
    if a == b then T.eq(ours, {}) else
      T.eq(patch(a, ours), b, "round " .. round)
      T.eq(changed_lines(ours), changed_lines(gnu(a, b)), "round " .. round .. " size")
    end
  end
end)

T.test("10,000 lines: scattered changes and a complete rewrite stay fast", function()
  local t = {}
  for i = 1, 10000 do t[i] = "line " .. i end
  local old = table.concat(t, "\n") .. "\n"
  for i = 1, 10000, 97 do t[i] = "changed " .. i end
  local new = table.concat(t, "\n") .. "\n"
  local t0 = core.now()
  local d = D.unified(old, new)
  local s1 = core.now() - t0
  T.eq(patch(old, d), new)
  T.eq(changed_lines(d), 2 * 104)
  local u = {}
  for i = 1, 10000 do u[i] = (i % 3 == 0) and ("line " .. i) or ("other " .. i) end
  local other = table.concat(u, "\n") .. "\n"
  t0 = core.now()
  d = D.unified(old, other)
  local s2 = core.now() - t0
  T.eq(patch(old, d), other)
  T.ok(s1 < 0.5, ("scattered: %.2fs"):format(s1))
  T.ok(s2 < 2, ("rewrite: %.2fs"):format(s2))
end)

T.test("max_lines cuts a long diff and says how much is left", function()
  local d = D.unified("", ("x\n"):rep(50), { max_lines = 10 })
  T.eq(#d, 11)
  T.eq(d[11], "... (43 more diff lines)")
end)

T.test("added: a head line, then a new file's diff, as unified from /dev/null makes it", function()
  local texts = { "a\n", "a\nb\n", "no newline", "a\n\nb", ("x\n"):rep(50), "\n", "\n\n", "x", "a\nb",
                  ("x\n"):rep(9) .. "y", ("x\n"):rep(10) .. "y", ("l\n"):rep(300), " \n\t\n",
                  ("long"):rep(2000) .. "\nshort", "nul\0inside\n", "cr\r\nlf\n" }
  for _, text in ipairs(texts) do
    local want = D.unified("", text, { from = "/dev/null", to = "p/f", max_lines = 10 })
    local got = D.added("+ p/f (a line before)", text, "p/f", 10)
    T.eq(got[1], "+ p/f (a line before)", "the head comes first")
    T.eq({ table.unpack(got, 2) }, want, ("%q"):format(text:sub(1, 12)))
  end
  T.eq(D.added("x", "", "p/f", 10), { "x" }, "empty content: no diff lines")
  for _, text in ipairs(texts) do
    local got = D.added("h", text, "p/f")
    T.eq({ table.unpack(got, 2) }, D.unified("", text, { from = "/dev/null", to = "p/f" }),
      ("no max_lines: %q"):format(text:sub(1, 12)))
    -- (each side checked by applying it, as GNU patch would)
    T.eq(patch("", { table.unpack(got, 2) }), text, ("added applies: %q"):format(text:sub(1, 12)))
    T.eq(patch(text, D.unified(text, "")), "", ("all removed applies: %q"):format(text:sub(1, 12)))
  end
end)

-- added is C (core/ldiff.c), unified's one-sided case Lua: random texts and
-- every cut from none to past the end agree (a miscount of the lines, of
-- the cut or of a last line without "\n" shows here)
T.test("added: random texts and every max_lines agree with unified", function()
  math.randomseed(19)
  local pieces = { "a", "bb", "\n", "\n", "\n\n", " ", "\t", "\0", "\r", "\xc3\xa9", "line of text" }
  for round = 1, 300 do
    local t = {}
    for i = 1, math.random(0, 40) do t[i] = pieces[math.random(#pieces)] end
    local text = table.concat(t)
    local to = round % 7 == 0 and ("dir/"):rep(20) .. "f" or "f" .. round
    for _, max in ipairs({ 0, 1, 2, 3, 4, 5, 8, 13, 200, math.random(0, 50) }) do
      local want = text == "" and {} or D.unified("", text, { from = "/dev/null", to = to, max_lines = max })
      local got = D.added("head", text, to, max)
      T.eq(got[1], "head")
      T.eq({ table.unpack(got, 2) }, want, ("%q, max_lines %d"):format(text, max))
    end
  end
end)

T.test("added: bad arguments are errors, not a crash", function()
  for _, args in ipairs({ { nil, "x", "p" }, { "h", nil, "p" }, { "h", "x", {} }, { "h", "x", "p", "many" } }) do
    local ok, err = pcall(D.added, table.unpack(args, 1, 4))
    T.eq(ok, false)
    T.ok(tostring(err):find("bad argument"), tostring(err))
  end
end)

os.exit(T.done())
