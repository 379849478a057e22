/* sim/disk: the simulated disk is a struct vfs that keeps exactly the
 * promises of storage/vfs.h and breaks them only as a real disk would.
 * Writes survive a process crash; at a power loss unsynced writes may
 * vanish, synced bytes never do, a name needs its directory synced, and
 * what survives is a prefix of the changes torn at a sector boundary.
 * Injected faults: a flipped synced bit, a misdirected write, EIO, ENOSPC
 * and a power-off countdown. The real wal runs over it and gets back
 * every op it reported durable. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/disk.h"
#include "storage/wal.h"

#define PPM 1000000u
#define SECTOR 512u
#define SEEDS 64u

struct fixture {
    struct prng prng;
    struct sim_disk disk;
    struct vfs *vfs;
    struct cohort_err err;
};

static void fixture_init(struct fixture *fx, uint64_t seed, uint32_t torn_ppm)
{
    prng_init(&fx->prng, seed);
    struct sim_disk_config config = {.sector_size = SECTOR,
                                     .torn_ppm = torn_ppm};
    sim_disk_init(&fx->disk, &fx->prng, &config);
    fx->vfs = sim_disk_vfs(&fx->disk);
    err_clear(&fx->err);
}

static struct fixture *fx_new(uint64_t seed, uint32_t torn_ppm)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fixture_init(fx, seed, torn_ppm);
    return fx;
}

static void fx_free(struct fixture *fx)
{
    sim_disk_deinit(&fx->disk);
    free(fx);
}

static void ok(struct fixture *fx, int rc, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s", what, fx->err.message);
}

static struct vfs_file *open_file(struct fixture *fx, const char *path,
                                  int flags)
{
    struct vfs_file *f = NULL;
    ok(fx, vfs_open(fx->vfs, path, flags, &f, &fx->err), path);
    return f;
}

/* A file under /d whose name is durable. */
static struct vfs_file *durable_file(struct fixture *fx, const char *path)
{
    int rc = vfs_mkdir(fx->vfs, "/d", &fx->err);
    assert_true(rc == 0 || rc == -COHORT_EEXIST);
    struct vfs_file *f = open_file(fx, path, VFS_CREATE);
    ok(fx, vfs_sync_dir(fx->vfs, "/d", &fx->err), "sync_dir");
    return f;
}

static void write_ok(struct fixture *fx, struct vfs_file *f, uint64_t offset,
                     const void *buf, size_t size)
{
    ok(fx, vfs_write(fx->vfs, f, offset, buf, size, &fx->err), "write");
}

static void sync_ok(struct fixture *fx, struct vfs_file *f)
{
    ok(fx, vfs_sync(fx->vfs, f, &fx->err), "sync");
}

/* The whole file at path into buf (cap bytes); returns its size. */
static size_t read_all(struct fixture *fx, const char *path, uint8_t *buf,
                       size_t cap)
{
    struct vfs_file *f = open_file(fx, path, VFS_READ_ONLY);
    size_t done = 0;
    ok(fx, vfs_read(fx->vfs, f, 0, buf, cap, &done, &fx->err), "read");
    vfs_close(fx->vfs, f);
    return done;
}

static bool exists(struct fixture *fx, const char *path)
{
    struct vfs_file *f = NULL;
    int rc = vfs_open(fx->vfs, path, VFS_READ_ONLY, &f, &fx->err);
    if (rc == 0)
        vfs_close(fx->vfs, f);
    else
        assert_int_equal(rc, -COHORT_ENOTFOUND);
    return rc == 0;
}

static void fill(uint8_t *buf, size_t size, uint8_t seed)
{
    for (size_t i = 0; i < size; i++)
        buf[i] = (uint8_t)(seed + i * 7u) | 1u; /* never zero */
}

/* ------------------------------------------------------------ durability */

