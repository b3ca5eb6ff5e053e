# Audit journal (issue 4): the real justx-audit against journals made, damaged
# and crashed by tests/integration/journal_writer.
add_executable(journal_writer ${CMAKE_CURRENT_LIST_DIR}/journal_writer.c)
target_link_libraries(journal_writer PRIVATE justx-journal)
add_dependencies(journal_writer test-pki)

foreach(part tamper crash audit_cli)
  add_test(NAME integration.journal_${part}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/journal_${part}.sh
            $<TARGET_FILE:justx-audit> $<TARGET_FILE:journal_writer> ${JX_PKI_DIR}
            ${CMAKE_CURRENT_BINARY_DIR}/journal_${part}.work)
  set_tests_properties(integration.journal_${part} PROPERTIES LABELS integration TIMEOUT 300)
endforeach()

# Signatures in the journal checked with the certificates it recorded.
add_executable(audit_signatures ${CMAKE_CURRENT_LIST_DIR}/audit_signatures.c)
target_link_libraries(audit_signatures PRIVATE justx-journal PkgConfig::JANSSON)
add_dependencies(audit_signatures test-pki justx-audit)
add_test(NAME integration.audit_signatures
  COMMAND audit_signatures $<TARGET_FILE:justx-audit> ${JX_PKI_DIR}
          ${CMAKE_CURRENT_BINARY_DIR}/audit_signatures.work)
set_tests_properties(integration.audit_signatures PROPERTIES LABELS integration TIMEOUT 60)
