# Transport (issue 3): the TLS link end to end, and refusals seen by an
# independent TLS client (openssl s_client). Loopback only, ephemeral ports.
find_program(OPENSSL_COMMAND openssl REQUIRED)

foreach(name transport_link transport_refusals)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  # Only libjustx-proto: the transport must not depend on gateway or adapter code.
  target_link_libraries(${name} PRIVATE justx-proto PkgConfig::CMOCKA)
  target_compile_definitions(${name} PRIVATE JX_PKI_DIR="${JX_PKI_DIR}"
                             JX_OPENSSL_COMMAND="${OPENSSL_COMMAND}")
  add_dependencies(${name} test-pki)
  add_test(NAME integration.${name} COMMAND ${name})
  set_tests_properties(integration.${name} PROPERTIES LABELS integration TIMEOUT 240)
endforeach()
