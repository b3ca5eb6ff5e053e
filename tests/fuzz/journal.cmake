# Journal parsers fuzz harness (gateway/segment.c, proto/checkpoint.c, proto/base64.c).
# Always built as a corpus replay program and run by ctest over the seeds;
# with -DJX_FUZZ=ON (CC=clang) also built as a libFuzzer binary:
#   fuzz_journal -max_total_time=600 NEW_DIR tests/fuzz/corpus/journal
set(JX_JOURNAL_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/journal)

add_executable(fuzz_journal_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_journal.c)
target_compile_definitions(fuzz_journal_replay PRIVATE JX_FUZZ_REPLAY)
target_link_libraries(fuzz_journal_replay PRIVATE justx-journal)
add_test(NAME fuzz.journal_corpus COMMAND fuzz_journal_replay ${JX_JOURNAL_CORPUS})
set_tests_properties(fuzz.journal_corpus PROPERTIES LABELS fuzz TIMEOUT 120)

if(JX_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "JX_FUZZ needs clang (CC=clang)")
  endif()
  # The parsers are compiled into the harness, instrumented for coverage;
  # their symbols take precedence over the static library's copies.
  add_executable(fuzz_journal ${CMAKE_CURRENT_LIST_DIR}/fuzz_journal.c
    ${CMAKE_SOURCE_DIR}/gateway/segment.c ${CMAKE_SOURCE_DIR}/proto/checkpoint.c
    ${CMAKE_SOURCE_DIR}/proto/base64.c)
  target_compile_options(fuzz_journal PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_journal PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_journal PRIVATE justx-journal)
endif()
