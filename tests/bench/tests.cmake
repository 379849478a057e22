# Smoke tests of `cohort bench` (label bench): its flags and its errors, no
# cluster needed, well under a second each. Timing is measured in bench/,
# never asserted in tests.
function(cohort_bench_exit_test name expected_exit)
    add_test(NAME bench/${name}
             COMMAND sh -c "\"$0\" bench \"$@\" >/dev/null 2>&1; rc=$?; [ $rc -eq ${expected_exit} ] || { echo \"exit $rc, expected ${expected_exit}\"; exit 1; }"
                     $<TARGET_FILE:cohort> ${ARGN})
    set_tests_properties(bench/${name} PROPERTIES LABELS bench TIMEOUT 30)
endfunction()

cohort_bench_exit_test(help 0 --help)
cohort_bench_exit_test(bad_flag_is_usage 2 --no-such-flag 1)
cohort_bench_exit_test(bad_number_is_usage 2 --conc 0)
cohort_bench_exit_test(more_conns_than_conc_is_usage 2 --conc 4 --conns 8)
cohort_bench_exit_test(failover_needs_kill_cmd 2 --workload failover)
cohort_bench_exit_test(unknown_workload_is_usage 2 --workload scan)
# Port 1 on loopback refuses at once: a run failure, not a usage error.
cohort_bench_exit_test(unreachable_member_fails 1 --port 1 --seconds 1)

# The help documents every flag the parser accepts.
add_test(NAME bench/help_lists_every_flag
         COMMAND sh -c "out=$(\"$0\" bench --help) || exit 1; for f in host port members system workload conc conns value-size keys read-percent preload no-preload seconds ops warmup-seconds timeout-ms kill-cmd kill-after-ms after-ms seed quiet print-primary; do echo \"$out\" | grep -q -- \"--$f\" || { echo \"--$f missing\"; exit 1; }; done"
                 $<TARGET_FILE:cohort>)
set_tests_properties(bench/help_lists_every_flag PROPERTIES LABELS bench
                                                           TIMEOUT 30)

# kv_snapshot_cpu: the CPU time of a snapshot's write and restore at N keys
# (bench/RESULTS.md); here only a smoke run that fails if the restored
# store differs.
add_executable(kv_snapshot_cpu ${CMAKE_SOURCE_DIR}/tests/bench/kv_snapshot_cpu.c)
target_link_libraries(kv_snapshot_cpu PRIVATE cohort_lib)
add_test(NAME bench/kv_snapshot_cpu_smoke COMMAND kv_snapshot_cpu 1000)
set_tests_properties(bench/kv_snapshot_cpu_smoke PROPERTIES LABELS bench
                                                            TIMEOUT 60)
