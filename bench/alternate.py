#!/usr/bin/env python3
"""bench/alternate.py: commands timed in alternation, one run of each per
round, each spawned directly (no shell, as hyperfine -N) and timed to its
exit; the median and minimum of each over the rounds. Alternating keeps a
slow minute of the machine from falling on one command only.

  python3 bench/alternate.py ROUNDS CMD...    (each CMD one quoted string)
  e.g. in a folder with bench/floor.sh's 10-step r.lua:
  python3 bench/alternate.py 201 /bin/true "NEW --version" "OLD --version" "NEW -q r.lua" "OLD -q r.lua"

A CMD may start with NAME=value words: that command's environment (as
env(1) would set it, without running env). With ALT_OUT=DIR, each run's
stdout is kept in DIR/<command>.<round> (both from 1) and every run's time
is written to DIR/times, one "command round ms" line a run.
"""
import os
import shlex
import shutil
import statistics
import sys
import time

rounds = int(sys.argv[1])
cmds = []
for c in sys.argv[2:]:
    words, env = shlex.split(c), dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith(("/", ".")):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    if not words:
        sys.exit("alternate.py: no command in %r" % c)
    found = shutil.which(words[0], path=env.get("PATH"))   # (by the command's own PATH)
    if not found:
        sys.exit("alternate.py: %s: not found" % words[0])
    words[0:1] = [found, words[0]]   # the program, then argv[0] as given
    cmds.append((words, env))
out = os.environ.get("ALT_OUT")
devnull = os.open(os.devnull, os.O_WRONLY)
times = [[] for _ in cmds]
log = open(os.path.join(out, "times"), "w") if out else None
for r in range(1, rounds + 1):
    for i, (words, env) in enumerate(cmds, 1):
        fd = devnull
        if out:
            fd = os.open(os.path.join(out, "%d.%d" % (i, r)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        t = time.perf_counter()
        pid = os.posix_spawn(words[0], words[1:], env,
                              file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status = os.waitpid(pid, 0)
        ms = (time.perf_counter() - t) * 1000
        if fd != devnull:
            os.close(fd)
        if status != 0:
            sys.exit("alternate.py: %s failed (wait status %d)" % (sys.argv[1 + i], status))
        times[i - 1].append(ms)
        if log:
            log.write("%d %d %.3f\n" % (i, r, ms))
for c, t in zip(sys.argv[2:], times):
    print("%-40s median %.2f ms  min %.2f ms" % (c, statistics.median(t), min(t)))
