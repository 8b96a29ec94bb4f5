#!/usr/bin/env python3
"""bench/alternate.py: commands timed in alternation, one run of each per
round, each spawned directly (no shell, as hyperfine -N) and timed to its
exit; the median and minimum of each over the rounds. Alternating keeps a
slow minute of the machine from falling on one command only.

  python3 bench/alternate.py ROUNDS CMD...    (each CMD one quoted string)
  e.g. in a folder with bench/floor.sh's 10-step r.lua:
  python3 bench/alternate.py 201 /bin/true "NEW --version" "OLD --version" "NEW -q r.lua" "OLD -q r.lua"
"""
import os
import shlex
import statistics
import sys
import time

rounds = int(sys.argv[1])
cmds = [shlex.split(c) for c in sys.argv[2:]]
devnull = os.open(os.devnull, os.O_WRONLY)
times = [[] for _ in cmds]
for _ in range(rounds):
    for i, c in enumerate(cmds):
        t = time.perf_counter()
        pid = os.posix_spawnp(c[0], c, os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        os.waitpid(pid, 0)
        times[i].append((time.perf_counter() - t) * 1000)
for c, t in zip(sys.argv[2:], times):
    print("%-40s median %.2f ms  min %.2f ms" % (c, statistics.median(t), min(t)))
