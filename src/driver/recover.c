/* recover — what survived on disk, read back at start for replica_init():
 * the metadata, the newest snapshot that verifies (restored into the state
 * machine) and the log records that continue it.
 *
 * Invariants: (1) the core is handed only log entries that chain from the
 * snapshot (op snapshot+1 with the snapshot's checksum as parent, and so
 * on), and the wal's log is that same log: wal_open() recovers against the
 * snapshot (struct wal_expect), so the two agree from the first append;
 * (2) a data directory of another cluster is refused, never used;
 * (3) damage the wal reports, including a log shorter than the metadata
 * says it was, is passed on (damaged_op) for repair from peers, never cut
 * silently; (4) the core's log has room for every record recovered, also
 * when --log-memory or the snapshot interval was lowered since they were
 * written (fit_log()); (5) the bound on uncommitted bytes is never below
 * the largest this data directory ran with (keep_pipeline_bound()). */
#include "driver/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "storage/checkpoint_file.h"

/* The metadata, and what it says of the log (into *x). */
static int recover_meta(struct driver *d, struct replica_durable *out,
                        struct wal_expect *x, struct cohort_err *err)
{
    struct meta_record meta;
    memset(&meta, 0, sizeof(meta));
    bool present = false;
    int rc = meta_open(&d->meta, d->vfs, d->meta_path, &meta, &present, err);
    if (rc == -COHORT_ECORRUPT) {
        /* docs/OPERATIONS.md, "Replace": the way back that needs no
         * assumption about the others' state. */
        char why[COHORT_ERR_MESSAGE_MAX];
        snprintf(why, sizeof(why), "%s", err->message);
        return err_set(err, rc,
                       "%.300s; move the data directory aside, run cohort "
                       "remove --cluster <member> %u, start the replica on "
                       "an empty --data-dir, then cohort add --cluster "
                       "<member> %u",
                       why, d->c.self, d->c.self);
    }
    if (rc != 0)
        return rc;
    d->meta_open = true;
    /* Checked first: a longer list also changes the derived cluster id. */
    if (present && meta.meta.replica_count != d->c.replica_count)
        return err_set(err, -COHORT_ECONFIG,
                       "%s belongs to a group of %" PRIu32
                       " replicas, but --peers lists %" PRIu32
                       ": pass the %" PRIu32
                       " addresses the group was started with, or point "
                       "--data-dir at this group's data",
                       d->meta_path, meta.meta.replica_count,
                       d->c.replica_count, meta.meta.replica_count);
    if (present && meta.cluster_id != d->c.cluster_id)
        return err_set(err, -COHORT_ECONFIG,
                       "%s belongs to cluster %016" PRIx64 ", not %016" PRIx64
                       ": point --data-dir at this cluster's data, or, if it "
                       "is this replica's data and the address lists "
                       "changed, pass --cluster-id %016" PRIx64,
                       d->meta_path, meta.cluster_id, d->c.cluster_id,
                       meta.cluster_id);
    out->meta_present = present;
    out->view = meta.meta.view;
    out->last_normal_view = meta.meta.last_normal_view;
    out->epoch = meta.meta.epoch;
    out->meta_flags = meta.meta.flags;
    out->membership = meta.meta.membership;
    out->epoch_op = meta.meta.epoch_op;
    out->epoch_checksum = meta.meta.epoch_checksum;
    /* Format 1 could be left with no wal segment by older cohort. */
    x->log_exists = present && meta.format_version >= 2;
    x->log_end_min = meta.log_end_min;
    x->log_end_check = meta.log_end_check;
    return 0;
}

static int recover_snapshot(struct driver *d, struct replica_durable *out,
                            uint8_t **table, struct cohort_err *err)
{
    struct snapshot_reader rd;
    int rc = snapshot_open_latest(&rd, d->vfs, d->snap_dir, err);
    if (rc == -COHORT_ENOTFOUND)
        return 0;
    if (rc == -COHORT_ECORRUPT) {
        /* Every snapshot is damaged: start from an empty state and a log
         * that cannot continue it, damaged, and let a primary repair us
         * (a snapshot from a peer) rather than refuse to start. */
        drv_log(d, DRIVER_LOG_WARN,
                "no snapshot verifies (%s); starting empty, to be repaired "
                "from peers",
                err->message);
        err_clear(err);
        d->snapshots_lost = true;
        return 0;
    }
    if (rc != 0)
        return rc;
    struct snapshot_info info = *snapshot_info(&rd);
    if (rd.skipped.code)
        drv_log(d, DRIVER_LOG_WARN, "passed over a bad snapshot: %s",
                rd.skipped.message);
    rc = drv_restore(d, &rd, table, err);
    snapshot_close(&rd);
    if (rc != 0)
        return err_wrap(err, "snapshot in %s", d->snap_dir);
    out->snapshot_op = info.op;
    out->snapshot_checksum = info.checksum;
    out->snapshot_timestamp_ms = info.timestamp_ms;
    out->client_table = *table;
    out->client_table_size = info.client_table_size;
    d->snapshot_op = info.op;
    return 0;
}

