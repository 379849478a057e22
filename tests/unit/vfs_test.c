/* storage/vfs: the POSIX implementation does what the interface says, and
 * the fault vfs loses exactly what was not made durable. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/vfs.h"
#include "storage/vfs_fault.h"
#include "tmpdir.h"

static int setup_dir(void **state)
{
    char *dir = malloc(64);
    if (!dir || !tmpdir_make(dir, 64, "vfs"))
        return -1;
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    tmpdir_remove(*state);
    free(*state);
    return 0;
}

static void path_in(char *out, const char *dir, const char *name)
{
    struct cohort_err err;
    assert_int_equal(vfs_path_join(out, dir, name, &err), 0);
}

static void write_file(struct vfs *vfs, const char *path, const char *text,
                       bool sync)
{
    struct cohort_err err;
    struct vfs_file *f;
    assert_int_equal(vfs_open(vfs, path, VFS_CREATE, &f, &err), 0);
    assert_int_equal(vfs_write(vfs, f, 0, text, strlen(text), &err), 0);
    if (sync)
        assert_int_equal(vfs_sync(vfs, f, &err), 0);
    vfs_close(vfs, f);
}

/* The file's contents as a string ("" if empty), or NULL if missing. */
static char *read_text(const char *path)
{
    uint8_t *data;
    size_t size;
    struct cohort_err err;
    int rc = vfs_read_file(vfs_posix(), path, &data, &size, &err);
    if (rc == -COHORT_ENOTFOUND)
        return NULL;
    assert_int_equal(rc, 0);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    free(data);
    return text;
}

static void assert_text(const char *path, const char *want)
{
    char *got = read_text(path);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void posix_write_read_and_size_agree(void **state)
{
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX];
    path_in(path, *state, "a");
    struct cohort_err err;
    struct vfs_file *f;
    assert_int_equal(vfs_open(vfs, path, VFS_CREATE, &f, &err), 0);
    assert_int_equal(vfs_write(vfs, f, 10, "hello", 5, &err), 0);
    uint64_t size;
    assert_int_equal(vfs_size(vfs, f, &size, &err), 0);
    assert_int_equal(size, 15);
    char buf[32];
    size_t done;
    assert_int_equal(vfs_read(vfs, f, 8, buf, sizeof(buf), &done, &err), 0);
    assert_int_equal(done, 7); /* short only at the end of the file */
    assert_memory_equal(buf, "\0\0hello", 7);
    assert_int_equal(vfs_sync(vfs, f, &err), 0);
    assert_int_equal(vfs_truncate(vfs, f, 12, &err), 0);
    assert_int_equal(vfs_size(vfs, f, &size, &err), 0);
    assert_int_equal(size, 12);
    vfs_close(vfs, f);
}

static void posix_missing_and_existing_files_have_their_codes(void **state)
{
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX];
    path_in(path, *state, "missing");
    struct cohort_err err;
    struct vfs_file *f;
    assert_int_equal(vfs_open(vfs, path, 0, &f, &err), -COHORT_ENOTFOUND);
    assert_non_null(strstr(err.message, "missing"));
    assert_int_equal(vfs_unlink(vfs, path, &err), -COHORT_ENOTFOUND);
    write_file(vfs, path, "x", false);
    assert_int_equal(vfs_open(vfs, path, VFS_CREATE | VFS_EXCLUSIVE, &f, &err),
                     -COHORT_EEXIST);
    assert_int_equal(vfs_mkdir(vfs, *state, &err), -COHORT_EEXIST);
}

/* A FIFO or a directory where a file belongs is refused at once: opening a
 * FIFO for reading would wait for a writer forever. */
