# Fuzz harnesses run in CI as plain programs (-D*_FUZZ_MAIN): a fixed
# pseudo-random sequence of mutated inputs under whatever sanitizers the
# build has. `make fuzz` runs them under libFuzzer with clang instead.
add_executable(resp_fuzz_smoke ${CMAKE_SOURCE_DIR}/tests/fuzz/resp_fuzz.c)
target_compile_definitions(resp_fuzz_smoke PRIVATE RESP_FUZZ_MAIN
                                                   INPUT_COUNT=20000)
target_link_libraries(resp_fuzz_smoke PRIVATE cohort_lib)
add_test(NAME fuzz/resp COMMAND resp_fuzz_smoke)

add_executable(message_fuzz_smoke ${CMAKE_SOURCE_DIR}/tests/fuzz/message_fuzz.c)
target_compile_definitions(message_fuzz_smoke PRIVATE FUZZ_MAIN
                                                      INPUT_COUNT=50000)
target_link_libraries(message_fuzz_smoke PRIVATE cohort_lib)
add_test(NAME fuzz/message COMMAND message_fuzz_smoke)
set_tests_properties(fuzz/resp fuzz/message PROPERTIES LABELS fuzz
                                                       TIMEOUT 300)