static void unsynced_writes_survive_a_process_crash(void **state)
{
    (void)state;
    struct fixture *fx = fx_new(1, PPM);
    struct vfs_file *f = open_file(fx, "/a", VFS_CREATE);
    uint8_t data[3000], back[4000];
    fill(data, sizeof(data), 3);
    write_ok(fx, f, 0, data, sizeof(data));
    sim_disk_crash(&fx->disk, false);
    /* The handle died with the process. */
    assert_int_equal(vfs_write(fx->vfs, f, 0, data, 1, &fx->err), -COHORT_EIO);
    vfs_close(fx->vfs, f);
    /* The page cache did not: the name and every byte are there. */
    assert_int_equal(read_all(fx, "/a", back, sizeof(back)), sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    fx_free(fx);
}

/* Over many seeds a power loss drops unsynced writes, but never synced
 * bytes: the first 2048 bytes were synced, the next 2048 not. */
static void synced_bytes_survive_a_power_loss_and_unsynced_may_not(void **s)
{
    (void)s;
    uint32_t lost = 0, kept = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM);
        struct vfs_file *f = durable_file(fx, "/d/a");
        uint8_t synced[2048], later[2048], back[8192];
        fill(synced, sizeof(synced), 1);
        fill(later, sizeof(later), 2);
        write_ok(fx, f, 0, synced, sizeof(synced));
        sync_ok(fx, f);
        write_ok(fx, f, sizeof(synced), later, sizeof(later));
        vfs_close(fx->vfs, f);
        sim_disk_crash(&fx->disk, true);
        size_t size = read_all(fx, "/d/a", back, sizeof(back));
        assert_true(size >= sizeof(synced));
        assert_true(size <= sizeof(synced) + sizeof(later));
        assert_memory_equal(back, synced, sizeof(synced));
        /* Of the unsynced write, a prefix (maybe torn, maybe none). */
        assert_memory_equal(back + sizeof(synced), later,
                            size - sizeof(synced));
        lost += size < sizeof(synced) + sizeof(later);
        kept += size == sizeof(synced) + sizeof(later);
        fx_free(fx);
    }
    assert_true(lost > 0); /* a power loss can lose them */
    assert_true(kept > 0); /* or keep them: they may have reached the disk */
}

static void a_name_is_durable_only_after_its_directory_is_synced(void **s)
{
    (void)s;
    uint32_t gone = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM);
        uint8_t data[100];
        fill(data, sizeof(data), 5);
        ok(fx, vfs_mkdir(fx->vfs, "/d", &fx->err), "mkdir");
        struct vfs_file *f = open_file(fx, "/d/kept", VFS_CREATE);
        write_ok(fx, f, 0, data, sizeof(data));
        sync_ok(fx, f);
        vfs_close(fx->vfs, f);
        ok(fx, vfs_sync_dir(fx->vfs, "/d", &fx->err), "sync_dir");
        /* Synced data, but the name only in the page cache. */
        f = open_file(fx, "/d/maybe", VFS_CREATE);
        write_ok(fx, f, 0, data, sizeof(data));
        sync_ok(fx, f);
        vfs_close(fx->vfs, f);
        sim_disk_crash(&fx->disk, true);
        assert_true(exists(fx, "/d/kept"));
        gone += !exists(fx, "/d/maybe");
        fx_free(fx);
    }
    assert_true(gone > 0);
}

/* A renamed name is durable only after the directory sync: before it, a
 * power loss may bring the old name back (never both, never neither). */
static void a_rename_is_durable_only_after_its_directory_is_synced(void **s)
{
    (void)s;
    uint32_t undone = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM);
        vfs_close(fx->vfs, durable_file(fx, "/d/tmp"));
        ok(fx, vfs_rename(fx->vfs, "/d/tmp", "/d/final", &fx->err), "rename");
        sim_disk_crash(&fx->disk, true);
        bool tmp = exists(fx, "/d/tmp"), final = exists(fx, "/d/final");
        assert_true(tmp != final);
        undone += tmp;
        ok(fx,
           vfs_rename(fx->vfs, tmp ? "/d/tmp" : "/d/final", "/d/last",
                      &fx->err),
           "rename");
        ok(fx, vfs_sync_dir(fx->vfs, "/d", &fx->err), "sync_dir");
        sim_disk_crash(&fx->disk, true);
        assert_true(exists(fx, "/d/last"));
        assert_false(exists(fx, "/d/tmp"));
        assert_false(exists(fx, "/d/final"));
        fx_free(fx);
    }
    assert_true(undone > 0);
}

#define WRITES 6u
#define WRITE_SIZE 1500u /* spans sector boundaries at odd places */

/* Six unsynced writes side by side; after a power loss the first k are
 * whole, the next one is absent or holds a prefix that ends on a sector
 * boundary, and the rest are absent. */
