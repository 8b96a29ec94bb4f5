#!/bin/sh
# tests/lint/sizes.sh: no source file over 800 lines, no function over 120
# (core/, modules/, lua/). Prints "FILE: N lines" / "FILE:LINE: function of
# N lines" for each one past the limit; exits 1 if any.
# C functions are counted from a "{" to a "}" in column 0 (the style here);
# Lua ones from luac5.4's listing (every function, closures too).
cd "$(dirname "$0")/../.." || exit 1
MAX_FILE=${MAX_FILE:-800} MAX_FN=${MAX_FN:-120}
bad=0
files=$(find core modules lua -name '*.c' -o -name '*.h' -o -name '*.lua' | sort)
for f in $files; do
    n=$(wc -l < "$f")
    if [ "$n" -gt "$MAX_FILE" ]; then echo "$f: $n lines (at most $MAX_FILE)"; bad=1; fi
    case "$f" in
    *.c)
        out=$(awk -v f="$f" -v max="$MAX_FN" '/^\{/{s=NR} /^\}/{ if (s && NR-s-1>max) printf "%s:%d: function of %d lines (at most %d)\n", f, s, NR-s-1, max; s=0 }' "$f") ;;
    *.lua)
        out=$(luac5.4 -p -l "$f" | awk -v f="$f" -v max="$MAX_FN" '$1=="function" && $2 ~ /^</ {
            m=$2; gsub(/[<>]/, "", m); k=split(m, a, ":"); split(a[k], r, ",")
            len=r[2]-r[1]-1
            if (len > max) printf "%s:%d: function of %d lines (at most %d)\n", f, r[1], len, max }') ;;
    *) out="" ;;
    esac
    if [ -n "$out" ]; then echo "$out"; bad=1; fi
done
exit $bad
