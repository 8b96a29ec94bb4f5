# bench/lib.sh: timing helpers shared by the benchmark scripts.
# median_ms RUNS CMD...: runs CMD RUNS times (output discarded), prints the
# median wall time in milliseconds (3 decimals).
median_ms() {
    local runs=$1; shift
    local i t0 t1 times=()
    for ((i = 0; i < runs; i++)); do
        t0=$(date +%s%N)
        "$@" > /dev/null 2>&1
        t1=$(date +%s%N)
        times+=($(( (t1 - t0) / 1000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f\n", m / 1000}'
}
# peak_rss_kib CMD...: the peak resident set size of CMD, in KiB
peak_rss_kib() {
    /usr/bin/time -f '%M' -o /tmp/provision-bench-rss "$@" > /dev/null 2>&1
    tail -n 1 /tmp/provision-bench-rss
}