static void a_power_loss_keeps_a_prefix_torn_at_a_sector_boundary(void **s)
{
    (void)s;
    uint32_t torn = 0, whole = 0;
    for (uint64_t seed = 1; seed <= 4 * SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM);
        struct vfs_file *f = durable_file(fx, "/d/log");
        uint8_t data[WRITES][WRITE_SIZE];
        for (uint32_t w = 0; w < WRITES; w++) {
            fill(data[w], WRITE_SIZE, (uint8_t)(w * 40));
            write_ok(fx, f, 100u + w * WRITE_SIZE, data[w], WRITE_SIZE);
        }
        vfs_close(fx->vfs, f);
        sim_disk_crash(&fx->disk, true);
        static uint8_t back[WRITES * WRITE_SIZE + 200];
        memset(back, 0, sizeof(back));
        size_t size = read_all(fx, "/d/log", back, sizeof(back));
        bool ended = false;
        for (uint32_t w = 0; w < WRITES; w++) {
            uint64_t at = 100u + w * WRITE_SIZE;
            uint64_t have = 0; /* bytes of write w that survived, a prefix */
            while (have < WRITE_SIZE && at + have < size &&
                   back[at + have] == data[w][have])
                have++;
            for (uint64_t k = have; k < WRITE_SIZE && at + k < size; k++)
                assert_int_equal(back[at + k], 0); /* nothing else there */
            if (ended) {
                assert_int_equal(have, 0);
                continue;
            }
            if (have == WRITE_SIZE)
                continue;
            ended = true;
            if (have > 0) {
                assert_int_equal((at + have) % SECTOR, 0);
                torn++;
            }
        }
        whole += !ended;
        fx_free(fx);
    }
    assert_true(torn > 0);
    assert_true(whole > 0);
}

/* ------------------------------------------------------------ faults */

static void corruption_flips_one_synced_bit_until_the_file_is_gone(void **s)
{
    (void)s;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM);
        struct vfs_file *f = durable_file(fx, "/d/seg");
        uint8_t data[4096], back[8192];
        fill(data, sizeof(data), 9);
        ok(fx, vfs_allocate(fx->vfs, f, 8192, &fx->err), "allocate");
        write_ok(fx, f, 0, data, sizeof(data));
        sync_ok(fx, f);
        vfs_close(fx->vfs, f);
        assert_false(sim_disk_damaged(&fx->disk));
        char path[VFS_PATH_MAX];
        uint64_t at = 0;
        assert_false(sim_disk_corrupt(&fx->disk, "/other/", path, &at));
        assert_true(sim_disk_corrupt(&fx->disk, "/d/", path, &at));
        assert_string_equal(path, "/d/seg");
        assert_true(at < sizeof(data)); /* not in the zero tail */
        assert_true(sim_disk_damaged(&fx->disk));
        assert_int_equal(read_all(fx, "/d/seg", back, sizeof(back)), 8192);
        uint32_t bits = 0;
        for (size_t i = 0; i < sizeof(data); i++) {
            uint8_t x = back[i] ^ data[i];
            if (x)
                assert_int_equal(i, at);
            bits += (uint32_t)__builtin_popcount(x);
        }
        assert_int_equal(bits, 1);
        /* It is on the platter: a power loss keeps it. */
        sim_disk_crash(&fx->disk, true);
        read_all(fx, "/d/seg", back, sizeof(back));
        assert_int_not_equal(back[at], data[at]);
        assert_true(sim_disk_damaged(&fx->disk));
        ok(fx, vfs_unlink(fx->vfs, "/d/seg", &fx->err), "unlink");
        ok(fx, vfs_sync_dir(fx->vfs, "/d", &fx->err), "sync_dir");
        assert_false(sim_disk_damaged(&fx->disk));
        fx_free(fx);
    }
}

static void a_misdirected_write_lands_elsewhere_and_reports_success(void **s)
{
    (void)s;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM);
        struct vfs_file *f = durable_file(fx, "/d/seg");
        ok(fx, vfs_allocate(fx->vfs, f, 4096, &fx->err), "allocate");
        sync_ok(fx, f);
        sim_disk_misdirect_next(&fx->disk, "");
        assert_true(sim_disk_damaged(&fx->disk)); /* armed */
        uint8_t data[64], back[4096];
        fill(data, sizeof(data), 11);
        write_ok(fx, f, 1024, data, sizeof(data));
        sync_ok(fx, f);
        vfs_close(fx->vfs, f);
        assert_int_equal(fx->disk.stats.misdirected, 1);
        assert_true(sim_disk_damaged(&fx->disk));
        size_t size = read_all(fx, "/d/seg", back, sizeof(back));
        assert_int_equal(size, 4096);
        assert_memory_not_equal(back + 1024, data, sizeof(data));
        bool found = false;
        for (size_t at = 0; at + sizeof(data) <= size && !found; at++)
            found = at != 1024 && !memcmp(back + at, data, sizeof(data));
        assert_true(found);
        /* Only the next write: the one after lands where it was aimed. */
        f = open_file(fx, "/d/seg", 0);
        write_ok(fx, f, 2048, data, sizeof(data));
        vfs_close(fx->vfs, f);
        read_all(fx, "/d/seg", back, sizeof(back));
        assert_memory_equal(back + 2048, data, sizeof(data));
        fx_free(fx);
    }
}

