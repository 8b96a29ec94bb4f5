-- tests/lua/test_archive.lua: archive.extract / archive.create, with
-- ordinary and hostile archives crafted here (by python3's tarfile/zipfile).
local T = dofile "tests/lua/harness.lua"
local archive = require "provision.archive"
local A = require "provision._archive"
local H = require "provision._fs"
local core = require "provision._core"

local dir = T.tmpdir()

local function sh(cmd)
  local ok = os.execute(cmd)
  if not ok then error("command failed: " .. cmd, 2) end
end
local function exists(p) return (os.rename(p, p)) ~= nil end
local function read(p) return core.read_file(p) end
local function mode(p) local st = H.stat(p); return st and st.mode end
local function ls(p)
  local out = {}
  local f = io.popen("ls -A '" .. p .. "' 2>/dev/null")
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

-- python3 -c with the script as a file (tarfile writes what we ask, even '..')
local function py(script, ...)
  local path = dir .. "/craft.py"
  local f = assert(io.open(path, "w")); f:write(script); f:close()
  local args = {}
  for _, a in ipairs { ... } do args[#args + 1] = "'" .. a .. "'" end
  sh("python3 " .. path .. " " .. table.concat(args, " "))
end

local CRAFT = [[
import io, sys, tarfile, zipfile, time
out, kind = sys.argv[1], sys.argv[2]
entries = []  # (name, type, data_or_target, mode)
def f(name, data, mode=0o644): entries.append((name, "f", data, mode))
def d(name, mode=0o755): entries.append((name, "d", None, mode))
def l(name, target): entries.append((name, "l", target, 0o777))
def h(name, target): entries.append((name, "h", target, 0o644))
if kind == "good":
    d("top/"); f("top/a.txt", b"alpha\n"); d("top/sub/", 0o750)
    f("top/sub/run.sh", b"#!/bin/sh\necho hi\n", 0o755); l("top/link", "sub/run.sh")
    h("top/hard", "top/a.txt"); l("top/sub/up", "../a.txt")
elif kind == "dotdot": f("ok.txt", b"fine\n"); f("../evil.txt", b"evil\n")
elif kind == "dotdot2": f("a/../../evil.txt", b"evil\n")
elif kind == "absolute": f("ok.txt", b"fine\n"); f(sys.argv[3] + "/evil.txt", b"evil\n")
elif kind == "symlink_escape": l("esc", "../../outside"); f("ok.txt", b"fine\n")
elif kind == "symlink_abs": l("etc", "/etc")
elif kind == "symlink_write": l("esc", sys.argv[3]); f("esc/evil.txt", b"evil\n")
elif kind == "symlink_chain": l("s", "."); l("l", "s/.."); f("ok.txt", b"fine\n")
elif kind == "through_inside": d("sub/"); l("a", "sub"); f("a/file", b"x\n")
elif kind == "hardlink_escape": h("hl", "../../etc/passwd")
if out.endswith(".zip"):
    with zipfile.ZipFile(out, "w") as z:
        for name, t, data, mode in entries:
            zi = zipfile.ZipInfo(name); zi.external_attr = ((0o40000 if t == "d" else 0o100000) | mode) << 16
            z.writestr(zi, data or b"")
    sys.exit(0)
m = "w:gz" if out.endswith(".gz") else "w:xz" if out.endswith(".xz") else "w"
with tarfile.open(out, m, format=tarfile.PAX_FORMAT) as t:
    for name, typ, data, mode in entries:
        ti = tarfile.TarInfo(name); ti.mode = mode; ti.mtime = 1700000000
        if typ == "f": ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        elif typ == "d": ti.type = tarfile.DIRTYPE; t.addfile(ti)
        elif typ == "l": ti.type = tarfile.SYMTYPE; ti.linkname = data; t.addfile(ti)
        elif typ == "h": ti.type = tarfile.LNKTYPE; ti.linkname = data; t.addfile(ti)
]]
local function craft(out, kind, extra) py(CRAFT, out, kind, extra or "") return out end

local function new_ctx()
  local ctx = { state = {} }
  function ctx:created(e) self.state.created = self.state.created or {}; table.insert(self.state.created, e) end
  function ctx:log() end
  function ctx:detail(d) self.detail_text = d end
  function ctx:progress() end
  return ctx
end

T.test("extract: tar.gz with modes, symlinks, hard links", function()
  local src = craft(dir .. "/good.tar.gz", "good")
  local dest = dir .. "/x1"
  local r = archive.extract { src = src, dest = dest }
  local ctx = new_ctx()
  T.eq((r:check(ctx)), false)
  local res = assert(r:apply(ctx))
  T.eq(res.entries, 7)
  T.eq(read(dest .. "/top/a.txt"), "alpha\n")
  T.eq(read(dest .. "/top/link"), "#!/bin/sh\necho hi\n")
  T.eq(read(dest .. "/top/sub/up"), "alpha\n")
  T.eq(read(dest .. "/top/hard"), "alpha\n")
  T.eq(mode(dest .. "/top/sub/run.sh") & 0x1ff, 493)
  T.eq(mode(dest .. "/top/sub") & 0x1ff, 488)
  T.match(ctx.detail_text, "7 entries")
  T.eq(r:check(ctx), true)
  T.eq(ls(dir .. ""), ls(dir)) -- no staging folder left
  for _, n in ipairs(ls(dir)) do T.ok(not n:find("provision%-extract"), "staging left: " .. n) end
  -- the archive changes: extract again
  craft(src, "through_inside")
  local ok, why = r:check(ctx)
  T.eq(ok, false); T.match(why, "changed")
end)

T.test("extract: a no-op check reads the archive only when its stamp changed", function()
  local src = craft(dir .. "/stamp.tar", "good")
  local dest = dir .. "/xs"
  local r = archive.extract { src = src, dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  local real, reads = H.sha256, 0
  H.sha256 = function(p) reads = reads + 1; return real(p) end
  local ok, err = pcall(function()
    T.eq(r:check(ctx), true)
    T.eq(reads, 0, "the archive is the one extracted: not read again")
    -- the same bytes in another file (a new inode): read once, still ok
    sh(("cp '%s' '%s.new' && mv '%s.new' '%s'"):format(src, src, src, src))
    T.eq(r:check(ctx), true)
    T.eq(reads, 1)
    -- changed in place, size and mtime put back: the ctime tells, it is read
    sh(("cp -p '%s' '%s.ref' && printf X | dd of='%s' bs=1 seek=600 conv=notrunc 2>/dev/null && touch -r '%s.ref' '%s'")
      :format(src, src, src, src, src))
    local ok2, why = r:check(ctx)
    T.eq(ok2, false); T.match(why, "changed since it was extracted")
    T.eq(reads, 2)
  end)
  H.sha256 = real
  if not ok then error(err, 0) end
end)

T.test("extract: strip_components and creates", function()
  local src = craft(dir .. "/good2.tar", "good")
  local dest = dir .. "/x2"
  local r = archive.extract { src = src, dest = dest, strip_components = 1, creates = dest .. "/sub/run.sh" }
  local ctx = new_ctx()
  T.eq((r:check(ctx)), false)
  assert(r:apply(ctx))
  T.eq(read(dest .. "/a.txt"), "alpha\n")
  T.eq(read(dest .. "/link"), "#!/bin/sh\necho hi\n")
  T.ok(not exists(dest .. "/top"))
  T.eq(r:check(new_ctx()), true)   -- creates is there: no state needed
end)

T.test("extract: a new strip_components or owner extracts again (no creates)", function()
  local src = craft(dir .. "/good5.tar", "good")
  local dest = dir .. "/x5"
  local ctx = new_ctx()
  assert(archive.extract { src = src, dest = dest }:apply(ctx))
  T.eq(read(dest .. "/top/a.txt"), "alpha\n")
  -- check says why it extracts again, apply does, and check is then content
  local function again(opts, why)
    local r = archive.extract { src = src, dest = dest, strip_components = opts.strip, owner = opts.owner }
    local ok, msg = r:check(ctx)
    T.eq(ok, false); T.match(msg, why)
    assert(r:apply(ctx))
    T.eq(r:check(ctx), true)
  end
  again({ strip = 1 }, "strip_components 0 %-> 1")
  T.eq(read(dest .. "/a.txt"), "alpha\n")
  again({ strip = 1, owner = true }, "owner false %-> true")
  -- a state saved before these were recorded does not say how it was
  -- extracted: once more (taken as it was, a new strip_components was never
  -- applied), and from then on a change is seen
  ctx.state.strip_components, ctx.state.owner = nil, nil
  again({ strip = 1, owner = true }, "how it was extracted is not recorded")
  again({}, "strip_components 1 %-> 0")
end)

T.test("extract: a new dest extracts there; revert removes the earlier dest it created too", function()
  local src = craft(dir .. "/good6.tar", "good")
  local ctx = new_ctx()
  assert(archive.extract { src = src, dest = dir .. "/x6a" }:apply(ctx))
  local r = archive.extract { src = src, dest = dir .. "/x6b" }
  T.eq((r:check(ctx)), false)
  assert(r:apply(ctx))
  T.eq(r:check(ctx), true)
  T.eq(read(dir .. "/x6b/top/a.txt"), "alpha\n")
  assert(r:revert(ctx))
  T.ok(not exists(dir .. "/x6b"))
  T.ok(not exists(dir .. "/x6a"), "the first dest, made by this resource too, is removed")
end)

T.test("extract: zip and tar.xz", function()
  local z = craft(dir .. "/good.zip", "good")
  assert(archive.extract { src = z, dest = dir .. "/xz1" }:apply(new_ctx()))
  T.eq(read(dir .. "/xz1/top/sub/run.sh"), "#!/bin/sh\necho hi\n")
  local x = craft(dir .. "/good.tar.xz", "good")
  assert(archive.extract { src = x, dest = dir .. "/xz2" }:apply(new_ctx()))
  T.eq(read(dir .. "/xz2/top/a.txt"), "alpha\n")
end)

T.test("extract: into an existing folder merges; revert removes only what it added", function()
  local dest = dir .. "/x3"
  sh("mkdir -p " .. dest .. "/top && echo mine > " .. dest .. "/keep.txt && echo old > " .. dest .. "/top/a.txt")
  local r = archive.extract { src = craft(dir .. "/good3.tar", "good"), dest = dest }
  local ctx = new_ctx()
  assert(r:apply(ctx))
  T.eq(read(dest .. "/top/a.txt"), "alpha\n")
  T.eq(read(dest .. "/keep.txt"), "mine\n")
  T.eq(ctx.state.created, nil)           -- top/ was already there: nothing new at the top
  local r2 = archive.extract { src = craft(dir .. "/good4.tar", "good"), dest = dest, strip_components = 1 }
  local ctx2 = new_ctx()
  assert(r2:apply(ctx2))
  -- the manifest: every entry it placed; what was there before marked "="
  local ours, before = {}, {}
  for rel, code in pairs(ctx2.state.files) do
    if code:sub(1, 1) == "=" then before[#before + 1] = rel else ours[#ours + 1] = rel end
  end
  table.sort(ours); table.sort(before)
  T.eq(ours, { "a.txt", "hard", "link", "sub", "sub/run.sh", "sub/up" })
  T.eq(before, {})
  local first = {}
  for rel, code in pairs(ctx.state.files) do if code:sub(1, 1) == "=" then first[#first + 1] = rel end end
  table.sort(first)
  T.eq(first, { "top", "top/a.txt" }, "the first extract: top/ and top/a.txt were there before")
  assert(r2:revert(ctx2))
  T.ok(not exists(dest .. "/a.txt")); T.ok(not exists(dest .. "/sub"))
  T.eq(read(dest .. "/keep.txt"), "mine\n")
end)

T.test("extract: a file in dest where the archive has a folder, or the reverse, fails and changes nothing", function()
  local base = T.tmpdir()
  -- the archive: new.txt, x/ with x/f (a file), y/ with y/g/
  sh("mkdir -p " .. base .. "/src/x " .. base .. "/src/y/g && echo new > " .. base .. "/src/new.txt && echo f > "
    .. base .. "/src/x/f && tar -C " .. base .. "/src -cf " .. base .. "/a.tar new.txt x y")
  local dest = base .. "/work/dest"
  -- dest has a file x where the archive has a folder
  sh("mkdir -p " .. dest .. " && echo mine > " .. dest .. "/x")
  local ok, err = archive.extract { src = base .. "/a.tar", dest = dest }:apply(new_ctx())
  T.eq(ok, nil)
  T.eq(err, dest .. "/x is a file where the archive has a folder; nothing was extracted (move it away, or extract elsewhere)")
  T.eq(ls(dest), { "x" }); T.eq(read(dest .. "/x"), "mine\n")
  T.eq(ls(base .. "/work"), { "dest" })          -- no staging folder left
  -- dest has a folder x/f (with a file in it) where the archive has a file:
  -- it was removed with all it held, and the archive's file put there
  sh("rm " .. dest .. "/x && mkdir -p " .. dest .. "/x/f && echo keep > " .. dest .. "/x/f/keep")
  ok, err = archive.extract { src = base .. "/a.tar", dest = dest }:apply(new_ctx())
  T.eq(ok, nil)
  T.eq(err, dest .. "/x/f is a folder where the archive has a file; nothing was extracted (move it away, or extract elsewhere)")
  T.eq(read(dest .. "/x/f/keep"), "keep\n")
  T.eq(ls(dest), { "x" })
  -- a symbolic link where the archive has a folder: refused, never followed
  sh("rm -r " .. dest .. "/x && mkdir " .. base .. "/elsewhere && ln -s " .. base .. "/elsewhere " .. dest .. "/y")
  ok, err = archive.extract { src = base .. "/a.tar", dest = dest }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "/y is a symbolic link where the archive has a folder")
  T.eq(ls(base .. "/elsewhere"), {})
  -- out of the way, it extracts
  sh("rm " .. dest .. "/y")
  assert(archive.extract { src = base .. "/a.tar", dest = dest }:apply(new_ctx()))
  T.eq(read(dest .. "/x/f"), "f\n"); T.eq(read(dest .. "/new.txt"), "new\n")
end)

local function hostile(kind, pattern, extra, ext)
  T.test("extract: hostile archive (" .. kind .. (ext or ".tar") .. ") fails and writes nothing", function()
    local base = T.tmpdir()
    sh("mkdir -p " .. base .. "/work")
    local src = craft(base .. "/h" .. (ext or ".tar"), kind, extra)
    local dest = base .. "/work/dest"
    local ok, err = archive.extract { src = src, dest = dest }:apply(new_ctx())
    T.eq(ok, nil)
    T.match(err, "hostile archive")
    T.match(err, pattern)
    T.ok(not exists(dest), "dest not created")
    T.eq(ls(base .. "/work"), {})          -- no staging folder left
    T.ok(not exists(base .. "/evil.txt") and not exists(base .. "/work/evil.txt"), "nothing outside")
    T.ok(not exists(base .. "/outside/evil.txt"))
    return base
  end)
end
hostile("dotdot", "'%.%.' component")
hostile("dotdot2", "'%.%.' component")
hostile("dotdot", "'%.%.' component", nil, ".zip")
hostile("absolute", "absolute path", dir .. "/abs-target")
hostile("symlink_escape", "outside the destination")
hostile("symlink_abs", "absolute path '/etc'")
hostile("symlink_write", "absolute path", dir .. "/outside")
hostile("symlink_chain", "outside the destination")
hostile("hardlink_escape", "hard link")

T.test("extract: hostile absolute entry did not land at its absolute path", function()
  T.ok(not exists(dir .. "/abs-target/evil.txt"))
  T.ok(not exists(dir .. "/outside/evil.txt"))
end)

T.test("extract: an entry below a symlink never goes through it", function()
  -- sub/, a -> sub, a/file: libarchive replaces the link by a real folder
  assert(archive.extract { src = craft(dir .. "/ti.tar", "through_inside"), dest = dir .. "/x5" }:apply(new_ctx()))
  T.eq(read(dir .. "/x5/a/file"), "x\n")
  T.ok(not exists(dir .. "/x5/sub/file"), "nothing written through the link")
end)

T.test("extract: a missing or broken archive fails cleanly", function()
  local ok, err = archive.extract { src = dir .. "/nope.tar", dest = dir .. "/x6" }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "nope.tar")
  local f = assert(io.open(dir .. "/junk.tar.gz", "w")); f:write("not an archive at all"); f:close()
  ok, err = archive.extract { src = dir .. "/junk.tar.gz", dest = dir .. "/x6" }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "junk")
  T.ok(not exists(dir .. "/x6"))
end)

-- a tree to archive: modes, a symlink, a hard link, an empty folder
local tree = dir .. "/tree"
sh(("mkdir -p %s/bin %s/etc %s/empty && printf 'root:x:0:0::/root:/bin/sh\\n' > %s/etc/passwd && "
  .. "printf '#!/bin/sh\\n' > %s/bin/tool && chmod 0755 %s/bin/tool && chmod 0600 %s/etc/passwd && "
  .. "ln -s bin/tool %s/tool-link && ln %s/etc/passwd %s/etc/passwd-hard"):format(
  tree, tree, tree, tree, tree, tree, tree, tree, tree, tree))

T.test("create: tar for an image root filesystem (owner root, modes, links)", function()
  local out = dir .. "/rootfs.tar"
  local r = archive.create { src = tree, dest = out, owner = "root", mtime = 0 }
  local ctx = new_ctx()
  T.eq((r:check(ctx)), false)
  local res = assert(r:apply(ctx))
  T.eq(res.entries, 7)
  local list = assert(A.list(out))
  local names, by = {}, {}
  for _, e in ipairs(list) do names[#names + 1] = e.path; by[e.path:gsub("/$", "")] = e end
  T.eq(names, { "bin/", "bin/tool", "empty/", "etc/", "etc/passwd", "etc/passwd-hard", "tool-link" })
  T.eq(by["bin/tool"].mode, 493)
  T.eq(by["etc/passwd"].mode, 384)
  T.eq(by["tool-link"].link, "bin/tool")
  T.eq(by["etc/passwd-hard"].hardlink, "etc/passwd")
  for _, e in ipairs(list) do
    T.eq(e.uid, 0); T.eq(e.gid, 0); T.eq(e.uname, "root"); T.eq(e.mtime, 0)
  end
  T.eq(r:check(ctx), true)
  -- a change in the tree makes it pending
  sh("touch -d @1 " .. tree .. "/empty")
  local ok, why = r:check(ctx)
  T.eq(ok, false); T.match(why, "changed")
end)

T.test("create: the same tree gives the same bytes (tar, tar.gz, tar.xz, zip)", function()
  for _, fmt in ipairs { "tar", "tar.gz", "tar.xz", "zip" } do
    local a, b = dir .. "/d1." .. fmt, dir .. "/d2." .. fmt
    assert(archive.create { src = tree, dest = a, mtime = 1700000000 }:apply(new_ctx()))
    core.sleep(1.05)   -- a later clock must not show
    assert(archive.create { src = tree, dest = b, mtime = 1700000000 }:apply(new_ctx()))
    T.eq(H.sha256(a), H.sha256(b), fmt)
    T.eq(archive.create { src = tree, dest = a }.format, fmt)
  end
end)

T.test("create then extract: the same tree comes back", function()
  for _, fmt in ipairs { "tar.gz", "zip" } do
    local a = dir .. "/rt." .. fmt
    assert(archive.create { src = tree, dest = a }:apply(new_ctx()))
    local back = dir .. "/rt-" .. fmt
    assert(archive.extract { src = a, dest = back }:apply(new_ctx()))
    T.eq(read(back .. "/etc/passwd"), read(tree .. "/etc/passwd"))
    T.eq(mode(back .. "/bin/tool") & 0x1ff, 493)
    T.eq(read(back .. "/tool-link"), "#!/bin/sh\n")
    local ok = os.execute(("diff -r --no-dereference '%s' '%s' >/dev/null"):format(tree, back))
    T.ok(ok, fmt .. ": the trees are the same")
  end
end)

T.test("create: bad options raise; a missing src fails; no temp file", function()
  T.raises(function() archive.create { src = tree, dest = "x.rar", format = "rar" } end, "format")
  T.raises(function() archive.create { src = tree, dest = "x.tar", owner = "bob" } end, "owner")
  local ok, err = archive.create { src = dir .. "/nope", dest = dir .. "/n.tar" }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "nope")
  for _, n in ipairs(ls(dir)) do T.ok(not n:find("^n%.tar"), "left " .. n) end
end)

T.test("extract: a dest that cannot be looked up fails with the reason, nothing left", function()
  -- lstat(dest) fails with ENOTDIR, not ENOENT: the reason, not a guess
  local base = T.tmpdir()
  sh("printf x > " .. base .. "/file")
  local ok, err = archive.extract { src = craft(base .. "/g.tar", "good"), dest = base .. "/file/" }:apply(new_ctx())
  T.eq(ok, nil)
  T.eq(err, base .. "/file/: Not a directory")
  T.eq(read(base .. "/file"), "x")
  for _, n in ipairs(ls(base)) do T.ok(not n:find("provision%-extract"), "staging left: " .. n) end
end)

-- special entries and setuid/setgid bits (crafted here: device files, FIFOs)
local FS = require "provision._fs"
local SPECIAL = [[
import io, sys, tarfile
out, kind = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, typ, mode, data=None, **kw):
        ti = tarfile.TarInfo(name); ti.type = typ; ti.mode = mode; ti.mtime = 1700000000
        for k, v in kw.items(): setattr(ti, k, v)
        if data is not None: ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        else: t.addfile(ti)
    add("ok.txt", tarfile.REGTYPE, 0o644, b"fine\n")
    if kind == "chardev": add("null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=1)
    elif kind == "blockdev": add("disk", tarfile.BLKTYPE, 0o660, devmajor=7, devminor=0)
    elif kind == "fifo": add("pipe", tarfile.FIFOTYPE, 0o666)
    elif kind == "setid":
        add("suid", tarfile.REGTYPE, 0o4755, b"#!/bin/sh\n")
        add("sgid", tarfile.REGTYPE, 0o2711, b"#!/bin/sh\n")
        add("shared", tarfile.DIRTYPE, 0o3775)
        add("shared/x", tarfile.REGTYPE, 0o6755, b"x\n")
]]
local function special(out, kind) py(SPECIAL, out, kind) return out end

for _, c in ipairs {
  { "chardev", "null", "character device" }, { "blockdev", "disk", "block device" }, { "fifo", "pipe", "FIFO" },
} do
  local kind, name, what = c[1], c[2], c[3]
  T.test("extract: a " .. what .. " entry is refused unless owner = true; nothing written", function()
    local base = T.tmpdir()
    sh("mkdir -p " .. base .. "/work/merge && echo mine > " .. base .. "/work/merge/keep")
    local src = special(base .. "/s.tar", kind)
    local ok, err = archive.extract { src = src, dest = base .. "/work/dest" }:apply(new_ctx())
    T.eq(ok, nil)
    T.match(err, "refusing entry '" .. name .. "': it is a " .. what)
    T.match(err, "owner = true")
    T.ok(not exists(base .. "/work/dest"), "dest not created")
    -- into an existing folder: not even the harmless entry before it lands
    ok, err = archive.extract { src = src, dest = base .. "/work/merge" }:apply(new_ctx())
    T.eq(ok, nil); T.match(err, "refusing entry '" .. name .. "'")
    T.eq(ls(base .. "/work/merge"), { "keep" })
    T.eq(ls(base .. "/work"), { "merge" })          -- no staging folder left
  end)
end

T.test("extract: setuid/setgid bits are dropped unless owner = true", function()
  local base = T.tmpdir()
  local src = special(base .. "/s.tar", "setid")
  assert(archive.extract { src = src, dest = base .. "/plain" }:apply(new_ctx()))
  T.eq(FS.lstat(base .. "/plain/suid").mode, tonumber("755", 8))
  T.eq(FS.lstat(base .. "/plain/sgid").mode, tonumber("711", 8))
  T.eq(FS.lstat(base .. "/plain/shared").mode, tonumber("1775", 8))   -- sticky stays
  T.eq(FS.lstat(base .. "/plain/shared/x").mode, tonumber("755", 8))
  T.eq(read(base .. "/plain/suid"), "#!/bin/sh\n")
  -- a trusted archive (owner = true) keeps them, and its device files
  assert(archive.extract { src = src, dest = base .. "/trusted", owner = true }:apply(new_ctx()))
  T.eq(FS.lstat(base .. "/trusted/suid").mode, tonumber("4755", 8))
  T.eq(FS.lstat(base .. "/trusted/sgid").mode, tonumber("2711", 8))
  T.eq(FS.lstat(base .. "/trusted/shared").mode, tonumber("3775", 8))
  T.eq(FS.lstat(base .. "/trusted/shared/x").mode, tonumber("6755", 8))
  assert(archive.extract { src = special(base .. "/d.tar", "chardev"), dest = base .. "/dev", owner = true }:apply(new_ctx()))
  local st = FS.lstat(base .. "/dev/null")
  T.eq(st.type, "device"); T.eq(st.mode, tonumber("666", 8))
  assert(archive.extract { src = special(base .. "/f.tar", "fifo"), dest = base .. "/dev", owner = true }:apply(new_ctx()))
  T.eq(FS.lstat(base .. "/dev/pipe").type, "fifo")
end)

T.test("extract as non-root: read-only folders extract again, merge, fail and get removed without a trace", function()
  -- a read-only folder (0555) must take entries on the second extract and
  -- when the staging folder is removed after a failure; 0300 hides symlinks
  -- from a walk unless opened
  local RO = [[
import io, sys, tarfile
out, kind = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, mode, data=None, link=None):
        ti = tarfile.TarInfo(name); ti.mode = mode; ti.mtime = 1700000000
        if link is not None: ti.type = tarfile.SYMTYPE; ti.linkname = link; t.addfile(ti)
        elif data is None: ti.type = tarfile.DIRTYPE; t.addfile(ti)
        else: ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    add("ro", 0o555); add("ro/f", 0o644, b"one\n"); add("ro/sub", 0o555); add("ro/sub/g", 0o444, b"g\n")
    add("ro/wo", 0o300); add("ro/wo/h", 0o644, b"h\n")
    if kind == "more": add("ro/new.txt", 0o644, b"new\n"); add("ro/sub/nd", 0o555); add("ro/sub/nd/x", 0o644, b"x\n")
    if kind == "bad": add("../evil.txt", 0o644, b"evil\n")
    if kind == "hidden": add("ro/wo/esc", 0o777, link="../../../outside")
]]
  local base = T.tmpdir()
  local work = base .. "/work"
  sh("mkdir -p " .. work .. " && chmod 755 " .. base .. " && chown 65534:65534 " .. work)
  local src = {}
  for _, k in ipairs { "plain", "more", "bad", "hidden" } do
    src[k] = base .. "/" .. k .. ".tar"
    py(RO, src[k], k)
  end
  local script = base .. "/as-nobody.lua"
  local f = assert(io.open(script, "w"))
  f:write(([[
local A = require "provision._archive"
local FS = require "provision._fs"
local work = %q
local function show(r, e) print(r and "ok" or ("fail " .. tostring(e))) end
local n = 0
local function extract(src, dest)
  n = n + 1
  local name = ".t.provision-extract." .. n
  local id = assert(A.stage { dest = dest, name = name })
  return A.extract { src = src, dest = dest, staging = name, staging_id = id }
end
show(extract(%q, work .. "/dest"))
show(extract(%q, work .. "/dest"))
show(extract(%q, work .. "/dest"))
show(extract(%q, work .. "/dest"))
show(extract(%q, work .. "/fresh"))
show(extract(%q, work .. "/gone"))
show(FS.remove_tree(work .. "/gone"))
]]):format(work, src.plain, src.plain, src.more, src.bad, src.hidden, src.plain))
  f:close()
  sh("chmod 644 " .. script)
  local p = io.popen(("setpriv --reuid=65534 --regid=65534 --clear-groups %s --script %s 2>&1")
    :format(os.getenv("PROVISION") or "./provision", script))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  T.eq(out[1], "ok", "first extract")
  T.eq(out[2], "ok", "the same again, over read-only folders")
  T.eq(out[3], "ok", "more entries into read-only folders")
  T.match(out[4], "^fail .*hostile archive")
  T.match(out[5], "^fail .*symlink 'ro/wo/esc'")        -- found inside a 0300 folder
  T.eq(out[7], "ok", "remove_tree of a read-only tree")
  T.eq(ls(work), { "dest" })                             -- no staging folder, no fresh, no gone
  local d = work .. "/dest/ro"
  T.eq(mode(d) & 0xfff, tonumber("555", 8))
  T.eq(mode(d .. "/sub") & 0xfff, tonumber("555", 8))
  T.eq(mode(d .. "/sub/nd") & 0xfff, tonumber("555", 8))
  T.eq(read(d .. "/f"), "one\n"); T.eq(read(d .. "/new.txt"), "new\n"); T.eq(read(d .. "/sub/nd/x"), "x\n")
  T.eq(ls(d), { "f", "new.txt", "sub", "wo" })
  local st = require("provision._fs").lstat(d .. "/wo")
  T.eq(st.mode, tonumber("300", 8)); T.eq(st.uid, 65534)
  T.ok(not exists(base .. "/evil.txt") and not exists(work .. "/evil.txt"))
end)

T.test("create: a dest inside src archives neither itself nor its temp file, and converges", function()
  local src = T.tmpdir()
  sh("echo a > " .. src .. "/a.txt && mkdir " .. src .. "/sub && echo b > " .. src .. "/sub/b.txt")
  local function names(p)
    local out = {}
    for _, e in ipairs(assert(A.list(p))) do out[#out + 1] = e.path end
    return out
  end
  for _, dest in ipairs { src .. "/out.tar", src .. "/sub/out.zip" } do
    local r = archive.create { src = src, dest = dest }
    local ctx = new_ctx()
    assert(r:apply(ctx))
    local want = { "a.txt", "sub/", "sub/b.txt" }
    T.eq(names(dest), want, dest)
    T.eq({ r:check(ctx) }, { true }, "the archive it made is no change in src")
    assert(r:apply(ctx))                    -- again: the previous archive stays out
    T.eq(names(dest), want, dest .. " (second run)")
    T.eq(r:check(ctx), true)
    sh("echo c > " .. src .. "/c.txt")      -- a real change still shows
    T.eq((r:check(ctx)), false)
    sh("rm " .. src .. "/c.txt")
    os.remove(dest)
  end
end)

T.test("create: made again (src or format changed), the archive is still removed at revert", function()
  local src = T.tmpdir()
  sh("echo a > " .. src .. "/a.txt")
  local dest = dir .. "/again.pkg"
  local ctx = new_ctx()
  assert(archive.create { src = src, dest = dest }:apply(ctx))
  sh("echo b > " .. src .. "/a.txt")
  local r = archive.create { src = src, dest = dest, format = "zip" }
  T.eq((r:check(ctx)), false)
  assert(r:apply(ctx))
  T.eq(r:check(ctx), true)
  T.eq(#ctx.state.created, 1)
  T.eq(ctx.state.created[1].sha256, H.sha256(dest))
  assert(r:revert(ctx))
  T.ok(not exists(dest), "removed, not left as 'changed since it was written'")
end)

return T.done()
