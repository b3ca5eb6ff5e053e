# How every fuzz harness here is built and run (included by each harness's
# .cmake file):
# - always a replay program, the harness with replay_main.c, which ctest runs
#   over the harness's corpus directories (test fuzz.<short name>_corpus);
# - with -DJX_FUZZ=ON (CC=clang) also a libFuzzer binary. The parsers under
#   test (INSTRUMENT) are compiled into it, instrumented for coverage; their
#   symbols take precedence over the static libraries' uninstrumented copies,
#   which the linker then does not pull in.
include_guard(GLOBAL)

if(JX_FUZZ AND NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "JX_FUZZ needs clang (CC=clang)")
endif()

# jx_fuzz_harness(fuzz_<short> SOURCE file LIBRARIES lib... CORPUS dir...
#                 [INSTRUMENT source...] [PREFIXES])
# PREFIXES: the replay also runs every prefix of each corpus file.
function(jx_fuzz_harness name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "PREFIXES" "SOURCE" "LIBRARIES;CORPUS;INSTRUMENT")
  string(REGEX REPLACE "^fuzz_" "" short ${name})
  add_executable(${name}_replay ${arg_SOURCE} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/replay_main.c)
  if(arg_PREFIXES)
    target_compile_definitions(${name}_replay PRIVATE JX_REPLAY_PREFIXES)
  endif()
  target_link_libraries(${name}_replay PRIVATE ${arg_LIBRARIES})
  add_test(NAME fuzz.${short}_corpus COMMAND ${name}_replay ${arg_CORPUS})
  set_tests_properties(fuzz.${short}_corpus PROPERTIES LABELS fuzz TIMEOUT 120)

  if(JX_FUZZ)
    add_executable(${name} ${arg_SOURCE} ${arg_INSTRUMENT})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined -g)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${arg_LIBRARIES})
  endif()
endfunction()