static void eio_is_injected_on_reads_writes_and_syncs(void **s)
{
    (void)s;
    struct fixture *fx = fx_new(7, PPM);
    struct vfs_file *f = durable_file(fx, "/d/a");
    uint8_t data[100], back[200];
    size_t done = 0;
    fill(data, sizeof(data), 1);
    write_ok(fx, f, 0, data, sizeof(data));
    sync_ok(fx, f);
    fx->disk.config.read_eio_ppm = PPM;
    assert_int_equal(
        vfs_read(fx->vfs, f, 0, back, sizeof(back), &done, &fx->err),
        -COHORT_EIO);
    assert_non_null(strstr(fx->err.message, "/d/a"));
    fx->disk.config.read_eio_ppm = 0;
    fx->disk.config.write_eio_ppm = PPM;
    uint8_t other[100];
    fill(other, sizeof(other), 77);
    assert_int_equal(vfs_write(fx->vfs, f, 0, other, sizeof(other), &fx->err),
                     -COHORT_EIO);
    fx->disk.config.write_eio_ppm = 0;
    ok(fx, vfs_read(fx->vfs, f, 0, back, sizeof(back), &done, &fx->err),
       "read");
    assert_int_equal(done, sizeof(data));
    assert_memory_equal(back, data, sizeof(data)); /* nothing was written */
    fx->disk.config.sync_eio_ppm = PPM;
    write_ok(fx, f, 0, other, sizeof(other));
    assert_int_equal(vfs_sync(fx->vfs, f, &fx->err), -COHORT_EIO);
    /* After a failed fsync the unsynced bytes may be gone: either image. */
    ok(fx, vfs_read(fx->vfs, f, 0, back, sizeof(back), &done, &fx->err),
       "read");
    assert_true(!memcmp(back, data, sizeof(data)) ||
                !memcmp(back, other, sizeof(other)));
    assert_int_equal(fx->disk.stats.eio_reads, 1);
    assert_int_equal(fx->disk.stats.eio_writes, 1);
    assert_int_equal(fx->disk.stats.eio_syncs, 1);
    vfs_close(fx->vfs, f);
    fx_free(fx);
}

static void enospc_until_space_returns(void **s)
{
    (void)s;
    struct fixture *fx = fx_new(7, PPM);
    struct vfs_file *f = durable_file(fx, "/d/a");
    uint8_t data[300];
    fill(data, sizeof(data), 1);
    write_ok(fx, f, 0, data, 200);
    sim_disk_set_capacity(&fx->disk, sim_disk_used(&fx->disk) + 100);
    /* Growing past the capacity fails; within it, or in place, works. */
    assert_int_equal(vfs_write(fx->vfs, f, 200, data, 101, &fx->err),
                     -COHORT_ENOSPC);
    assert_int_equal(fx->disk.stats.enospc, 1);
    assert_int_equal(vfs_allocate(fx->vfs, f, 400, &fx->err), -COHORT_ENOSPC);
    write_ok(fx, f, 0, data, 200);
    write_ok(fx, f, 200, data, 100);
    assert_int_equal(sim_disk_used(&fx->disk), 300);
    assert_int_equal(vfs_write(fx->vfs, f, 300, data, 1, &fx->err),
                     -COHORT_ENOSPC);
    sim_disk_set_capacity(&fx->disk, 0); /* space returns */
    write_ok(fx, f, 300, data, sizeof(data));
    sync_ok(fx, f);
    vfs_close(fx->vfs, f);
    fx_free(fx);
}

/* A deleted file's bytes stop counting once its name is gone for good and
 * no handle holds it; before that a power loss could bring it back. */
