# pskgw_add_fuzzer(NAME SOURCES fuzz/x.c LIBS pskgw_x ...)
#   A libFuzzer target (only when PSKGW_FUZZ=ON, built with clang). Its seed corpus lives in
#   fuzz/corpus/<NAME>/; scripts/fuzz runs every target (scripts/test: a short smoke run).
function(pskgw_add_fuzzer name)
  if(NOT PSKGW_FUZZ)
    return()
  endif()
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
endfunction()
