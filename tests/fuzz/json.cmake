# JSON mapping fuzz harness (proto/json.c). ctest replays the example
# documents and the seed corpus; the libFuzzer binary (-DJX_FUZZ=ON, CC=clang)
# runs as
#   fuzz_json -dict=tests/fuzz/json.dict -max_total_time=600 NEW_DIR \
#     tests/fuzz/corpus/json tests/data/json
include(${CMAKE_CURRENT_LIST_DIR}/fuzz_harness.cmake)
jx_fuzz_harness(fuzz_json
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_json.c
  LIBRARIES justx-proto
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/json ${CMAKE_SOURCE_DIR}/tests/data/json
  INSTRUMENT ${CMAKE_SOURCE_DIR}/proto/json.c)