static void a_deleted_file_gives_its_space_back(void **s)
{
    (void)s;
    struct fixture *fx = fx_new(7, PPM);
    uint8_t data[1000];
    fill(data, sizeof(data), 1);
    for (int round = 0; round < 20; round++) {
        struct vfs_file *f = durable_file(fx, "/d/a");
        write_ok(fx, f, 0, data, sizeof(data));
        sync_ok(fx, f);
        ok(fx, vfs_unlink(fx->vfs, "/d/a", &fx->err), "unlink");
        ok(fx, vfs_sync_dir(fx->vfs, "/d", &fx->err), "sync_dir");
        /* Still open: its bytes are still held and still readable. */
        uint8_t back[1000];
        size_t done = 0;
        ok(fx, vfs_read(fx->vfs, f, 0, back, sizeof(back), &done, &fx->err),
           "read");
        assert_memory_equal(back, data, sizeof(data));
        assert_int_equal(sim_disk_used(&fx->disk), sizeof(data));
        vfs_close(fx->vfs, f);
        assert_int_equal(sim_disk_used(&fx->disk), 0);
    }
    /* A deleted name that a power loss could bring back keeps its bytes
     * until the deletion is durable. */
    struct vfs_file *f = durable_file(fx, "/d/b");
    write_ok(fx, f, 0, data, sizeof(data));
    sync_ok(fx, f);
    vfs_close(fx->vfs, f);
    ok(fx, vfs_unlink(fx->vfs, "/d/b", &fx->err), "unlink");
    assert_int_equal(sim_disk_used(&fx->disk), sizeof(data));
    sim_disk_crash(&fx->disk, true);
    if (exists(fx, "/d/b")) {
        uint8_t back[1000];
        assert_int_equal(read_all(fx, "/d/b", back, sizeof(back)),
                         sizeof(data));
        assert_memory_equal(back, data, sizeof(data));
        ok(fx, vfs_unlink(fx->vfs, "/d/b", &fx->err), "unlink");
    }
    ok(fx, vfs_sync_dir(fx->vfs, "/d", &fx->err), "sync_dir");
    assert_int_equal(sim_disk_used(&fx->disk), 0);
    fx_free(fx);
}

/* After the countdown runs out every call fails (the machine is off) until
 * the power comes back with sim_disk_crash(). */