/* The core holds the log after the snapshot in memory: a ring of bodies
 * (log_bytes_max, from --log-memory) and a slot per op (log_ops_max, from
 * the snapshot interval). A log written under larger bounds does not fit
 * them: the core would take the records past the bounds for lost, and a
 * group restarted that way would wait for peers in the same case, for
 * good. So this run's bounds grow to the log found plus the configured
 * room; the next snapshot shrinks the log, and the next start after it
 * uses the configured bounds again. */
static void fit_log(struct driver *d, const struct replica_durable *out)
{
    struct replica_config *rc = &d->c.replica;
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < out->entry_count; i++)
        bytes += out->entries[i].h.body_size;
    if (bytes <= rc->log_bytes_max && out->entry_count <= rc->log_ops_max)
        return;
    uint64_t ops = out->entry_count + rc->log_ops_max;
    if (ops > UINT32_MAX)
        return; /* beyond any bound a run could have had: damage */
    uint64_t configured = rc->log_bytes_max;
    if (bytes > rc->log_bytes_max)
        rc->log_bytes_max += bytes;
    if (out->entry_count > rc->log_ops_max)
        rc->log_ops_max = (uint32_t)ops;
    d->log_bytes_recovered = bytes;
    drv_log(d, DRIVER_LOG_WARN,
            "the log after the snapshot at op %" PRIu64 " holds %" PRIu64
            " ops and %" PRIu64 " MiB, more than --log-memory (%" PRIu64
            " MiB) or the snapshot interval now allows: this run keeps %" PRIu64
            " MiB and %" PRIu32
            " ops for it; the lower setting applies from the first restart "
            "after the next snapshot",
            out->snapshot_op, out->entry_count, (bytes + (1u << 20) - 1) >> 20,
            configured >> 20, rc->log_bytes_max >> 20, rc->log_ops_max);
}

/* dir/bounds: the largest bound on uncommitted bytes (pipeline_bytes_max)
 * this data directory ran with. 16 bytes: magic u32, the bound u64,
 * crc32c u32 of the 12 before it. */
#define BOUNDS_FILE "bounds"
#define BOUNDS_MAGIC 0x53444e42u /* "BNDS" */
#define BOUNDS_SIZE 16u
#define BOUNDS_MAX (UINT64_C(1) << 40)

/* The commit floor at a restart and the largest message must use at least
 * the bound the log was appended under (docs/PROTOCOL.md, "Recovery after
 * a restart"), and the runtime derives the bound from the value and key
 * limits, which a restart may lower. So this run's bound is at least the
 * largest recorded, and a larger one is recorded, durably, before the
 * core appends anything under it. A file that does not check out is
 * ignored (the configured bound, as before it existed) and rewritten. */
static int keep_pipeline_bound(struct driver *d, struct cohort_err *err)
{
    struct replica_config *rc = &d->c.replica;
    char path[VFS_PATH_MAX];
    int r = vfs_path_join(path, d->c.data_dir, BOUNDS_FILE, err);
    if (r != 0)
        return r;
    uint8_t *data = NULL;
    size_t size = 0;
    r = vfs_read_file(d->vfs, path, &data, &size, err);
    if (r != 0 && r != -COHORT_ENOTFOUND)
        return err_wrap(err, "read %s", path);
    uint64_t kept = 0;
    if (r == 0) {
        if (size == BOUNDS_SIZE && get_u32(data) == BOUNDS_MAGIC &&
            crc32c(0, data, 12) == get_u32(data + 12) &&
            get_u64(data + 4) <= BOUNDS_MAX)
            kept = get_u64(data + 4);
        else
            drv_log(d, DRIVER_LOG_WARN,
                    "%s (%zu bytes) does not check out; ignoring it and "
                    "writing it again",
                    path, size);
    }
    free(data);
    if (kept > rc->pipeline_bytes_max) {
        drv_log(d, DRIVER_LOG_INFO,
                "the bound on unacknowledged bytes stays at %" PRIu64
                " (this data directory ran with it; the value and key "
                "limits now give %" PRIu64 ")",
                kept, rc->pipeline_bytes_max);
        rc->pipeline_bytes_max = kept;
        if (rc->log_bytes_max < 2u * kept)
            rc->log_bytes_max = 2u * kept;
        return 0;
    }
    if (kept == rc->pipeline_bytes_max)
        return 0;
    uint8_t buf[BOUNDS_SIZE];
    put_u32(buf, BOUNDS_MAGIC);
    put_u64(buf + 4, rc->pipeline_bytes_max);
    put_u32(buf + 12, crc32c(0, buf, 12));
    r = vfs_replace_file(d->vfs, d->c.data_dir, BOUNDS_FILE, buf, sizeof(buf),
                         err);
    return r != 0 ? err_wrap(err, "write %s", path) : 0;
}

