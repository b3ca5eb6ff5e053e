# Journal parsers fuzz harness (gateway/segment.c, proto/checkpoint.c, proto/base64.c).
# ctest replays the seeds and every prefix of each; the libFuzzer binary
# (-DJX_FUZZ=ON, CC=clang) runs as
#   fuzz_journal -max_total_time=600 NEW_DIR tests/fuzz/corpus/journal
include(${CMAKE_CURRENT_LIST_DIR}/fuzz_harness.cmake)
jx_fuzz_harness(fuzz_journal PREFIXES
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_journal.c
  LIBRARIES justx-journal
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/journal
  INSTRUMENT ${CMAKE_SOURCE_DIR}/gateway/segment.c ${CMAKE_SOURCE_DIR}/proto/checkpoint.c
             ${CMAKE_SOURCE_DIR}/proto/base64.c)
