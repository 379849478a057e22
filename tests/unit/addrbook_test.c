/* runtime/addrbook: the flags' addresses, the moves recorded in
 * <data-dir>/addresses over them, and a damaged file refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/addrbook.h"

struct fixture {
    char dir[64];
    char path[128];
    struct addrbook book;
};

static const char *const peers[] = {"127.0.0.1:7101", "127.0.0.1:7102",
                                    "127.0.0.1:7103"};
static const char *const clients[] = {"127.0.0.1:7001", "127.0.0.1:7002",
                                      "127.0.0.1:7003"};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/cohort-addrbook-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, ADDRBOOK_FILE);
    if (!addrbook_init(&fx->book, 3, peers, clients))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void without_a_file_the_flags_hold(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    assert_int_equal(addrbook_load(&fx->book, fx->dir, &err), 0);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(fx->book.peer[i], peers[i]);
        assert_string_equal(fx->book.client[i], clients[i]);
        assert_false(fx->book.moved[i]);
    }
}

static void a_saved_move_is_loaded_over_the_flags(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    snprintf(fx->book.peer[2], ADDRBOOK_TEXT_MAX, "10.0.0.9:7101");
    snprintf(fx->book.client[2], ADDRBOOK_TEXT_MAX, "10.0.0.9:7001");
    fx->book.moved[2] = true;
    assert_int_equal(addrbook_save(&fx->book, fx->dir, &err), 0);

    struct addrbook fresh;
    assert_true(addrbook_init(&fresh, 3, peers, clients));
    assert_int_equal(addrbook_load(&fresh, fx->dir, &err), 0);
    assert_string_equal(fresh.peer[2], "10.0.0.9:7101");
    assert_string_equal(fresh.client[2], "10.0.0.9:7001");
    assert_true(fresh.moved[2]);
    assert_string_equal(fresh.peer[0], peers[0]);
    assert_false(fresh.moved[0]);
    /* The file holds the moved id only. */
    FILE *f = fopen(fx->path, "r");
    assert_non_null(f);
    char text[256] = {0};
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    assert_true(n > 0);
    assert_string_equal(text, "cohort addresses\n2 10.0.0.9:7101 "
                              "10.0.0.9:7001\n");
}

static void damaged_files_are_refused_and_change_nothing(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[] = {
        "",
        "cohort address\n",
        "something else\n2 a:1 b:2\n",
        "cohort addresses\n2 a:1\n",
        "cohort addresses\n2 a:1 b:2",    /* no newline */
        "cohort addresses\n3 a:1 b:2\n",  /* id outside the universe */
        "cohort addresses\n12 a:1 b:2\n", /* two digits */
        "cohort addresses\n-1 a:1 b:2\n",
        "cohort addresses\n1 a:1 b:2\n1 c:1 d:2\n", /* twice */
        "cohort addresses\n1 nocolon b:2\n",
        "cohort addresses\n1 a:1 b,c:2\n",
        "cohort addresses\n1 a:1  b:2\n", /* two spaces */
        "cohort addresses\n1 a:\x01 b:2\n",
        "cohort addresses\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cohort_err err;
        put(fx->path, bad[i]);
        assert_int_equal(addrbook_load(&fx->book, fx->dir, &err),
                         -COHORT_ECONFIG);
        assert_non_null(strstr(err.message, "delete it to use --peers"));
        assert_string_equal(fx->book.peer[1], peers[1]);
        assert_false(fx->book.moved[1]);
    }
}

static void a_long_file_is_refused(void **state)
{
    struct fixture *fx = *state;
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fputs("cohort addresses\n", f);
    for (int i = 0; i < 10000; i++)
        fputs("1 a:1 b:2\n", f);
    fclose(f);
    struct cohort_err err;
    assert_int_equal(addrbook_load(&fx->book, fx->dir, &err), -COHORT_ECONFIG);
}

static void init_refuses_an_address_too_long(void **state)
{
    (void)state;
    char longer[ADDRBOOK_TEXT_MAX + 8];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    const char *p[] = {longer};
    const char *c[] = {"a:1"};
    struct addrbook b;
    assert_false(addrbook_init(&b, 1, p, c));
    assert_false(addrbook_init(&b, COHORT_REPLICAS_MAX + 1, peers, clients));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(without_a_file_the_flags_hold, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_saved_move_is_loaded_over_the_flags,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            damaged_files_are_refused_and_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(a_long_file_is_refused, setup,
                                        teardown),
        cmocka_unit_test(init_refuses_an_address_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
