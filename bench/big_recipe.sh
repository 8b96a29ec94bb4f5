#!/bin/bash
# bench/big_recipe.sh: issue 19's "10 MB recipe of 142,000 steps". The recipe
# is written out literally, one step a line, as a generator would make it
# (not a for loop: that is what makes it 10 MB): of every 100 steps, 90
# fs.file with small contents of varied length (one in ten with a mode), 4
# fs.symlink, 3 fs.env_file, 2 fs.template, 1 fs.directory (the folders
# come first, each before the files in it). At each size: wall time (s) and
# peak RSS (MiB) of `list`, `plan` (fresh: nothing in place, everything
# would change, the diffs printed to /dev/null), the first apply and the
# no-op after it, by /usr/bin/time -f '%e %M'.
#
#   bash bench/big_recipe.sh [N...]           (default: 14200 71000 142000)
#   RUNS=3        list and plan: median of RUNS runs (apply and no-op: one)
#   APPLY=0       list and plan only (the first apply of 142k files is long)
#   PROVISION_OLD=/path/to/provision   the build before, paired: old and new
#                 alternate at each measure
#   KEEP=1        keep the work folder (its path is printed)
#   PIPE=1        plan's output through a pipe (`| cat`), as a terminal
#                 pager or a CI log reads it, not into a file
#   JSON=1        plan, apply and no-op with --json (an event a step, as a
#                 fleet's hosts run: fleet/remote.lua), not the text report
#   ENCODE=1      after each first apply: json.encode of the state it saved
#                 (bench/encode_state.lua: the median of 5, CPU s, and the
#                 rise of the peak RSS, MiB), a line a build after the table
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${PROVISION:-$ROOT/provision}
OLD=${PROVISION_OLD:-}
RUNS=${RUNS:-3}
APPLY=${APPLY:-1}
sizes=${*:-14200 71000 142000}
work=$(mktemp -d /tmp/provision-big.XXXXXX)
if [ "${KEEP:-0}" = 1 ]; then echo "work folder: $work"; else trap 'rm -rf "$work"' EXIT; fi
cd "$work"

# gen N: the recipe, on stdout
gen() {
    awk -v n="$1" 'BEGIN {
        print "-- generated: " n " steps (bench/big_recipe.sh)"
        print "recipe { name = \"big\", description = \"a generated recipe of " n " steps\" }"
        words[0] = "alpha"; words[1] = "bravo"; words[2] = "charlie"; words[3] = "delta"
        words[4] = "echo"; words[5] = "foxtrot"; words[6] = "golf"; words[7] = "hotel"
        seed = 12345
        for (i = 1; i <= n; i++) {
            dir = "s" int((i - 1) / 1000)
            k = i % 100
            if ((i - 1) % 1000 == 0) {
                printf "step(\"d%d\") { fs.directory { path = \"%s\", mode = \"0755\" } }\n", i, dir
                continue
            }
            seed = (seed * 1103515245 + 12345) % 2147483648
            r = int(seed / 65536)
            if (k == 11 || k == 37 || k == 61 || k == 89) {
                printf "step(\"l%d\") { fs.symlink { path = \"%s/l%d\", target = \"f%d\" } }\n", i, dir, i, i - 1
            } else if (k == 23 || k == 53 || k == 77) {
                printf "step(\"e%d\") { fs.env_file { path = \"%s/e%d.env\", values = { PORT = \"%d\" } } }\n", i, dir, i, 8000 + r % 1000
            } else if (k == 41 || k == 97) {
                printf "step(\"t%d\") { fs.template { path = \"%s/t%d\", template = \"port=${p}\\n\", vars = { p = \"%d\" } } }\n", i, dir, i, 9000 + r % 1000
            } else {
                c = ""
                for (j = 0; j <= r % 2; j++) c = c words[(r + j) % 8] "=" ((r * (j + 1)) % 1000) "\\n"
                if (r % 10 == 0) {
                    printf "step(\"f%d\") { fs.file { path = \"%s/f%d\", content = \"%s\", mode = \"0640\" } }\n", i, dir, i, c
                } else {
                    printf "step(\"f%d\") { fs.file { path = \"%s/f%d\", content = \"%s\" } }\n", i, dir, i, c
                }
            }
        }
    }'
}

