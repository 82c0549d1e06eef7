# Test helpers.
#
# pskgw_add_unit_test(NAME SOURCES a.c b.c LIBS pskgw_x ... [TIMEOUT s] [LABELS l])
#   A Criterion executable registered with CTest, run through cmake/criterion-run.sh. A sanitizer
#   report anywhere in its output fails the test even when Criterion itself reports success (it
#   does not look at LSan at exit). A binary that passed but skipped tests (cr_skip_test) is
#   reported by CTest as skipped, not passed.
#
# Unit test binaries carry the allocation-failure hook (tests/support/allocfail.h): malloc, calloc,
# realloc, strdup and strndup of the statically linked libraries go through it (--wrap; the test's
# own sources are compiled to call libc directly); armed only
# by PSKGW_ALLOC_FAIL_AT. tests/torture.sh sweeps it; the CTest label "torture" runs that sweep.
# criterion_abort_test is wrapped too: an aborted test's own objects stay reachable for LSan.
#
# pskgw_add_script_test: a script exits 77 to be reported as skipped (tests/support/skip.sh).
#
# Tests get PSKGW_BIN_DIR (where pskgw, pskgw-sim, pskgw-devsim are) and PSKGW_SOURCE_DIR in
# their environment, and inherit ctest's: with CI=true a skip because a tool or package is
# missing fails instead (tests/support/skip.h, tests/support/skip.sh).
set(PSKGW_SANITIZER_FAIL_REGEX
    "ERROR: AddressSanitizer;ERROR: LeakSanitizer;runtime error:;WARNING: ThreadSanitizer")

function(pskgw_add_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${T_LIBS} pskgw_testsupport pskgw::criterion)
  target_sources(${name} PRIVATE $<TARGET_OBJECTS:pskgw_allocfail>)
  target_link_options(${name} PRIVATE
    "LINKER:--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup"
    "LINKER:--wrap=criterion_abort_test")
  # The test's own sources call libc directly (__real_*): only the code under test is counted, so
  # a failure is never injected into a fixture that has no error path to take.
  target_compile_definitions(${name} PRIVATE malloc=__real_malloc calloc=__real_calloc
                             realloc=__real_realloc strdup=__real_strdup strndup=__real_strndup)
  # --jobs 1: tests that start servers on free ports must not race each other inside one binary.
  add_test(NAME ${name} COMMAND ${PROJECT_SOURCE_DIR}/cmake/criterion-run.sh
                                 $<TARGET_FILE:${name}> --jobs 1 --verbose=0)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    FAIL_REGULAR_EXPRESSION "${PSKGW_SANITIZER_FAIL_REGEX}"
    ENVIRONMENT "PSKGW_BIN_DIR=${PROJECT_BINARY_DIR};PSKGW_SOURCE_DIR=${PROJECT_SOURCE_DIR};ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# pskgw_add_script_test(NAME COMMAND cmd args... [TIMEOUT s] [ASAN_STAGE])
#   A test that is a program or script (integration tests driving the real binaries). Exit 77:
#   skipped (never with a sanitizer report in the output: CTest lets the skip win).
#   ASAN_STAGE: a heavy scenario test (a minute or more of processes and fleets) registered in
#   the sanitizer build only (PSKGW_SANITIZE), where it proves the same and finds memory errors
#   besides, so that scripts/test runs it once, not in both stages (its time budget: 30 minutes
#   on a fresh 2-core machine). -DPSKGW_HEAVY_TESTS=ON registers it in any build.
option(PSKGW_HEAVY_TESTS "register the ASAN_STAGE tests in builds without sanitizers too" OFF)
function(pskgw_add_script_test name)
  cmake_parse_arguments(T "ASAN_STAGE" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(T_ASAN_STAGE AND NOT PSKGW_SANITIZE AND NOT PSKGW_HEAVY_TESTS)
    return()
  endif()
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    FAIL_REGULAR_EXPRESSION "${PSKGW_SANITIZER_FAIL_REGEX}"
    ENVIRONMENT "PSKGW_BIN_DIR=${PROJECT_BINARY_DIR};PSKGW_SOURCE_DIR=${PROJECT_SOURCE_DIR};ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# pskgw_add_torture_test(TARGET [ALL_FIRST a] [MAX_RUNS m] [STRIDE k] [TIMEOUT s])
#   The allocation-failure sweep (tests/torture.sh) over the unit test binary TARGET, as the CTest
#   test torture_<TARGET>, label "torture". Registered on sanitizer builds only (PSKGW_SANITIZE):
#   without ASan the sweep could not see a leak or a use after free. Without options every N of
#   every test is run; ALL_FIRST/MAX_RUNS/STRIDE make it a strided sweep (torture.sh -a -m -k).
function(pskgw_add_torture_test target)
  cmake_parse_arguments(T "" "ALL_FIRST;MAX_RUNS;STRIDE;TIMEOUT" "" ${ARGN})
  if(NOT PSKGW_SANITIZE OR NOT TARGET ${target})
    return()
  endif()
  set(_opts)
  foreach(_o ALL_FIRST:a MAX_RUNS:m STRIDE:k)
    string(REPLACE ":" ";" _pair ${_o})
    list(GET _pair 0 _key)
    list(GET _pair 1 _flag)
    if(T_${_key})
      list(APPEND _opts -${_flag} ${T_${_key}})
    endif()
  endforeach()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 1200)
  endif()
  add_test(NAME torture_${target}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/torture.sh ${_opts} $<TARGET_FILE:${target}>)
  set_tests_properties(torture_${target} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    LABELS torture
    ENVIRONMENT "PSKGW_BIN_DIR=${PROJECT_BINARY_DIR};PSKGW_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
