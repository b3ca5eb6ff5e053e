# Envelope benchmark: built with the tests, run by hand (see tests/bench/README.md).
add_executable(bench_envelope ${CMAKE_CURRENT_LIST_DIR}/bench_envelope.c)
target_link_libraries(bench_envelope PRIVATE justx-proto)
add_dependencies(bench_envelope test-pki)
# A short smoke run keeps the benchmark working; its numbers are not checked.
add_test(NAME bench.envelope.smoke COMMAND bench_envelope ${JX_PKI_DIR} 0.05)
set_tests_properties(bench.envelope.smoke PROPERTIES LABELS bench-smoke TIMEOUT 60)