# timed OUT CMD...: "seconds KiB" of one run of CMD into OUT
timed() {
    local out=$1; shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > "$out" 2>&1 || true
    tail -n 1 "$work/time"
}
# med LIST: the median of "s KiB" pairs, each column on its own: "s MiB"
med() {
    local s m
    s=$(printf '%s\n' "$@" | awk 'NF { print $1 }' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    m=$(printf '%s\n' "$@" | awk 'NF { print $2 }' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    awk -v s="$s" -v m="$m" 'BEGIN { printf "%.2f %.0f", s, m / 1024 }'
}

# the report: text (apply and no-op -q), or --json's events; said() finds
# the summary's count of a status in OUT
quiet=-q; plan_flag=""
[ "${JSON:-0}" = 1 ] && { quiet=--json; plan_flag=--json; }
said() { if [ "${JSON:-0}" = 1 ]; then grep -q "\"$2\":$3[,}]" "$1"; else grep -q "$2=$3 " "$1"; fi; }

bins=("$P"); names=(new)
[ -n "$OLD" ] && { bins=("$OLD" "$P"); names=(old new); }
printf '%-4s %7s %7s %14s %14s %14s %14s\n' build steps MB "list s/MiB" "plan s/MiB" "apply s/MiB" "no-op s/MiB"
for n in $sizes; do
    gen "$n" > r.lua
    mb=$(awk -v b="$(stat -c %s r.lua)" 'BEGIN { printf "%.1f", b / 1e6 }')
    declare -A L=() PL=() A=() NO=() EN=()
    for ((i = 0; i < RUNS; i++)); do
        for b in "${!bins[@]}"; do
            rm -rf s[0-9]* .provision
            L[$b]+="$(timed list.out "${bins[$b]}" list r.lua)"$'\n'
            if [ "${PIPE:-0}" = 1 ]; then
                PL[$b]+="$(timed /dev/null sh -c '"$0" plan $1 r.lua 2>&1 | cat > plan.out' "${bins[$b]}" "$plan_flag")"$'\n'
            else
                PL[$b]+="$(timed plan.out "${bins[$b]}" plan $plan_flag r.lua)"$'\n'
            fi
        done
    done
    said plan.out would-change "$n" || { echo "bench/big_recipe.sh: plan did not say every step would change:" >&2; tail -n 3 plan.out >&2; exit 1; }
    for b in "${!bins[@]}"; do
        A[$b]="- -"; NO[$b]="- -"
        if [ "$APPLY" = 1 ]; then
            rm -rf s[0-9]* .provision
            A[$b]=$(timed apply.out "${bins[$b]}" $quiet r.lua)
            said apply.out changed "$n" || { echo "bench/big_recipe.sh: the apply did not change every step:" >&2; tail -n 3 apply.out >&2; exit 1; }
            NO[$b]=$(timed noop.out "${bins[$b]}" $quiet r.lua)
            said noop.out changed 0 || { echo "bench/big_recipe.sh: the re-run is not a no-op" >&2; exit 1; }
            A[$b]=$(med "${A[$b]}"); NO[$b]=$(med "${NO[$b]}")
            [ "${ENCODE:-0}" = 1 ] && EN[$b]=$("${bins[$b]}" --script "$ROOT/bench/encode_state.lua" .provision/big.json)
        fi
    done
    for b in "${!bins[@]}"; do
        mapfile -t l < <(printf '%s' "${L[$b]}")
        mapfile -t p < <(printf '%s' "${PL[$b]}")
        printf '%-4s %7s %7s %14s %14s %14s %14s\n' "${names[$b]}" "$n" "$mb" \
            "$(med "${l[@]}" | tr ' ' /)" "$(med "${p[@]}" | tr ' ' /)" \
            "$(tr ' ' / <<< "${A[$b]}")" "$(tr ' ' / <<< "${NO[$b]}")"
    done
    for b in "${!bins[@]}"; do
        [ -n "${EN[$b]:-}" ] && printf '%-4s %7s  state encode: %s s, peak RSS +%s MiB\n' "${names[$b]}" "$n" ${EN[$b]}
    done
    unset L PL A NO EN
done
rm -rf s[0-9]* .provision
