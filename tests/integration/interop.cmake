# Interoperability: envelopes checked by protoc and the openssl command line.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME integration.interop
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/interop.py
                 $<TARGET_FILE:justx> ${JX_PKI_DIR} ${CMAKE_SOURCE_DIR}/proto/schema)
set_tests_properties(integration.interop PROPERTIES LABELS integration TIMEOUT 120)