static void posix_open_refuses_what_is_not_a_regular_file(void **state)
{
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX];
    path_in(path, *state, "fifo");
    assert_int_equal(mkfifo(path, 0600), 0);
    struct cohort_err err;
    struct vfs_file *f;
    assert_int_equal(vfs_open(vfs, path, VFS_READ_ONLY, &f, &err), -COHORT_EIO);
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(vfs_open(vfs, path, 0, &f, &err), -COHORT_EIO);
    uint8_t *data = NULL;
    size_t size = 0;
    assert_int_equal(vfs_read_file(vfs, path, &data, &size, &err), -COHORT_EIO);
    path_in(path, *state, "dir");
    assert_int_equal(vfs_mkdir(vfs, path, &err), 0);
    assert_int_equal(vfs_open(vfs, path, VFS_READ_ONLY, &f, &err), -COHORT_EIO);
}

static void posix_allocate_extends_with_zeros(void **state)
{
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX];
    path_in(path, *state, "big");
    struct cohort_err err;
    struct vfs_file *f;
    assert_int_equal(vfs_open(vfs, path, VFS_CREATE, &f, &err), 0);
    assert_int_equal(vfs_write(vfs, f, 0, "abc", 3, &err), 0);
    assert_int_equal(vfs_allocate(vfs, f, 8192, &err), 0);
    uint64_t size;
    assert_int_equal(vfs_size(vfs, f, &size, &err), 0);
    assert_int_equal(size, 8192);
    uint8_t buf[8192];
    size_t done;
    assert_int_equal(vfs_read(vfs, f, 0, buf, sizeof(buf), &done, &err), 0);
    assert_int_equal(done, 8192);
    assert_memory_equal(buf, "abc", 3);
    for (size_t i = 3; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    vfs_close(vfs, f);
}

struct names {
    int count;
    bool saw_a, saw_b;
};

static int count_name(void *ctx, const char *name)
{
    struct names *n = ctx;
    n->count++;
    n->saw_a |= strcmp(name, "a") == 0;
    n->saw_b |= strcmp(name, "b") == 0;
    return 0;
}

static void posix_list_rename_and_unlink_see_each_other(void **state)
{
    struct vfs *vfs = vfs_posix();
    char a[VFS_PATH_MAX], b[VFS_PATH_MAX], c[VFS_PATH_MAX];
    path_in(a, *state, "a");
    path_in(b, *state, "b");
    path_in(c, *state, "c");
    write_file(vfs, a, "1", false);
    write_file(vfs, c, "3", false);
    struct cohort_err err;
    assert_int_equal(vfs_rename(vfs, c, b, &err), 0);
    assert_int_equal(vfs_sync_dir(vfs, *state, &err), 0);
    struct names n = {0};
    assert_int_equal(vfs_list(vfs, *state, count_name, &n, &err), 0);
    assert_int_equal(n.count, 2);
    assert_true(n.saw_a && n.saw_b);
    assert_text(b, "3");
    assert_int_equal(vfs_unlink(vfs, a, &err), 0);
    assert_text(a, NULL);
}

/* The fault vfs. */

static void unsynced_write_is_lost_at_crash(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char path[VFS_PATH_MAX];
    path_in(path, *state, "f");
    struct cohort_err err;
    write_file(&f.vfs, path, "durable", true);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), 0);
    struct vfs_file *h;
    assert_int_equal(vfs_open(&f.vfs, path, 0, &h, &err), 0);
    assert_int_equal(vfs_write(&f.vfs, h, 0, "DURABLE-and-more", 16, &err), 0);
    assert_int_equal(vfs_fault_unsynced_bytes(&f), 16);
    assert_text(path, "DURABLE-and-more"); /* visible before the crash */
    assert_int_equal(vfs_fault_crash(&f, 0, VFS_FAULT_NAMES_NONE, &err), 0);
    assert_text(path, "durable");
    vfs_close(&f.vfs, h);
    vfs_fault_deinit(&f);
}

