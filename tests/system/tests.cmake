# System tests (label "system"): real `cohort server` processes on loopback,
# driven by the Python 3 scripts in this folder (standard library only).
# Each script takes the cohort binary as its argument, picks free ports,
# keeps its data in a temp dir it removes, prints one summary line and exits
# 0 (pass), 1 (fail) or 77 (skipped: the server or redis-tools is missing).
# They use ports and CPU and time fault detection, so they run serially.
#
# Under the sanitizers (COHORT_SANITIZE, COHORT_TSAN) the scripts scale their
# waits by 4 (they detect an ASan or TSan binary), and so do the timeouts. A test may carry the label release-only,
# which `make test-asan` leaves out; none does today: the whole set takes
# about 50 s in a release build and about 2 min under ASan+UBSan, plus
# large_store (below).

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
    set(COHORT_PYTHON3 ${Python3_EXECUTABLE})
else()
    set(COHORT_PYTHON3 python3)
endif()

# cohort_system_test(NAME TIMEOUT [release-only])
function(cohort_system_test name timeout)
    set(labels system)
    if(COHORT_SANITIZE OR COHORT_TSAN)
        math(EXPR timeout "${timeout} * 4")
    endif()
    if("release-only" IN_LIST ARGN)
        list(APPEND labels release-only)
    endif()
    add_test(NAME system/${name}
             COMMAND ${COHORT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_${name}.py
                     $<TARGET_FILE:cohort>)
    set_tests_properties(system/${name} PROPERTIES
        LABELS "${labels}"
        TIMEOUT ${timeout}
        RUN_SERIAL TRUE
        SKIP_RETURN_CODE 77
        ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endfunction()

add_test(NAME system/resp_selftest
         COMMAND ${COHORT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/resp.py --selftest)
set_tests_properties(system/resp_selftest PROPERTIES LABELS system TIMEOUT 30)

cohort_system_test(failover 120)
cohort_system_test(transfer 120)
cohort_system_test(membership 180)
cohort_system_test(removed 120)
cohort_system_test(move 200)
cohort_system_test(spares 200)
cohort_system_test(backup_reads 240)
cohort_system_test(rejuvenate 240)
cohort_system_test(restart_catchup 150)
cohort_system_test(total_crash 150)
cohort_system_test(incarnation 150)
cohort_system_test(rollback 150)
cohort_system_test(wiped_voter 150)
cohort_system_test(corruption 180)
cohort_system_test(log_loss 300)
cohort_system_test(redis_tools 180)
cohort_system_test(bad_input 240)
cohort_system_test(pause 120)
cohort_system_test(data_dir_lock 90)
cohort_system_test(full_disk 150)
cohort_system_test(log_lines 90)
cohort_system_test(operator 200)
cohort_system_test(maxmemory 120)
cohort_system_test(stale_request 60)
cohort_system_test(client_limits 180)
cohort_system_test(client_auth 240)
cohort_system_test(client_tls 240)
cohort_system_test(metrics 120)
cohort_system_test(backup 180)
cohort_system_test(transactions 120)
cohort_system_test(strings 120)
cohort_system_test(pubsub 150)
cohort_system_test(watch 240)
cohort_system_test(install 180)
cohort_system_test(peer_injection 90)
cohort_system_test(peer_forged_view 120)
cohort_system_test(peer_spoof 90)
cohort_system_test(peer_modes 150)
cohort_system_test(file_modes 90)
cohort_system_test(large_store 300 release-only)
# make test runs half of large_store's writes (release build only; label
# large-store). Under ASan+UBSan its reduced form (a quarter) still saw a
# view change on a saturated machine: the sanitized replicas take longer
# than the default 150 ms timeout between messages; run it there by hand
# (tests/system/test_large_store.py build-asan/cohort). The full form, the
# issue's reproduction: tests/system/test_large_store.py build/cohort.
set(large_store_env PYTHONDONTWRITEBYTECODE=1 COHORT_LARGE_STORE_SCALE=0.5)
set_tests_properties(system/large_store PROPERTIES
    LABELS "system;large-store;release-only"
    ENVIRONMENT "${large_store_env}")
cohort_system_test(client_lib 240)
cohort_system_test(client_coord 300)
cohort_system_test(partition 600)
cohort_system_test(redis_py 240)
cohort_system_test(listing 180)
cohort_system_test(expiry 240)
cohort_system_test(forward_batch 120)
cohort_system_test(forward_gate 120)
cohort_system_test(sessions 240)
cohort_system_test(jobrunner 240)
