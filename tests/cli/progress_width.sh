#!/bin/bash
# The progress line fits the terminal (issue 18: it was cut at 80 columns,
# "ETA 11.6"): COLUMNS when set, else the tty's width (TIOCGWINSZ); the bar
# narrows and a long label is cut ("…") so that the size, rate and ETA
# always show whole. Through a pty (script, util-linux).
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
command -v script > /dev/null || { skip "progress width" "no script (util-linux)"; exit 0; }
start_httpd
RC=0 OUT="" ERR=""
NAME=a-very-long-file-name-for-the-compose-file-of-this-project-docker-compose.yaml
cat > d.lua <<EOF2
recipe { name = "progress" }
step "download" { http.file { url = "$BASE/slow/x?size=400000&rate=200000", dest = "./$NAME" } }
EOF2
# frames COLS: each redraw of the progress line, then "cols=N" per frame
frames() { # output file
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace", newline="").read()
for part in re.split(r"\r", text):
    part = part.replace("\x1b[K", "")
    if part.startswith("  ") and "KiB" in part and "[1/1]" not in part:
        print("%d|%s" % (len(part), part))
PY
}
pty_run() { # "stty ...; " prefix, env...
    rm -rf .provision "$NAME"
    timeout -s KILL 30 script -qec "$1 \"$P\" d.lua --no-color" /dev/null < /dev/null > pty.out 2>&1
    frames pty.out > frames.txt
    OUT=$(cat frames.txt)
}
fits() { # columns: at least 3 frames, each within columns - 1, each ending in a whole ETA
    [ "$(wc -l < frames.txt)" -ge 3 ] \
        && awk -F'|' -v w="$1" '$1 > w - 1 { bad = 1 } END { exit bad }' frames.txt \
        && ! grep -Ev 'ETA [0-9.]+(ms|s|m[0-9]+s)$' frames.txt | grep -q .
}

COLUMNS=60 pty_run "export COLUMNS=60;"
expect "COLUMNS=60: every frame fits, ETA whole" fits 60
expect "COLUMNS=60: the long name is cut with …, not the numbers" \
    eval 'grep -q "a-very-l[^ ]*… .* / 390.6 KiB" frames.txt'

pty_run "unset COLUMNS; stty cols 90;"
expect "a 90-column tty (no COLUMNS): every frame fits, ETA whole" fits 90
expect "90 columns: a bar still shows, narrower" eval 'grep -q "… \[[#.]\{8,23\}\] " frames.txt'

pty_run "export COLUMNS=200;"
expect "COLUMNS=200: the whole name and the full bar, not cut at 80" \
    eval 'fits 200 && grep -q "  $NAME \[[#.]\{24\}\] " frames.txt'
