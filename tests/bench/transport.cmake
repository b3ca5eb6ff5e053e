# Transport benchmark: TLS link versus plain ZeroMQ tcp://, 2 KiB messages.
# Run by hand: build-*/tests/bench_transport [COUNT [SIZE]] (see README.md).
# ctest only runs a smoke count, labelled bench; it asserts no speed.
add_executable(bench_transport ${CMAKE_CURRENT_LIST_DIR}/bench_transport.c)
target_include_directories(bench_transport PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../integration)
target_link_libraries(bench_transport PRIVATE justx-proto)
target_compile_definitions(bench_transport PRIVATE JX_PKI_DIR="${JX_PKI_DIR}")
add_dependencies(bench_transport test-pki)
add_test(NAME bench.transport.smoke COMMAND bench_transport 2000 2048)
set_tests_properties(bench.transport.smoke PROPERTIES LABELS bench-smoke TIMEOUT 120)