/* The checkpoints kept from before the restart (storage/checkpoint_file.h):
 * advisory, so a file that does not read is passed over with a warning,
 * never a reason to refuse the start. */
static void recover_checkpoints(struct driver *d, struct replica_durable *out)
{
    d->checkpoint_op = malloc(CHECKPOINTS_MAX * sizeof(uint64_t));
    d->checkpoint_checksum = malloc(CHECKPOINTS_MAX * sizeof(uint64_t));
    ASSERT(d->checkpoint_op && d->checkpoint_checksum);
    struct cohort_err err;
    err_clear(&err);
    size_t count = 0;
    int rc = checkpoint_file_read(d->vfs, d->c.data_dir, d->c.cluster_id,
                                  d->checkpoint_op, d->checkpoint_checksum,
                                  CHECKPOINTS_MAX, &count, &err);
    if (rc != 0 && rc != -COHORT_ENOTFOUND)
        drv_log(d, DRIVER_LOG_WARN,
                "passed over the checkpoints file in %s (%s): it only helps "
                "find a member started on an older copy of its data, and "
                "is written again at the next snapshot",
                d->c.data_dir, err.message);
    out->checkpoint_op = d->checkpoint_op;
    out->checkpoint_checksum = d->checkpoint_checksum;
    out->checkpoint_count = rc == 0 ? count : 0;
}

int drv_recover(struct driver *d, struct replica_durable *out, uint8_t **table,
                struct cohort_err *err)
{
    memset(out, 0, sizeof(*out));
    *table = NULL;
    int rc = vfs_mkdir_parents_durable(d->vfs, d->c.data_dir, err);
    if (rc != 0)
        return err_wrap(err, "data directory %s", d->c.data_dir);
    rc = keep_pipeline_bound(d, err);
    if (rc != 0)
        return rc;
    struct wal_expect expect = {0};
    rc = recover_meta(d, out, &expect, err);
    if (rc == 0)
        rc = recover_snapshot(d, out, table, err);
    if (rc != 0)
        return rc;
    expect.base.op = out->snapshot_op;
    expect.base.checksum = out->snapshot_checksum;
    struct wal_config wc;
    wal_config_defaults(&wc);
    if (d->c.wal_segment_size)
        wc.segment_size = d->c.wal_segment_size;
    wc.torn_writes_possible = d->c.torn_writes_possible;
    wc.bug_trust_records = (d->c.replica.bugs & BUG_STORAGE_TRUST_RECORD) != 0;
    struct wal_recovery rec;
    memset(&rec, 0, sizeof(rec));
    rc = wal_open(&d->wal, d->vfs, d->wal_dir, &wc, &expect, &rec, err);
    if (rc != 0)
        return rc;
    d->wal_open = true;
    d->cut_torn_tail = rec.torn_tail;
    if (rec.damaged_op)
        drv_log(d, DRIVER_LOG_WARN, "log damage, repairing from peers: %s",
                rec.damage.message);
    if (rec.torn_tail)
        drv_log(d, DRIVER_LOG_INFO, "cut a torn last record: %s",
                rec.torn.message);
    if (rec.covered_damage)
        drv_log(d, DRIVER_LOG_WARN, "log damage the snapshot covers: %s",
                rec.covered.message);
    if (rec.stale_suffix)
        drv_log(d, DRIVER_LOG_INFO, "stale log: %s", rec.stale.message);
    if (!out->meta_present && rec.entry_count)
        /* The core counts such a log as damaged (replica_init()): the
         * metadata held the view it voted in, so it must not vote again
         * until a primary has repaired it. */
        drv_log(d, DRIVER_LOG_WARN,
                "log damage, repairing from peers: %s is missing, but the "
                "log holds ops %" PRIu64 " to %" PRIu64
                "; this replica takes no part in choosing a primary until a "
                "primary has brought it up to date",
                d->meta_path, rec.entries[0].h.op,
                rec.entries[rec.entry_count - 1].h.op);
    out->entries = rec.entries;
    out->entry_count = rec.entry_count;
    out->damaged_op = rec.damaged_op;
    out->commit = rec.commit;
    if (d->snapshots_lost && out->damaged_op == 0 &&
        (rec.entry_count == 0 || rec.entries[0].h.op != 1))
        out->damaged_op = 1; /* the state the snapshot held is gone */
    fit_log(d, out);
    if (out->meta_present)
        recover_checkpoints(d, out);
    return 0;
}

void drv_recover_release(struct driver *d, uint8_t *table)
{
    free(table);
    free(d->checkpoint_op);
    free(d->checkpoint_checksum);
    d->checkpoint_op = NULL;
    d->checkpoint_checksum = NULL;
    if (d->wal_open)
        wal_recovery_release(&d->wal);
}