static void synced_write_survives_crash(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char path[VFS_PATH_MAX];
    path_in(path, *state, "f");
    struct cohort_err err;
    write_file(&f.vfs, path, "one", true);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), 0);
    write_file(&f.vfs, path, "two", true);
    assert_int_equal(vfs_fault_unsynced_bytes(&f), 0);
    assert_int_equal(vfs_fault_crash(&f, 0, VFS_FAULT_NAMES_NONE, &err), 0);
    assert_text(path, "two");
    vfs_fault_deinit(&f);
}

static void created_file_needs_a_directory_sync_to_survive(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char a[VFS_PATH_MAX], b[VFS_PATH_MAX];
    path_in(a, *state, "a");
    path_in(b, *state, "b");
    struct cohort_err err;
    write_file(&f.vfs, a, "synced but not named", true);
    assert_int_equal(
        vfs_fault_crash(&f, VFS_FAULT_KEEP_ALL, VFS_FAULT_NAMES_NONE, &err), 0);
    assert_text(a, NULL);
    write_file(&f.vfs, b, "named", true);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), 0);
    assert_int_equal(vfs_fault_crash(&f, 0, VFS_FAULT_NAMES_NONE, &err), 0);
    assert_text(b, "named");
    vfs_fault_deinit(&f);
}

static void rename_and_unlink_without_directory_sync_revert(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char a[VFS_PATH_MAX], b[VFS_PATH_MAX], t[VFS_PATH_MAX];
    path_in(a, *state, "a");
    path_in(b, *state, "b");
    path_in(t, *state, "t");
    struct cohort_err err;
    write_file(&f.vfs, a, "old", true);
    write_file(&f.vfs, b, "gone?", true);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), 0);
    write_file(&f.vfs, t, "new", true);
    assert_int_equal(vfs_rename(&f.vfs, t, a, &err), 0);
    assert_int_equal(vfs_unlink(&f.vfs, b, &err), 0);
    assert_text(a, "new");
    assert_int_equal(vfs_fault_crash(&f, 0, VFS_FAULT_NAMES_NONE, &err), 0);
    assert_text(a, "old");
    assert_text(b, "gone?");
    assert_text(t, NULL);
    /* The same again, made durable. */
    write_file(&f.vfs, t, "new", true);
    assert_int_equal(vfs_rename(&f.vfs, t, a, &err), 0);
    assert_int_equal(vfs_unlink(&f.vfs, b, &err), 0);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), 0);
    assert_int_equal(vfs_fault_crash(&f, 0, VFS_FAULT_NAMES_NONE, &err), 0);
    assert_text(a, "new");
    assert_text(b, NULL);
    vfs_fault_deinit(&f);
}

static void crash_keeps_a_prefix_of_unsynced_bytes_in_order(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char path[VFS_PATH_MAX];
    path_in(path, *state, "f");
    struct cohort_err err;
    write_file(&f.vfs, path, "", true);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), 0);
    struct vfs_file *h;
    assert_int_equal(vfs_open(&f.vfs, path, 0, &h, &err), 0);
    assert_int_equal(vfs_write(&f.vfs, h, 0, "abcd", 4, &err), 0);
    assert_int_equal(vfs_write(&f.vfs, h, 4, "efgh", 4, &err), 0);
    assert_int_equal(vfs_fault_crash(&f, 6, VFS_FAULT_NAMES_NONE, &err), 0);
    assert_text(path, "abcdef"); /* the second write is torn */
    vfs_close(&f.vfs, h);
    vfs_fault_deinit(&f);
}

static void a_later_rename_can_survive_an_earlier_lost_unlink(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char a[VFS_PATH_MAX], b[VFS_PATH_MAX], t[VFS_PATH_MAX];
    path_in(a, *state, "a");
    path_in(b, *state, "b");
    path_in(t, *state, "t");
    struct cohort_err err;
    write_file(&f.vfs, a, "stale", true);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), 0);
    assert_int_equal(vfs_unlink(&f.vfs, a, &err), 0);    /* name change 0 */
    write_file(&f.vfs, t, "fresh", true);                /* 1: create t */
    assert_int_equal(vfs_rename(&f.vfs, t, b, &err), 0); /* 2 */
    assert_int_equal(vfs_fault_unsynced_names(&f), 3);
    /* Only the rename reaches the disk: b appears, a is still there. */
    assert_int_equal(vfs_fault_crash(&f, 0, 1u << 2, &err), 0);
    assert_text(a, "stale");
    assert_text(b, "fresh");
    assert_text(t, NULL);
    assert_int_equal(vfs_fault_unsynced_names(&f), 0);
    vfs_fault_deinit(&f);
}

