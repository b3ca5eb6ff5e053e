# ZMTP parser fuzz harness (zmtp.c). Always built as a corpus replay program
# and run by ctest; with -DJX_FUZZ=ON (CC=clang) also built as a libFuzzer
# binary: fuzz_zmtp -max_total_time=600 CORPUS_DIR.
set(JX_ZMTP_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/zmtp)

add_executable(fuzz_zmtp_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_zmtp.c)
target_compile_definitions(fuzz_zmtp_replay PRIVATE JX_FUZZ_REPLAY)
target_link_libraries(fuzz_zmtp_replay PRIVATE justx-proto)
add_test(NAME fuzz.zmtp_corpus COMMAND fuzz_zmtp_replay ${JX_ZMTP_CORPUS})
set_tests_properties(fuzz.zmtp_corpus PROPERTIES LABELS fuzz TIMEOUT 120)

if(JX_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "JX_FUZZ needs clang (CC=clang)")
  endif()
  # zmtp.c is compiled into the harness itself, instrumented for coverage;
  # libjustx-proto supplies the rest (error.c) uninstrumented.
  add_executable(fuzz_zmtp ${CMAKE_CURRENT_LIST_DIR}/fuzz_zmtp.c ${CMAKE_SOURCE_DIR}/proto/zmtp.c)
  target_compile_options(fuzz_zmtp PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_zmtp PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_zmtp PRIVATE justx-proto)
endif()
