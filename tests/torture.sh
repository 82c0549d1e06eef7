#!/usr/bin/env bash
# torture.sh [-k STRIDE] [-a ALL_FIRST] [-m MAX_RUNS] BINARY [CRITERION ARGS...]
#
# Allocation-failure sweep over one Criterion unit test binary (curl's torture tests): the binary
# is run once counting (PSKGW_ALLOC_FAIL_AT=0: each test says how many allocations the code under
# test made in it, K), then each test once for each N = 1..K with PSKGW_ALLOC_FAIL_AT=N, which
# fails its Nth allocation (tests/support/allocfail.h). Where most tests are planned at one N,
# one run of the whole binary serves them all (below). Each run of a test must show:
#   - no crash and no hang (Criterion: ERRORED; the binary killed by a signal or the guard);
#   - no AddressSanitizer or UBSan report: run it on the ASan build;
#   - no LeakSanitizer report, whether the test passed (the code absorbed the failure and freed
#     all) or failed on one of its own assertions (the error came back through the API, cleanly).
#     A test aborted by a failed cr_assert leaves its own objects behind; the allocation-failure
#     hook keeps what the test's stack still pointed at reachable when it aborts (allocfail.c,
#     __wrap_criterion_abort_test), so a leak reported then is one the code under test lost.
# STRIDE k > 1 (default 1: every N) runs all N up to ALL_FIRST (default 200), then every k-th N,
# and always the test's last allocation (a strided sweep for the slower binaries). MAX_RUNS (default
# 0: no limit) widens the stride of a test that would otherwise take more runs than that.
# The summary counts the distinct allocation sites (call sites of malloc & co.) that had a failure
# injected; TORTURE_SITES=FILE writes them with how many runs reached each.
# Exit 0 when every run held, 1 otherwise (the failing runs are printed with their N), 2 on usage.
set -uo pipefail

stride=1
all_first=200
max_runs=0
while getopts "k:a:m:" opt; do
  case $opt in
    k) stride=$OPTARG ;;
    a) all_first=$OPTARG ;;
    m) max_runs=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || {
  echo "usage: torture.sh [-k STRIDE] [-a ALL_FIRST] [-m MAX_RUNS] BINARY [ARGS...]" >&2
  exit 2
}
bin=$1
shift
name=$(basename "$bin")

work=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-torture.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
# Leaks are reported at the exit of each test process; a report fails the run (below).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
sanitizer_re='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer'
start=$SECONDS

# run FILTER N: runs one test (FILTER "": the whole binary) with PSKGW_ALLOC_FAIL_AT=N; output in $work/out. The guard (timeout) only stops a hang; it is not a time limit on the test.
run() {
  PSKGW_ALLOC_FAIL_AT=$2 timeout -k 10 300 "$bin" --jobs 1 --verbose=0 ${1:+"--filter=$1"} \
    "${args[@]}" >"$work/out" 2>&1
}
args=("$@")

# test_status SUITE::NAME: PASSED, SKIPPED, FAILED (an assertion), ERRORED (crash, timeout, a
# crash in setup or teardown) or MISSING, from Criterion's text output (its --json does not
# escape quotes in assertion messages, so it is not read).
test_status() {
  local line
  # Criterion says "crashed during its setup or teardown" also for a failed assertion in a
  # fixture; a real crash on the ASan build comes with a sanitizer report, checked apart.
  if grep -qF "The test \`$1\` crashed" "$work/out"; then
    if grep -q 'Assertion Failed' "$work/out"; then echo FAILED; else echo ERRORED; fi
    return
  fi
  line=$(grep -E "^\[(PASS|FAIL|SKIP)\] $1(:|$)" "$work/out" | tail -1)
  case $line in
    "[PASS]"*) echo PASSED ;;
    "[SKIP]"*) echo SKIPPED ;;
    *": CRASH!"* | *"Timed out"*) echo ERRORED ;;
    "[FAIL]"*) echo FAILED ;;
    *) echo MISSING ;;
  esac
}

# The counting run is an ordinary run: it must pass as it does under CTest. Its time (ms) is what
# a run of the whole binary costs.
t0=${EPOCHREALTIME/./}
PSKGW_ALLOC_FAIL_AT=0 "$bin" --jobs 1 --verbose=0 "$@" >"$work/out" 2>&1
rc=$?
whole_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
# A run of one test: half a second of process start under ASan and the binary's mean test.
all_tests=$("$bin" --list "$@" 2>/dev/null | grep -cE '^(├|└)')
one_ms=$((500 + whole_ms / (all_tests > 0 ? all_tests : 1)))
if [ "$rc" -ne 0 ] || grep -qE "$sanitizer_re" "$work/out"; then
  cat "$work/out"
  echo "torture: $name fails without any injected failure (exit $rc): fix that first"
  exit 1
