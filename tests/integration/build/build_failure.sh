#!/usr/bin/env bash
# A failed build fails every script that builds, at once and with the compiler's message:
# scripts/test (full and --build-only), scripts/fuzz, scripts/bench and scripts/demo are copied
# next to a tiny CMake project whose only source does not compile under -Werror (an unused
# variable, as a real slip in common/wipe.c once did), and each must exit non-zero printing the
# compiler's error. Then scripts/fuzz must fail when a target listed in fuzz/ was not built, even
# though every target that was built runs clean, and must fail on a target whose input reaches
# undefined behaviour (the fuzz build's UBSan recovers: a report must still stop the target).
set -euo pipefail
src=${PSKGW_SOURCE_DIR:?}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-build-failure.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

clone() { # dir: the scripts, the style file and a git repository (scripts/format lists files with git)
  mkdir -p "$1/scripts" "$1/fuzz"
  cp "$src"/scripts/{test,fuzz,bench,demo,format,lib.sh,build-wolfssl,wolfssl-profile,build-mbedtls} "$1/scripts/"
  cp -R "$src/scripts/wolfssl" "$1/scripts/" # pskgw's additions to wolfSSL, which scripts/build-wolfssl hashes and appends
  cp "$src/.clang-format" "$src/.gitignore" "$1/"
}
commit() { # dir
  git -C "$1" init -q && git -C "$1" add -A &&
    git -C "$1" -c user.name=t -c user.email=t@t commit -qm tree
}

# 1. A compile error in every target the scripts build.
b=$tmp/broken
clone "$b"
cat >"$b/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(broken C)
option(PSKGW_FUZZ "" OFF)
option(PSKGW_SANITIZE "" OFF)
add_compile_options(-Wall -Werror)
foreach(t pskgw pskgw-sim pskgw-devsim pskgw-wolfpair pskgw-udpceiling pskgw-dtls-hammer)
  add_executable(${t} broken.c)
endforeach()
CM
cat >"$b/broken.c" <<'C'
int main(void)
{
    int deliberately_unused_variable;
    return 0;
}
C
commit "$b"

expect_build_failure() { # name, expected exit status or "any", command...
  local name=$1 want=$2 rc=0 out
  shift 2
  out=$("$@" </dev/null 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    fail "$name exits 0 although the build failed"
  elif [ "$want" != any ] && [ "$rc" -ne "$want" ]; then
    fail "$name exits $rc, not $want"
  elif ! grep -q 'error: unused variable.*deliberately_unused_variable' <<<"$out"; then
    fail "$name does not print the compiler's error"
  else
    ok "$name fails (exit $rc) with the compiler's error"
    return 0
  fi
  sed 's/^/  | /' <<<"$out" | tail -n 40
  return 1
}

if expect_build_failure "scripts/test" 1 "$b/scripts/test"; then
  last=$("$b/scripts/test" </dev/null 2>/dev/null | tail -n1) || true
  if [ "$last" = "steps: 2 passed, 1 failed" ]; then
    ok "scripts/test ends with its steps line (setup, format passed; the build failed)"
  else
    fail "scripts/test's last line is '$last'"
  fi
  if [ -e "$b/build-asan" ] || [ -e "$b/build-fuzz" ]; then
    fail "scripts/test went on to the next builds after a failed one"
  else
    ok "scripts/test stops at the first failed build"
  fi
fi
expect_build_failure "scripts/test --build-only" 1 "$b/scripts/test" --build-only || true
expect_build_failure "scripts/fuzz" 3 "$b/scripts/fuzz" --seconds 1 || true
expect_build_failure "scripts/bench" any "$b/scripts/bench" --smoke --out "$tmp/bench-out" || true
PSKGW_DEMO_SECONDS=5 expect_build_failure "scripts/demo" any "$b/scripts/demo" || true

# Under CI=true the local-only step skips are refused before anything runs.
for v in PSKGW_TEST_SKIP_ASAN PSKGW_TEST_SKIP_FUZZ; do
  rc=0
  out=$(env CI=true "$v=1" "$b/scripts/test" </dev/null 2>&1) || rc=$?
  if [ "$rc" -eq 1 ] && [ "$(tail -n1 <<<"$out")" = "steps: 0 passed, 1 failed" ]; then
    ok "scripts/test refuses $v=1 under CI=true"
  else
    fail "scripts/test with CI=true $v=1: exit $rc"
    sed 's/^/  | /' <<<"$out" | tail -n 10
  fi
done

# 2. scripts/fuzz: a target of fuzz/ that the build does not make fails the run.
f=$tmp/fuzz
clone "$f"
cat >"$f/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(fuzzers C)
option(PSKGW_FUZZ "" OFF)
add_executable(fuzz_built fuzz/fuzz_built.c)
target_compile_options(fuzz_built PRIVATE -fsanitize=fuzzer)
target_link_options(fuzz_built PRIVATE -fsanitize=fuzzer)
set_target_properties(fuzz_built PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
CM
for t in fuzz_built fuzz_forgotten; do
  cat >"$f/fuzz/$t.c" <<'C'
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return (int)(size - size) + (data == NULL ? 0 : 0);
}
C
done
rc=0
out=$("$f/scripts/fuzz" --seconds 1 </dev/null 2>&1) || rc=$?
if [ "$rc" -eq 1 ] && grep -q 'fuzz_forgotten .*FAILED: not built' <<<"$out" &&
   grep -q 'fuzz_built .* ok (Done' <<<"$out" && grep -q '1 passed, 1 failed' <<<"$out"; then
  ok "scripts/fuzz fails (exit 1) on a target of fuzz/ that was not built; the built one ran"
else
  fail "scripts/fuzz with a target not built: exit $rc"
  sed 's/^/  | /' <<<"$out" | tail -n 40
fi

# 3. scripts/fuzz: a UBSan report fails the target, though the build's UBSan recovers from it
# (-fsanitize-recover, as the fuzz build of pskgw) and libFuzzer would otherwise run on.
u=$tmp/ubsan
clone "$u"
cat >"$u/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(fuzzers C)
option(PSKGW_FUZZ "" OFF)
add_executable(fuzz_shift fuzz/fuzz_shift.c)
target_compile_options(fuzz_shift PRIVATE -fsanitize=fuzzer,undefined -fsanitize-recover=undefined)
target_link_options(fuzz_shift PRIVATE -fsanitize=fuzzer,undefined)
set_target_properties(fuzz_shift PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
CM
cat >"$u/fuzz/fuzz_shift.c" <<'C'
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    volatile int shift = 40 + (int)(size & 1u); /* undefined for every input */
    volatile int one = 1;
    return (one << shift) == 0 && data == NULL;
}
C
rc=0
out=$(env -u UBSAN_OPTIONS "$u/scripts/fuzz" --seconds 2 </dev/null 2>&1) || rc=$?
if [ "$rc" -eq 1 ] && grep -q 'fuzz_shift .*FAILED' <<<"$out" &&
   grep -q 'runtime error: shift exponent' "$u/build-fuzz/fuzz_shift.log"; then
  ok "scripts/fuzz fails (exit 1) on a target whose input reaches undefined behaviour"
else
  fail "scripts/fuzz with a UBSan report: exit $rc"
  sed 's/^/  | /' <<<"$out" | tail -n 40
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
