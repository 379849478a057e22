# The purity check (label "tidy"): scripts/tidy.sh passes the tree, and
# tests/tidy/run.sh proves that it fails on each kind of violation (an
# allocation outside init, a banned call in core or common) and passes
# what is allowed. Shell and awk only: about a second per case on an idle
# machine, 20-60 s for the 18 cases on a loaded one (hence the timeout).
add_test(NAME tidy/tree COMMAND ${CMAKE_SOURCE_DIR}/scripts/tidy.sh)
add_test(NAME tidy/catches_violations
         COMMAND ${CMAKE_SOURCE_DIR}/tests/tidy/run.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(tidy/tree tidy/catches_violations PROPERTIES
                     LABELS tidy TIMEOUT 300)
