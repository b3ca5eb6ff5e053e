# Gateway (issue 5): the real justx-gateway process with real adapters and a
# raw protocol link on loopback, the dev PKI copied into a private temporary
# directory per test. Support code lives in tests/integration/support/.
if(TARGET justx-gateway AND TARGET justx-adapter)
  add_library(jx-gwtest-support STATIC
    ${CMAKE_CURRENT_LIST_DIR}/support/gwtest_process.c
    ${CMAKE_CURRENT_LIST_DIR}/support/gwtest_link.c
    ${CMAKE_CURRENT_LIST_DIR}/support/gwtest_agency.c)
  target_include_directories(jx-gwtest-support PUBLIC ${CMAKE_CURRENT_LIST_DIR}/support)
  target_link_libraries(jx-gwtest-support PUBLIC justx-adapter justx-journal justx-proto
                        PkgConfig::JANSSON PkgConfig::ZMQ Threads::Threads)
  target_compile_definitions(jx-gwtest-support PUBLIC
    JX_PKI_DIR="${JX_PKI_DIR}" JX_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    JX_GATEWAY_BIN="$<TARGET_FILE:justx-gateway>"
    JX_AUDIT_BIN="$<TARGET_FILE:justx-audit>")
  add_dependencies(jx-gwtest-support test-pki justx-gateway justx-audit)

  # name and time limit (seconds) of each test program
  set(gateway_tests
    gateway_rejections 180
    gateway_delivery 240
    gateway_reload 180
    gateway_crash 300
    gateway_admin 120)
  list(LENGTH gateway_tests n)
  math(EXPR last "${n} - 1")
  foreach(i RANGE 0 ${last} 2)
    math(EXPR j "${i} + 1")
    list(GET gateway_tests ${i} name)
    list(GET gateway_tests ${j} timeout)
    if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
      add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
      target_link_libraries(${name} PRIVATE jx-gwtest-support PkgConfig::CMOCKA)
      add_test(NAME integration.${name} COMMAND ${name})
      set_tests_properties(integration.${name} PROPERTIES LABELS integration TIMEOUT ${timeout})
    endif()
  endforeach()

  # Regression tests for bugs these tests found (each a test case of its own
  # program, run on its own).
  set(gateway_known_bugs
    # a TOO_LARGE receipt must name the message, or the adapter resends forever
    gateway_rejections oversized_via_adapter
    # far over max_message_bytes: a REJECTED receipt, not a dropped connection
    gateway_rejections far_oversized_via_adapter
    # --status must work while the file on disk is broken (after a refused reload)
    gateway_reload status_after_refused_reload
    # a backlog of queued receipts drains at once, not 256 per HELLO
    gateway_delivery receipt_backlog)
  list(LENGTH gateway_known_bugs n)
  math(EXPR last "${n} - 1")
  foreach(i RANGE 0 ${last} 2)
    math(EXPR j "${i} + 1")
    list(GET gateway_known_bugs ${i} program)
    list(GET gateway_known_bugs ${j} name)
    if(TARGET ${program})
      add_test(NAME integration.${program}.${name} COMMAND ${program} ${name})
      set_tests_properties(integration.${program}.${name} PROPERTIES
        LABELS integration TIMEOUT 120)
    endif()
  endforeach()
endif()