static void power_off_countdown_fails_every_later_call(void **s)
{
    (void)s;
    struct fixture *fx = fx_new(7, PPM);
    struct vfs_file *f = durable_file(fx, "/d/a");
    uint8_t data[100], back[100];
    size_t done = 0;
    uint64_t size = 0;
    fill(data, sizeof(data), 1);
    sim_disk_power_off_after(&fx->disk, 3);
    write_ok(fx, f, 0, data, sizeof(data));
    sync_ok(fx, f);
    assert_false(sim_disk_powered_off(&fx->disk));
    assert_int_equal(vfs_write(fx->vfs, f, 0, data, 1, &fx->err), -COHORT_EIO);
    assert_true(sim_disk_powered_off(&fx->disk));
    struct vfs *v = fx->vfs;
    struct cohort_err *e = &fx->err;
    struct vfs_file *g = NULL;
    assert_int_equal(vfs_sync(v, f, e), -COHORT_EIO);
    assert_int_equal(vfs_truncate(v, f, 0, e), -COHORT_EIO);
    assert_int_equal(vfs_allocate(v, f, 9000, e), -COHORT_EIO);
    assert_int_equal(vfs_read(v, f, 0, back, sizeof(back), &done, e),
                     -COHORT_EIO);
    assert_int_equal(vfs_size(v, f, &size, e), -COHORT_EIO);
    assert_int_equal(vfs_open(v, "/d/b", VFS_CREATE, &g, e), -COHORT_EIO);
    assert_int_equal(vfs_open(v, "/d/a", VFS_READ_ONLY, &g, e), -COHORT_EIO);
    assert_int_equal(vfs_rename(v, "/d/a", "/d/c", e), -COHORT_EIO);
    assert_int_equal(vfs_unlink(v, "/d/a", e), -COHORT_EIO);
    assert_int_equal(vfs_mkdir(v, "/e", e), -COHORT_EIO);
    assert_int_equal(vfs_sync_dir(v, "/d", e), -COHORT_EIO);
    assert_true(sim_disk_powered_off(&fx->disk));
    vfs_close(v, f);
    sim_disk_crash(&fx->disk, true);
    assert_false(sim_disk_powered_off(&fx->disk));
    /* What was synced before the power went is there. */
    assert_int_equal(read_all(fx, "/d/a", back, sizeof(back)), sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    /* A countdown that is called off leaves the power on. */
    sim_disk_power_off_after(&fx->disk, 1);
    sim_disk_power_stays_on(&fx->disk);
    f = open_file(fx, "/d/a", 0);
    write_ok(fx, f, 0, data, sizeof(data));
    vfs_close(v, f);
    assert_false(sim_disk_powered_off(&fx->disk));
    fx_free(fx);
}

/* ------------------------------------------------------------ histories */

#define PATHS 6
#define FILES_MAX 512
#define FILE_MAX 2048

static const char *const paths[PATHS] = {"/d/a", "/d/b", "/d/c",
                                         "/e/a", "/e/b", "/e/c"};

/* What a history of calls promises, file by file and name by name. */
struct ref_file {
    uint8_t data[FILE_MAX]; /* what reads see */
    size_t size;
    bool dirty; /* written since its last sync */
    struct vfs_file *handle;
};

struct ref {
    struct ref_file *f;
    uint32_t count;
    int32_t bound[PATHS]; /* the file at each path, -1: none */
    bool settled[PATHS];  /* no name change here since the dir's sync */
};

static uint32_t ref_new_file(struct ref *r)
{
    assert_true(r->count < FILES_MAX);
    memset(&r->f[r->count], 0, sizeof(r->f[0]));
    return r->count++;
}

static void check_file(struct fixture *fx, const char *path,
                       const struct ref_file *want)
{
    static uint8_t back[FILE_MAX + 1];
    size_t size = read_all(fx, path, back, sizeof(back));
    assert_int_equal(size, want->size);
    assert_memory_equal(back, want->data, size);
}

/* Every handle still reads its file's bytes (none was freed under it). */
static void check_handles(struct fixture *fx, struct ref *r)
{
    static uint8_t back[FILE_MAX + 1];
    for (uint32_t i = 0; i < r->count; i++) {
        if (!r->f[i].handle)
            continue;
        size_t done = 0;
        ok(fx,
           vfs_read(fx->vfs, r->f[i].handle, 0, back, sizeof(back), &done,
                    &fx->err),
           "read");
        assert_int_equal(done, r->f[i].size);
        assert_memory_equal(back, r->f[i].data, done);
    }
}

static void close_all(struct fixture *fx, struct ref *r)
{
    for (uint32_t i = 0; i < r->count; i++)
        if (r->f[i].handle) {
            vfs_close(fx->vfs, r->f[i].handle);
            r->f[i].handle = NULL;
        }
}

/* After a power loss: settled names hold their files, a clean file its
 * bytes; then what is on the disk is the new truth. */
static void after_power_loss(struct fixture *fx, struct ref *r)
{
    for (int p = 0; p < PATHS; p++) {
        if (!r->settled[p])
            continue;
        int32_t b = r->bound[p];
        assert_int_equal(exists(fx, paths[p]), b >= 0);
        if (b >= 0 && !r->f[b].dirty)
            check_file(fx, paths[p], &r->f[b]);
    }
    r->count = 0;
    for (int p = 0; p < PATHS; p++) {
        r->settled[p] = true;
        r->bound[p] = -1;
        if (!exists(fx, paths[p]))
            continue;
        uint32_t id = ref_new_file(r);
        r->f[id].size = read_all(fx, paths[p], r->f[id].data, FILE_MAX + 1);
        assert_true(r->f[id].size <= FILE_MAX);
        r->bound[p] = (int32_t)id;
    }
}

static int pick_path(struct prng *g, const struct ref *r, bool bound)
{
    int p = (int)prng_below(g, PATHS);
    return (r->bound[p] >= 0) == bound ? p : -1;
}

static void history_step(struct fixture *fx, struct prng *g, struct ref *r)
{
    static uint8_t buf[300];
    int p = pick_path(g, r, true);
    int32_t b = p >= 0 ? r->bound[p] : -1;
    struct ref_file *f = b >= 0 ? &r->f[b] : NULL;
    switch (prng_below(g, 10)) {
    case 0: /* create */
        p = pick_path(g, r, false);
        if (p < 0)
            return;
        b = (int32_t)ref_new_file(r);
        r->f[b].handle = open_file(fx, paths[p], VFS_CREATE | VFS_EXCLUSIVE);
        r->bound[p] = b;
        r->settled[p] = false;
        return;
    case 1: /* open */
        if (f && !f->handle)
            f->handle = open_file(fx, paths[p], 0);
        return;
    case 2:
    case 3: { /* write */
        if (!f || !f->handle)
            return;
        uint64_t at = prng_below(g, f->size + 100);
        size_t n = 1 + (size_t)prng_below(g, sizeof(buf));
        if (at + n > FILE_MAX)
            return;
        fill(buf, n, (uint8_t)prng_next(g));
        write_ok(fx, f->handle, at, buf, n);
        if (at > f->size)
            memset(f->data + f->size, 0, at - f->size);
        memcpy(f->data + at, buf, n);
        f->size = at + n > f->size ? at + n : f->size;
        f->dirty = true;
        return;
    }
    case 4: /* sync */
        if (f && f->handle) {
            sync_ok(fx, f->handle);
            f->dirty = false;
        }
        return;
    case 5: /* close */
        if (f && f->handle) {
            vfs_close(fx->vfs, f->handle);
            f->handle = NULL;
        }
        return;
    case 6: { /* rename within the directory, maybe over another file */
        if (!f)
            return;
        int to = (p / 3) * 3 + (int)prng_below(g, 3);
        if (to == p)
            return;
        ok(fx, vfs_rename(fx->vfs, paths[p], paths[to], &fx->err), "rename");
        r->bound[to] = b;
        r->bound[p] = -1;
        r->settled[p] = r->settled[to] = false;
        return;
    }
    case 7: /* unlink */
        if (!f)
            return;
        ok(fx, vfs_unlink(fx->vfs, paths[p], &fx->err), "unlink");
        r->bound[p] = -1;
        r->settled[p] = false;
        return;
    case 8: { /* sync a directory */
        int dir = (int)prng_below(g, 2);
        ok(fx, vfs_sync_dir(fx->vfs, dir ? "/e" : "/d", &fx->err), "sync_dir");
        for (int k = 0; k < 3; k++)
            r->settled[dir * 3 + k] = true;
        return;
    }
    default: /* now and then a crash */
        if (prng_below(g, 8) != 0)
            return;
        close_all(fx, r);
        if (prng_below(g, 2) == 0) {
            sim_disk_crash(&fx->disk, false); /* the page cache stays */
            for (int k = 0; k < PATHS; k++)
                if (r->bound[k] >= 0)
                    check_file(fx, paths[k], &r->f[r->bound[k]]);
                else
                    assert_false(exists(fx, paths[k]));
            return;
        }
        sim_disk_crash(&fx->disk, true);
        after_power_loss(fx, r);
    }
}

/* Random histories of creates, writes, syncs, renames (also over another
 * file), unlinks of open and closed files, directory syncs, process
 * crashes and power losses: every promise of the durability model holds,
 * an open handle always reads its file, and once every handle is closed
 * and every name settled, the bytes held are exactly the named files'. */
static void random_histories_keep_every_promise(void **s)
{
    (void)s;
    struct ref r;
    r.f = calloc(FILES_MAX, sizeof(*r.f));
    assert_non_null(r.f);
    for (uint64_t seed = 1; seed <= 4 * SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM / 2);
        struct prng g;
        prng_init(&g, seed * 7919);
        ok(fx, vfs_mkdir(fx->vfs, "/d", &fx->err), "mkdir");
        ok(fx, vfs_mkdir(fx->vfs, "/e", &fx->err), "mkdir");
        r.count = 0;
        for (int p = 0; p < PATHS; p++) {
            r.bound[p] = -1;
            r.settled[p] = true;
        }
        for (int step = 0; step < 400 && r.count < FILES_MAX - 1; step++) {
            history_step(fx, &g, &r);
            check_handles(fx, &r);
        }
        close_all(fx, &r);
        ok(fx, vfs_sync_dir(fx->vfs, "/d", &fx->err), "sync_dir");
        ok(fx, vfs_sync_dir(fx->vfs, "/e", &fx->err), "sync_dir");
        uint64_t named = 0;
        for (int p = 0; p < PATHS; p++)
            if (r.bound[p] >= 0)
                named += r.f[r.bound[p]].size;
        assert_int_equal(sim_disk_used(&fx->disk), named);
        fx_free(fx);
    }
    free(r.f);
}

