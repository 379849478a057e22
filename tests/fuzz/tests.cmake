# Fuzz targets (label "fuzz"), one per decoder of untrusted bytes: RESP,
# peer messages, the transport's handshake and frames, WAL recovery, the
# snapshot reader and receiver, the metadata slots, the store's log entry
# bodies and snapshot streams, the metrics port's HTTP requests
# (tests/fuzz/README.md).
#
# Normal builds (release, ASan, TSan) build each as a plain program
# (-DFUZZ_MAIN, tests/fuzz/fuzz_main.h) and ctest runs it as a smoke test:
# its corpus in tests/fuzz/corpus/<name>, then a fixed pseudo-random
# sequence of mutations of it, under whatever sanitizers the build has.
# With COHORT_FUZZ (make fuzz: clang, build-fuzz/) each is a libFuzzer
# binary <name>_fuzz instead, and no tests are registered.
set(COHORT_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

# cohort_fuzz_target(NAME INPUTS [extra sources...])
function(cohort_fuzz_target name inputs)
    set(sources ${COHORT_FUZZ_DIR}/${name}_fuzz.c ${ARGN})
    if(COHORT_FUZZ)
        set(target ${name}_fuzz)
        add_executable(${target} ${sources})
        target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    else()
        set(target ${name}_fuzz_smoke)
        add_executable(${target} ${sources})
        target_compile_definitions(${target} PRIVATE FUZZ_MAIN
                                                     INPUT_COUNT=${inputs})
        add_test(NAME fuzz/${name}
                 COMMAND ${target} ${COHORT_FUZZ_DIR}/corpus/${name})
        set_tests_properties(fuzz/${name} PROPERTIES LABELS fuzz TIMEOUT 300)
    endif()
    target_include_directories(${target} PRIVATE ${COHORT_FUZZ_DIR})
    target_link_libraries(${target} PRIVATE cohort_lib)
endfunction()

# Inputs per smoke run: each takes a few seconds under ASan or TSan.
cohort_fuzz_target(resp 30000)
cohort_fuzz_target(message 200000)
cohort_fuzz_target(transport 50000)
cohort_fuzz_target(wal 5000 ${COHORT_FUZZ_DIR}/fuzz_vfs.c)
cohort_fuzz_target(snapshot 30000 ${COHORT_FUZZ_DIR}/fuzz_vfs.c)
cohort_fuzz_target(meta 50000 ${COHORT_FUZZ_DIR}/fuzz_vfs.c)
cohort_fuzz_target(replica 300 ${COHORT_FUZZ_DIR}/fuzz_group.c)
cohort_fuzz_target(client 30000)
cohort_fuzz_target(kv 200000)
cohort_fuzz_target(kvsnap 20000)
cohort_fuzz_target(http 20000)

# Writes the seed corpus from valid encodings (tests/fuzz/README.md).
if(NOT COHORT_FUZZ)
    add_executable(fuzz_corpus_gen ${COHORT_FUZZ_DIR}/corpus_gen.c
                                   ${COHORT_FUZZ_DIR}/fuzz_vfs.c)
    target_include_directories(fuzz_corpus_gen PRIVATE ${COHORT_FUZZ_DIR})
    target_link_libraries(fuzz_corpus_gen PRIVATE cohort_lib)
endif()
