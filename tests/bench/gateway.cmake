# End-to-end benchmark through a real gateway (see tests/bench/README.md).
add_executable(bench_gateway ${CMAKE_CURRENT_LIST_DIR}/bench_gateway.c)
target_link_libraries(bench_gateway PRIVATE justx-adapter)
add_dependencies(bench_gateway justx-gateway test-pki)
# A small smoke run keeps the benchmark working; its numbers are not checked.
add_test(NAME bench.gateway.smoke
         COMMAND bench_gateway $<TARGET_FILE:justx-gateway> ${JX_PKI_DIR}
                 ${CMAKE_SOURCE_DIR}/conf/gateway.conf 200 20)
set_tests_properties(bench.gateway.smoke PROPERTIES LABELS bench-smoke TIMEOUT 120)
