#!/bin/sh
# bench/pkg.sh: the no-op check of pkg.installed for N installed packages,
# in-process (the dpkg status database mapped and scanned once per check), next
# to what a spawning tool pays: one `dpkg-query -W` of the same N names.
# Also: the whole `provision plan` of a recipe with that one step, and the
# number of processes it starts (strace, when installed).
#   sh bench/pkg.sh            (after make; Debian/Ubuntu only)
cd "$(dirname "$0")/.." || exit 1
P=${PROVISION:-./provision}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
STATUS=/var/lib/dpkg/status
echo "dpkg status: $(wc -c < $STATUS) bytes, $(grep -c '^Package:' $STATUS) packages"
dpkg-query -W -f '${db:Status-Status} ${Package}\n' | awk '$1 == "installed" { print $2 }' | sort -u > "$TMP/names"

cat > "$TMP/check.lua" <<'L'
local pkg = require "provision.pkg"
local core = require "provision._core"
local n, file = tonumber(arg[1]), arg[2]
local names = {}
for l in io.lines(file) do if #names < n then names[#names + 1] = l end end
local r = pkg.installed { names, update = false }
local ctx = { state = {}, log = function() end }
local times = {}
for i = 1, 31 do
  local t0 = core.now()
  assert(r:check(ctx) == true)
  times[i] = core.now() - t0
end
table.sort(times)
io.write(("%.3f"):format(times[16] * 1000))
L

median_dpkg_query() { # N
    head -n "$1" "$TMP/names" > "$TMP/n"
    i=0; : > "$TMP/t"
    while [ $i -lt 31 ]; do
        s=$(date +%s%N); xargs dpkg-query -W < "$TMP/n" > /dev/null; e=$(date +%s%N)
        echo $(( (e - s) / 1000 )) >> "$TMP/t"; i=$((i + 1))
    done
    sort -n "$TMP/t" | sed -n 16p | awk '{ printf "%.3f", $1 / 1000 }'
}

printf '%-6s %-22s %-22s %s\n' N "in-process check (ms)" "xargs dpkg-query (ms)" ratio
for n in 1 10 100 500; do
    a=$("$P" --script "$TMP/check.lua" "$n" "$TMP/names")
    b=$(median_dpkg_query "$n")
    printf '%-6s %-22s %-22s %s\n' "$n" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0fx", b / a }')"
done

# a whole no-op plan of a recipe holding 100 packages
head -n 100 "$TMP/names" | awk 'BEGIN { print "recipe { name = \"b\" }\nstep \"pkgs\" { pkg.installed { update = false," } { printf "  \"%s\",\n", $1 } END { print "} }" }' > "$TMP/r.lua"
if command -v hyperfine > /dev/null; then
    PROVISION_STATE_DIR=$TMP/st hyperfine -N -w 3 -r 30 --export-json "$TMP/h.json" "$P plan $TMP/r.lua" > /dev/null 2>&1
    python3 -c "import json; r=json.load(open('$TMP/h.json'))['results'][0]; print('provision plan, 100 packages: median %.1f ms (hyperfine, 30 runs)' % (r['median']*1000))"
fi
if command -v strace > /dev/null; then
    PROVISION_STATE_DIR=$TMP/st strace -f -qq -e trace=execve -o "$TMP/tr" "$P" plan "$TMP/r.lua" > /dev/null 2>&1
    echo "processes started by that plan: $(( $(grep -c 'execve(' "$TMP/tr") - 1 )) (execve calls besides provision itself)"
fi