/* ------------------------------------------------------------ the wal */

#define OPS 120u
#define BODY_MAX 300u

struct ops {
    struct entry e[OPS + 1];
    uint8_t body[OPS + 1][BODY_MAX];
};

static void ops_make(struct ops *m)
{
    for (uint64_t op = 1; op <= OPS; op++) {
        struct entry *e = &m->e[op];
        uint32_t n = (uint32_t)(op * 53 % BODY_MAX) + 1;
        for (uint32_t i = 0; i < n; i++)
            m->body[op][i] = (uint8_t)(op * 31 + i);
        memset(e, 0, sizeof(*e));
        e->h.parent = op > 1 ? m->e[op - 1].h.checksum : 0;
        e->h.op = op;
        e->h.client_id = 1;
        e->h.request_no = op;
        e->h.timestamp_ms = op;
        e->h.view = 1;
        e->h.body_size = n;
        e->h.kind = ENTRY_CLIENT;
        e->body = m->body[op];
        entry_seal(&e->h, e->body);
    }
}

static void wal_open_ok(struct fixture *fx, struct wal *w,
                        struct wal_recovery *rec)
{
    struct wal_config config;
    wal_config_defaults(&config);
    config.segment_size = 4096; /* a few records each: segments rotate */
    config.torn_writes_possible = true;
    ok(fx, wal_open(w, fx->vfs, "/wal", &config, NULL, rec, &fx->err),
       "wal_open");
}

/* The recovered log is ops 1..n of m with n >= durable, undamaged. */
static void assert_recovered(const struct wal_recovery *rec,
                             const struct ops *m, uint64_t durable)
{
    if (rec->damaged_op)
        fail_msg("damage after a power loss: %s", rec->damage.message);
    assert_true(rec->entry_count >= durable);
    for (uint64_t i = 0; i < rec->entry_count; i++) {
        const struct entry *got = &rec->entries[i];
        const struct entry *want = &m->e[i + 1];
        assert_int_equal(got->h.op, want->h.op);
        assert_int_equal(got->h.checksum, want->h.checksum);
        assert_memory_equal(got->body, want->body, want->h.body_size);
    }
}

