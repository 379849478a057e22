# Browser tests (label browser): pages a replica serves, rendered in
# headless Chromium (Debian's chromium and chromium-driver, which
# scripts/deps.sh installs unless COHORT_NO_BROWSER=1). Without chromium the
# test skips with exit 77 and says why; without chromedriver it renders the
# page with chromium --dump-dom instead. Python 3 standard library only: the
# test speaks WebDriver to chromedriver over HTTP. It uses ports and CPU, so it
# runs serially, like the system tests.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
    set(COHORT_PYTHON3 ${Python3_EXECUTABLE})
else()
    set(COHORT_PYTHON3 python3)
endif()

set(browser_timeout 120)
if(COHORT_SANITIZE)
    math(EXPR browser_timeout "${browser_timeout} * 4")
endif()
add_test(NAME browser/status_page
         COMMAND ${COHORT_PYTHON3}
                 ${CMAKE_CURRENT_LIST_DIR}/test_status_page.py
                 $<TARGET_FILE:cohort>)
set_tests_properties(browser/status_page PROPERTIES
    LABELS "browser;system"
    TIMEOUT ${browser_timeout}
    RUN_SERIAL TRUE
    SKIP_RETURN_CODE 77
    ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
