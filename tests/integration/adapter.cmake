# Adapters (issue 6): the justx-adapter daemon (drop-box, HTTP API with curl
# as the client) and the justx CLI as short-lived adapters, across a real
# justx-gateway, with restarts and kill -9 of both. Loopback, free ports, one
# private directory under /tmp per test.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
find_program(CURL_COMMAND curl REQUIRED)

foreach(part config dropbox http cli restarts)
  add_test(NAME integration.adapter_${part}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/adapter_${part}.py
            --justx $<TARGET_FILE:justx>
            --daemon $<TARGET_FILE:justx-adapter-daemon>
            --gateway $<TARGET_FILE:justx-gateway>
            --pki ${JX_PKI_DIR}
            --gateway-conf ${CMAKE_SOURCE_DIR}/conf/gateway.conf
            --data ${CMAKE_SOURCE_DIR}/tests/data/json
            --curl ${CURL_COMMAND})
  set_tests_properties(integration.adapter_${part} PROPERTIES LABELS integration TIMEOUT 120)
endforeach()
