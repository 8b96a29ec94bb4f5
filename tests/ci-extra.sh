#!/bin/sh
# tests/ci-extra.sh: the slower reliability checks, for CI (.ci/run):
#   0. make lint (tests/lint.sh): luacheck, the Lua import rules, the size
#      limits;
#   1. the test suite (tests/run) with the ASan+UBSan binary
#      (make SANITIZE=address,undefined: ./provision-san, build/san/tests),
#      all but the Airflow-sized stacks (below);
#      any sanitizer report, even from a run whose exit code a test
#      expected to be non-zero, fails the section;
#   2. valgrind leak check of plan/apply/teardown (tests/leaks/run.sh);
#   3. a bounded fuzz run of every target (tests/fuzz/run.sh), FUZZ_SECONDS
#      per target (default 45: about 5 minutes in all). When the sanitizer
#      suite runs too, the fuzz run goes beside it, at nice 19: the fuzzers
#      are CPU on one core, the suite mostly waits on the Docker engine
#      (this saved the fuzz run's 5 minutes of CI's ~62); its output still
#      comes in its own section, in order.
# Each section prints PASS/FAIL lines and its own "N passed, N failed";
# the last line is the total. Exits non-zero when anything failed.
#   sh tests/ci-extra.sh [lint|sanitize|leaks|fuzz]...   (default: all four)
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-45}
sections=${*:-lint sanitize leaks fuzz}
total_p=0 total_f=0
work=$(mktemp -d /tmp/provision-ci-extra.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# section NAME COMMAND...: runs it, shows its output, adds its summary line
section() {
    name=$1; shift
    echo "## $name"
    start=$(date +%s)
    "$@" > "$work/$name.out" 2>&1
    rc=$?
    cat "$work/$name.out"
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/$name.out" | tail -n 1)
    p=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$summary" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
    p=${p:-0} f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited $rc"
        f=1
    fi
    total_p=$((total_p + p)); total_f=$((total_f + f))
    echo "## $name: $p passed, $f failed ($(( $(date +%s) - start ))s)"
}

sanitize() {
    if ! make -s SANITIZE=address,undefined provision-san unit > "$work/san-build.log" 2>&1; then
        cat "$work/san-build.log"
        echo "FAIL sanitize/build: make SANITIZE=address,undefined failed"
        echo "0 passed, 1 failed"
        return 1
    fi
    if grep -q 'warning:' "$work/san-build.log"; then cat "$work/san-build.log"; fi
    # Reports go to files, so none is lost inside a test's captured stderr.
    mkdir -p "$work/san" "$work/bin"
    asan="log_path=$work/san/asan:detect_leaks=1:abort_on_error=0"
    ubsan="log_path=$work/san/ubsan:print_stacktrace=1:halt_on_error=1"
    # LeakSanitizer cannot work under ptrace: a test that runs the binary
    # under strace (to count execve calls) gets it without the leak check
    # (a wrapper first on PATH; everything else keeps it).
    real_strace=$(command -v strace || true)
    if [ -n "$real_strace" ]; then
        printf '#!/bin/sh\nexec %s -E "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0" "$@"\n' "$real_strace" > "$work/bin/strace"
        chmod +x "$work/bin/strace"
    fi
    # The Airflow-sized stacks (tests/e2e/airflow_*: 9 of this run's 26
    # minutes on a slow machine, most of it waiting on healthchecks) are
    # left to the main run, which runs them on Compose v2, v1 and the newer
    # engine: the C they reach here, the Engine API client, core/uhttp.c,
    # the YAML of the real compose files, is this run's through
    # compose_stack, faults_compose, stack_deployed, swarm_module,
    # engine_remote, test_compose, test_yaml and test_stack_spec.
    # (tests/run names each test's reports: SAN_LOG_DIR/<test>.asan.<pid>)
    PROVISION_TESTS_LEAVE=tests/e2e/airflow_ \
    PATH="$work/bin:$PATH" ASAN_OPTIONS="$asan" UBSAN_OPTIONS="$ubsan" \
    SAN_LOG_DIR="$work/san" SAN_ASAN_OPTIONS="$asan" SAN_UBSAN_OPTIONS="$ubsan" \
    PROVISION_MATRIX=0 PROVISION="$ROOT/provision-san" UNIT_DIR="$ROOT/build/san/tests" sh tests/run > "$work/san-suite.out" 2>&1
    rc=$?
    # tests/run's own summary becomes the second-to-last line of this one
    grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$work/san-suite.out"
    p=$(sed -n 's/^\([0-9]*\) passed, .*/\1/p' "$work/san-suite.out" | tail -n 1)
    f=$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p' "$work/san-suite.out" | tail -n 1)
    p=${p:-0} f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then echo "FAIL sanitize/suite: tests/run exited $rc"; f=1; fi
    reports=$(ls "$work/san" 2>/dev/null)
    if [ -n "$reports" ]; then
        for r in "$work"/san/*; do
            if [ -s "$r" ]; then
                echo "FAIL sanitize/report: $(basename "$r"):"
                sed 's/^/    /' "$r" | head -n 60
            else   # the sanitizer opens its file as it begins a report
                echo "FAIL sanitize/report: $(basename "$r") is empty: the process was killed as it began a report"
            fi
            f=$((f + 1))
        done
    else
        echo "PASS sanitize/no sanitizer reports"
        p=$((p + 1))
    fi
    echo "$p passed, $f failed"
    [ "$f" -eq 0 ]
}

leaks() {
    if ! make -s > "$work/build.log" 2>&1; then
        cat "$work/build.log"; echo "FAIL leaks/build: make failed"; echo "0 passed, 1 failed"; return 1
    fi
    PROVISION="$ROOT/provision" sh tests/leaks/run.sh
}

lint() { sh tests/lint.sh; }
# (NICE: a prefix for the run, set where it goes beside sanitize)
fuzz() { FUZZ_SEED=${FUZZ_SEED:-1} $NICE sh tests/fuzz/run.sh "$FUZZ_SECONDS"; }
NICE=""

# fuzz beside sanitize (above): started first, in the background; its
# section then waits for it and gives its output and exit code
fuzz_pid=""
fuzz_beside() {
    wait "$fuzz_pid"
    rc=$?
    cat "$work/fuzz-beside.out"
    echo "# fuzz ran beside the sanitizer suite ($(cat "$work/fuzz-beside.secs")s of its own)"
    return $rc
}
case " $sections " in *" sanitize "*) case " $sections " in *" fuzz "*)
        # the generated includes both builds read, made once here first: two
        # makes must not write them at the same time
        make -s build/lua_embed.inc build/modules.inc
        ( t0=$(date +%s); NICE="nice -n 19" fuzz
          rc=$?; echo $(( $(date +%s) - t0 )) > "$work/fuzz-beside.secs"; exit $rc ) \
            > "$work/fuzz-beside.out" 2>&1 &
        fuzz_pid=$! ;;
esac ;; esac
trap '[ -z "$fuzz_pid" ] || kill "$fuzz_pid" 2>/dev/null; rm -rf "$work"' EXIT

all_start=$(date +%s)
for s in $sections; do
    case "$s" in
        fuzz) if [ -n "$fuzz_pid" ]; then section fuzz fuzz_beside; else section fuzz fuzz; fi ;;
        lint|sanitize|leaks) section "$s" "$s" ;;
        *) echo "FAIL ci-extra: unknown section '$s' (lint, sanitize, leaks, fuzz)"; total_f=$((total_f + 1)) ;;
    esac
done
echo "# ci-extra: $(( $(date +%s) - all_start ))s"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