/* Append, syncing at random points (segments rotate), lose power: every
 * op a sync reported durable is back, in order, and nothing is called
 * damaged; the log goes on from there and survives the next loss too. */
static void wal_gets_back_every_synced_op_after_a_power_loss(void **s)
{
    (void)s;
    static struct ops m;
    ops_make(&m);
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct fixture *fx = fx_new(seed, PPM);
        struct wal w;
        struct wal_recovery rec;
        wal_open_ok(fx, &w, &rec);
        uint64_t durable = 0;
        uint64_t stop = 20 + prng_below(&fx->prng, OPS - 20);
        for (uint64_t op = 1; op <= stop; op++) {
            ok(fx, wal_append(&w, &m.e[op], 0, &fx->err), "append");
            if (prng_chance(&fx->prng, PPM / 5)) {
                struct wal_position pos;
                ok(fx, wal_sync(&w, &pos, &fx->err), "wal_sync");
                assert_int_equal(pos.op, op);
                durable = op;
            }
        }
        wal_close(&w); /* appended since the last sync: lost */
        sim_disk_crash(&fx->disk, true);
        wal_open_ok(fx, &w, &rec);
        assert_recovered(&rec, &m, durable);
        assert_int_equal(rec.entry_count, durable);
        uint64_t next = durable + 1;
        ok(fx, wal_append(&w, &m.e[next], 0, &fx->err), "append");
        ok(fx, wal_sync(&w, NULL, &fx->err), "wal_sync");
        wal_close(&w);
        sim_disk_crash(&fx->disk, true);
        wal_open_ok(fx, &w, &rec);
        assert_recovered(&rec, &m, next);
        wal_close(&w);
        fx_free(fx);
    }
}

/* The power goes off in the middle of a wal_sync, after 1..30 more disk
 * calls: the sync fails, and after the restart every op an earlier sync
 * reported durable is back. */
static void wal_survives_power_off_in_the_middle_of_a_sync(void **s)
{
    (void)s;
    static struct ops m;
    ops_make(&m);
    for (uint64_t calls = 1; calls <= 30; calls++) {
        struct fixture *fx = fx_new(calls, PPM);
        struct wal w;
        struct wal_recovery rec;
        wal_open_ok(fx, &w, &rec);
        uint64_t durable = 0, op = 1;
        for (; op <= 40; op++) {
            ok(fx, wal_append(&w, &m.e[op], 0, &fx->err), "append");
            if (op % 5 == 0) {
                ok(fx, wal_sync(&w, NULL, &fx->err), "wal_sync");
                durable = op;
            }
        }
        for (; op <= OPS; op++)
            ok(fx, wal_append(&w, &m.e[op], 0, &fx->err), "append");
        sim_disk_power_off_after(&fx->disk, calls);
        int rc = wal_sync(&w, NULL, &fx->err);
        if (rc == 0) {
            assert_false(sim_disk_powered_off(&fx->disk));
            durable = OPS;
        } else {
            assert_true(sim_disk_powered_off(&fx->disk));
        }
        wal_close(&w);
        sim_disk_crash(&fx->disk, true);
        wal_open_ok(fx, &w, &rec);
        assert_recovered(&rec, &m, durable);
        wal_close(&w);
        fx_free(fx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unsynced_writes_survive_a_process_crash),
        cmocka_unit_test(
            synced_bytes_survive_a_power_loss_and_unsynced_may_not),
        cmocka_unit_test(a_name_is_durable_only_after_its_directory_is_synced),
        cmocka_unit_test(
            a_rename_is_durable_only_after_its_directory_is_synced),
        cmocka_unit_test(a_power_loss_keeps_a_prefix_torn_at_a_sector_boundary),
        cmocka_unit_test(
            corruption_flips_one_synced_bit_until_the_file_is_gone),
        cmocka_unit_test(
            a_misdirected_write_lands_elsewhere_and_reports_success),
        cmocka_unit_test(eio_is_injected_on_reads_writes_and_syncs),
        cmocka_unit_test(enospc_until_space_returns),
        cmocka_unit_test(a_deleted_file_gives_its_space_back),
        cmocka_unit_test(power_off_countdown_fails_every_later_call),
        cmocka_unit_test(random_histories_keep_every_promise),
        cmocka_unit_test(wal_gets_back_every_synced_op_after_a_power_loss),
        cmocka_unit_test(wal_survives_power_off_in_the_middle_of_a_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