fi
sed -n 's/^allocfail: test \(.*\)::\(.*\) made \([0-9]*\) allocations$/\1\/\2 \3/p' \
  "$work/out" >"$work/counts"
total=$(awk '{s += $2} END {print s + 0}' "$work/counts")
echo "torture: $name: $(wc -l <"$work/counts") tests allocate, $total allocations in all"

bad=0
runs=0
clean=0
absorbed=0
batches=0
# judge TEST N RC: one test's run at N, from $work/out (the test's own run, or a batch whose
# output has no sanitizer report: see below).
judge() {
  local test=$1 n=$2 rc=$3 t=${1/\//::} status problem="" injected=0
  runs=$((runs + 1))
  if grep -qF "in test $t at " "$work/out"; then
    injected=1
    sed -n "s/^allocfail: injected failure.* in test $t at \([^ ]*\)\$/\1/p" "$work/out" \
      >>"$work/sites"
  fi
  status=$(test_status "$t")
  if [ "$rc" -gt 1 ]; then
    problem="the binary exited with status $rc (a signal, the guard or a runner error)"
  elif grep -qE 'ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer' "$work/out"; then
    problem="a sanitizer report"
  else
    case $status in
      PASSED | SKIPPED)
        if grep -q 'ERROR: LeakSanitizer' "$work/out"; then
          problem="a leak, though the test passed"
        elif [ "$injected" -eq 1 ]; then
          absorbed=$((absorbed + 1))
        fi
        ;;
      FAILED)
        if [ "$injected" -eq 0 ]; then
          problem="failed with no failure injected"
        elif grep -q 'ERROR: LeakSanitizer' "$work/out"; then
          problem="a leak after the error came back (the error path lost memory)"
        else
          clean=$((clean + 1))
        fi
        ;;
      *) problem="$status (crashed or hung)" ;;
    esac
  fi
  if [ -n "$problem" ]; then
    bad=$((bad + 1))
    echo "torture: $name $test N=$n: $problem"
    grep -vE '^\[----\]   $|^\[SKIP\]' "$work/out" | head -80
  fi
}

# The Ns of each test: every N up to ALL_FIRST, then every k-th, always the last allocation
# (N = K); "N test" lines into $work/plan.
while read -r test count; do
  k=$stride
  if [ "$max_runs" -gt "$all_first" ] && [ "$count" -gt "$max_runs" ]; then
    wide=$(((count - all_first + max_runs - all_first - 1) / (max_runs - all_first)))
    [ "$wide" -le "$k" ] || k=$wide
  fi
  n=0
  while :; do
    if [ "$n" -lt "$all_first" ] || [ "$k" -le 1 ]; then
      n=$((n + 1))
    else
      n=$((n + k))
      [ "$n" -le "$count" ] || [ $((n - k)) -ge "$count" ] || n=$count
    fi
    [ "$n" -le "$count" ] || break
    echo "$n $test"
    [ "$n" -lt "$count" ] || break
  done
done <"$work/counts" | sort -n -k1,1 >"$work/plan"

# The tests planned at one N run in one process of the whole binary when that costs less than
# running each alone (Criterion gives each test its own process, so N counts per test, and the
# binary's other tests run unjudged): a run of one test costs about half a second of process
# start under ASan and a mean test, a run of the whole binary what the counting run took.
# Otherwise each runs alone (a --filter naming several costs as much as separate runs). A
# test of a whole-binary run is judged on its output when that holds no sanitizer report and the
# binary ended normally; otherwise the planned tests are run again one by one and judged each on
# its own run (a report names no test).
while read -r n; do
  mapfile -t tests < <(awk -v n="$n" '$1 == n { print $2 }' "$work/plan")
  if [ $((${#tests[@]} * one_ms)) -gt "$whole_ms" ]; then
    batches=$((batches + 1))
    run '' "$n"
    rc=$?
    if [ "$rc" -le 1 ] && ! grep -qE "$sanitizer_re" "$work/out"; then
      for test in "${tests[@]}"; do judge "$test" "$n" "$rc"; done
      continue
    fi
  fi
  for test in "${tests[@]}"; do
    batches=$((batches + 1))
    run "$test" "$n"
    judge "$test" "$n" $?
  done
done < <(cut -d' ' -f1 "$work/plan" | uniq)
sites=0
[ ! -s "$work/sites" ] || sites=$(sort -u "$work/sites" | wc -l)
echo "torture: $name: $runs runs in $batches processes (every N up to $all_first, then every" \
  "${stride}th or wider to keep within ${max_runs} runs a test (0: no limit)), $bad bad;" \
  "$absorbed injected failures absorbed, $clean returned as errors without a leak;" \
  "$sites distinct allocation sites failed; $((SECONDS - start)) s"
[ -z "${TORTURE_SITES:-}" ] || sort "$work/sites" | uniq -c | sort -rn >"$TORTURE_SITES"
[ "$bad" -eq 0 ]
