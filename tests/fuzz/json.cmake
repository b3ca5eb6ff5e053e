# JSON mapping fuzz harness (proto/json.c). Always built as a corpus replay
# program and run by ctest over the example documents and the seed corpus;
# with -DJX_FUZZ=ON (CC=clang) also built as a libFuzzer binary:
#   fuzz_json -dict=tests/fuzz/json.dict -max_total_time=600 NEW_DIR \
#     tests/fuzz/corpus/json tests/data/json
set(JX_JSON_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/json ${CMAKE_SOURCE_DIR}/tests/data/json)

add_executable(fuzz_json_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_json.c)
target_compile_definitions(fuzz_json_replay PRIVATE JX_FUZZ_REPLAY)
target_link_libraries(fuzz_json_replay PRIVATE justx-proto)
add_test(NAME fuzz.json_corpus COMMAND fuzz_json_replay ${JX_JSON_CORPUS})
set_tests_properties(fuzz.json_corpus PROPERTIES LABELS fuzz TIMEOUT 120)

if(JX_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "JX_FUZZ needs clang (CC=clang)")
  endif()
  # json.c is compiled into the harness itself, instrumented for coverage;
  # libjustx-proto supplies the rest uninstrumented. The harness's json.c
  # symbols take precedence over the static library's copy, which the
  # linker then does not pull in.
  add_executable(fuzz_json ${CMAKE_CURRENT_LIST_DIR}/fuzz_json.c ${CMAKE_SOURCE_DIR}/proto/json.c)
  target_compile_options(fuzz_json PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_json PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_json PRIVATE justx-proto)
endif()
