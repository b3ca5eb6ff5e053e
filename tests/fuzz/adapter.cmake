# Adapter submission parser fuzz harness (adapters/daemon/message_json.c).
# Always built as a corpus replay program and run by ctest; with -DJX_FUZZ=ON
# (CC=clang) also built as a libFuzzer binary:
#   fuzz_submission -dict=tests/fuzz/json.dict -max_total_time=600 NEW_DIR \
#     tests/fuzz/corpus/submission
set(JX_SUBMISSION_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/submission)

add_executable(fuzz_submission_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_submission.c)
target_compile_definitions(fuzz_submission_replay PRIVATE JX_FUZZ_REPLAY)
target_link_libraries(fuzz_submission_replay PRIVATE justx-adapter-support)
add_test(NAME fuzz.submission_corpus COMMAND fuzz_submission_replay ${JX_SUBMISSION_CORPUS})
set_tests_properties(fuzz.submission_corpus PROPERTIES LABELS fuzz TIMEOUT 120)

if(JX_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "JX_FUZZ needs clang (CC=clang)")
  endif()
  add_executable(fuzz_submission ${CMAKE_CURRENT_LIST_DIR}/fuzz_submission.c
    ${CMAKE_SOURCE_DIR}/adapters/daemon/message_json.c)
  target_compile_options(fuzz_submission PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_submission PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_submission PRIVATE justx-adapter-support)
endif()