static void nth_write_and_sync_fail_with_the_given_errno(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char path[VFS_PATH_MAX];
    path_in(path, *state, "f");
    struct cohort_err err;
    struct vfs_file *h;
    assert_int_equal(vfs_open(&f.vfs, path, VFS_CREATE, &h, &err), 0);
    vfs_fault_fail_write(&f, 2, ENOSPC);
    assert_int_equal(vfs_write(&f.vfs, h, 0, "1", 1, &err), 0);
    assert_int_equal(vfs_write(&f.vfs, h, 1, "2", 1, &err), -COHORT_ENOSPC);
    assert_non_null(strstr(err.message, "No space left on device"));
    assert_int_equal(vfs_write(&f.vfs, h, 1, "2", 1, &err), 0); /* one shot */
    vfs_fault_fail_sync(&f, 1, EIO);
    assert_int_equal(vfs_sync(&f.vfs, h, &err), -COHORT_EIO);
    assert_int_equal(vfs_fault_unsynced_bytes(&f), 2); /* nothing durable */
    assert_int_equal(vfs_sync(&f.vfs, h, &err), 0);
    assert_int_equal(vfs_fault_unsynced_bytes(&f), 0);
    vfs_close(&f.vfs, h);
    vfs_fault_deinit(&f);
}

static void power_off_fails_every_later_operation_until_crash(void **state)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    char path[VFS_PATH_MAX];
    path_in(path, *state, "f");
    struct cohort_err err;
    struct vfs_file *h;
    vfs_fault_power_off_after(&f, 2); /* create and one write succeed */
    assert_int_equal(vfs_open(&f.vfs, path, VFS_CREATE, &h, &err), 0);
    assert_int_equal(vfs_write(&f.vfs, h, 0, "x", 1, &err), 0);
    assert_int_equal(vfs_write(&f.vfs, h, 1, "y", 1, &err), -COHORT_EIO);
    assert_int_equal(vfs_sync(&f.vfs, h, &err), -COHORT_EIO);
    assert_int_equal(vfs_sync_dir(&f.vfs, *state, &err), -COHORT_EIO);
    assert_int_equal(vfs_fault_stats(&f)->ops, 5);
    assert_int_equal(
        vfs_fault_crash(&f, VFS_FAULT_KEEP_ALL, VFS_FAULT_NAMES_NONE, &err), 0);
    /* The handle died with the crash; the file was never named durably. */
    assert_int_equal(vfs_write(&f.vfs, h, 0, "z", 1, &err), -COHORT_EIO);
    vfs_close(&f.vfs, h);
    assert_text(path, NULL);
    write_file(&f.vfs, path, "after", true); /* the power is back */
    vfs_fault_deinit(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(posix_write_read_and_size_agree,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(
            posix_missing_and_existing_files_have_their_codes, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            posix_open_refuses_what_is_not_a_regular_file, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(posix_allocate_extends_with_zeros,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(
            posix_list_rename_and_unlink_see_each_other, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(unsynced_write_is_lost_at_crash,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(synced_write_survives_crash, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(
            created_file_needs_a_directory_sync_to_survive, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            rename_and_unlink_without_directory_sync_revert, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            crash_keeps_a_prefix_of_unsynced_bytes_in_order, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            a_later_rename_can_survive_an_earlier_lost_unlink, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            nth_write_and_sync_fail_with_the_given_errno, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            power_off_fails_every_later_operation_until_crash, setup_dir,
            teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
