# pskgw_add_fuzzer(NAME SOURCES fuzz/x.c LIBS pskgw_x ...)
#   A libFuzzer target (only when PSKGW_FUZZ=ON, built with clang). Its seed corpus lives in
#   fuzz/corpus/<NAME>/; scripts/fuzz runs every target (scripts/test: a short smoke run).
#   Each target is listed in ${PROJECT_BINARY_DIR}/fuzz-targets.txt: scripts/fuzz fails when one of
#   them (or of fuzz/fuzz_*.c) was not built or did not run.
set(PSKGW_FUZZ_TARGETS_FILE ${PROJECT_BINARY_DIR}/fuzz-targets.txt)
if(PSKGW_FUZZ)
  file(WRITE ${PSKGW_FUZZ_TARGETS_FILE} "") # rewritten by every configure
endif()

function(pskgw_add_fuzzer name)
  if(NOT PSKGW_FUZZ)
    return()
  endif()
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  file(APPEND ${PSKGW_FUZZ_TARGETS_FILE} "${name}\n")
endfunction()
