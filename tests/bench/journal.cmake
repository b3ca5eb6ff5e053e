# Journal benchmark: durable appends/s with group commit, inclusion-proof time
# in a 1,000,000-record journal. Run by hand (see tests/bench/README.md,
# section "Journal"); ctest only runs a smoke count and asserts no speed.
add_executable(bench_journal ${CMAKE_CURRENT_LIST_DIR}/bench_journal.c)
target_link_libraries(bench_journal PRIVATE justx-journal)
add_test(NAME bench.journal.smoke
  COMMAND bench_journal --dir ${CMAKE_CURRENT_BINARY_DIR}/bench-journal-smoke
          --records 2000 --proof-records 5000 --proofs 100)
set_tests_properties(bench.journal.smoke PROPERTIES LABELS bench-smoke TIMEOUT 120)
