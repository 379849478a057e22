/* runtime/identity: a data directory remembers its replica; a copy started
 * as another replica, or a damaged identity file, is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/identity.h"

struct fixture {
    char dir[64];
    char path[128];
    char meta[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/cohort-identity-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, IDENTITY_FILE);
    snprintf(fx->meta, sizeof(fx->meta), "%s/meta", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    unlink(fx->path);
    unlink(fx->meta);
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

static void a_new_directory_is_marked_and_then_kept(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    assert_int_equal(identity_check(fx->dir, 2, &err), 0);
    FILE *f = fopen(fx->path, "r");
    assert_non_null(f);
    char buf[64] = {0};
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    assert_int_equal(n, strlen("cohort data directory\nreplica 2\n"));
    assert_string_equal(buf, "cohort data directory\nreplica 2\n");
    assert_int_equal(identity_check(fx->dir, 2, &err), 0);
}

static void another_replica_is_refused_naming_the_owner(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    assert_int_equal(identity_check(fx->dir, 1, &err), 0);
    assert_int_equal(identity_check(fx->dir, 0, &err), -COHORT_ECONFIG);
    assert_non_null(strstr(err.message, "holds replica 1's state"));
    assert_non_null(strstr(err.message, "--id 1"));
}

static void data_without_the_file_is_adopted(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    put(fx->meta, "x");
    assert_int_equal(identity_check(fx->dir, 4, &err), 0);
    assert_int_equal(identity_check(fx->dir, 3, &err), -COHORT_ECONFIG);
}

static void damaged_files_are_refused(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[] = {
        "",
        "cohort data directory\nreplica \n",
        "cohort data directory\nreplica 1",
        "cohort data directory\nreplica 01\n",
        "cohort data directory\nreplica 1x\n",
        "cohort data directory\nreplica -1\n",
        "cohort data directory\nreplica 99999\n",
        "cohort data directory\nreplica 1\n\n",
        "some other program\nreplica 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cohort_err err;
        put(fx->path, bad[i]);
        assert_int_equal(identity_check(fx->dir, 1, &err), -COHORT_ECONFIG);
        assert_non_null(strstr(err.message, "is damaged"));
    }
    put(fx->path, "cohort data directory\nreplica 10\n");
    struct cohort_err err;
    assert_int_equal(identity_check(fx->dir, 10, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_new_directory_is_marked_and_then_kept,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            another_replica_is_refused_naming_the_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(data_without_the_file_is_adopted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(damaged_files_are_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
