# ZMTP parser fuzz harness (proto/zmtp.c). ctest replays the corpus; the
# libFuzzer binary (-DJX_FUZZ=ON, CC=clang) runs as
#   fuzz_zmtp -max_total_time=600 CORPUS_DIR
include(${CMAKE_CURRENT_LIST_DIR}/fuzz_harness.cmake)
jx_fuzz_harness(fuzz_zmtp
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_zmtp.c
  LIBRARIES justx-proto
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/zmtp
  INSTRUMENT ${CMAKE_SOURCE_DIR}/proto/zmtp.c)
