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
# steps_recipe N: the recipe bench/steps.sh and bench/paired.sh time, N fs
# steps into ./out (odd: a folder; even: a file with content, mode 0644)
steps_recipe() {
    echo 'recipe { name = "bench" }'
    echo 'local v = vars { dir = "./out" }'
    echo "for i = 1, $1 do"
    echo '  if i % 2 == 1 then step("d" .. i) { fs.directory(v.dir .. "/d" .. i) }'
    echo '  else step("f" .. i) { fs.file { path = v.dir .. "/f" .. i, content = "content of file " .. i .. "\n", mode = "0644" } } end'
    echo 'end'
}
