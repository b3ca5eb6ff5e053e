# Adapter submission parser fuzz harness (adapters/daemon/message_json.c).
# ctest replays the corpus; the libFuzzer binary (-DJX_FUZZ=ON, CC=clang) runs as
#   fuzz_submission -dict=tests/fuzz/json.dict -max_total_time=600 NEW_DIR \
#     tests/fuzz/corpus/submission
include(${CMAKE_CURRENT_LIST_DIR}/fuzz_harness.cmake)
jx_fuzz_harness(fuzz_submission
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_submission.c
  LIBRARIES justx-adapter-support
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/submission
  INSTRUMENT ${CMAKE_SOURCE_DIR}/adapters/daemon/message_json.c)
