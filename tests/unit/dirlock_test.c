/* runtime/dirlock: one holder per data directory, the refusal names the
 * holder's PID, and the lock lives exactly as long as the process that took
 * it (a forked child that forgot it does not keep it). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/dirlock.h"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/cohort-dirlock-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, DIRLOCK_FILE);
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

static long pid_in_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long pid = 0;
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    return pid;
}

static void second_holder_is_refused_naming_the_first(void **state)
{
    struct fixture *fx = *state;
    struct dirlock a, b;
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(dirlock_acquire(&a, fx->dir, &err), 0);
    assert_int_equal(pid_in_file(fx->path), (long)getpid());
    assert_int_equal(dirlock_acquire(&b, fx->dir, &err), -COHORT_ECONFIG);
    assert_int_equal(b.fd, -1);
    char pid[32];
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    assert_non_null(strstr(err.message, pid));
    assert_non_null(strstr(err.message, fx->dir));
    assert_non_null(strstr(err.message, "--data-dir"));
    assert_null(strchr(err.message, '\n'));
    dirlock_release(&a);
}

static void released_lock_is_free_and_stale_pid_is_replaced(void **state)
{
    struct fixture *fx = *state;
    FILE *f = fopen(fx->path, "w"); /* a stale file from a dead process */
    assert_non_null(f);
    fprintf(f, "999999999\n");
    fclose(f);
    struct dirlock a, b;
    struct cohort_err err;
    assert_int_equal(dirlock_acquire(&a, fx->dir, &err), 0);
    assert_int_equal(pid_in_file(fx->path), (long)getpid());
    dirlock_release(&a);
    dirlock_release(&a); /* twice is harmless */
    assert_int_equal(dirlock_acquire(&b, fx->dir, &err), 0);
    dirlock_release(&b);
}

static void missing_directory_is_created(void **state)
{
    struct fixture *fx = *state;
    char dir[160], path[192];
    snprintf(dir, sizeof(dir), "%s/a/b", fx->dir);
    snprintf(path, sizeof(path), "%s/%s", dir, DIRLOCK_FILE);
    struct dirlock a;
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(dirlock_acquire(&a, dir, &err), 0);
    assert_int_equal(pid_in_file(path), (long)getpid());
    dirlock_release(&a);
    unlink(path);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/a", fx->dir);
    rmdir(dir);
}

static void unwritable_place_is_a_clear_error(void **state)
{
    (void)state;
    struct dirlock a;
    struct cohort_err err;
    err_clear(&err);
    assert_true(dirlock_acquire(&a, "/proc/cohort-no/data", &err) < 0);
    assert_non_null(strstr(err.message, "/proc/cohort-no/data"));
    assert_int_equal(a.fd, -1);
}

/* The snapshot child's case: the holder forks, the child forgets the lock
 * and lives on; once the holder lets go (as when it dies), a new process
 * can take the directory although the child still runs. */
static void forked_child_does_not_keep_the_lock(void **state)
{
    struct fixture *fx = *state;
    struct dirlock a, b;
    struct cohort_err err;
    assert_int_equal(dirlock_acquire(&a, fx->dir, &err), 0);
    int ready[2], quit[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(quit), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        dirlock_forget_in_child(&a);
        char c = 'r';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        if (read(quit[0], &c, 1) < 0) /* live until told to go */
            _exit(2);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    /* The child's close did not release the holder's lock. */
    assert_int_equal(dirlock_acquire(&b, fx->dir, &err), -COHORT_ECONFIG);
    dirlock_release(&a); /* the holder dies */
    int rc = dirlock_acquire(&b, fx->dir, &err);
    assert_int_equal(write(quit[1], "q", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(rc, 0);
    dirlock_release(&b);
    close(ready[0]);
    close(ready[1]);
    close(quit[0]);
    close(quit[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            second_holder_is_refused_naming_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(
            released_lock_is_free_and_stale_pid_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_directory_is_created, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unwritable_place_is_a_clear_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(forked_child_does_not_keep_the_lock,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
