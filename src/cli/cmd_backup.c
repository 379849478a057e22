/* cli/cmd_backup — `cohort backup <host:port> <file>`: a consistent snapshot
 * of a live cluster's store, exported by its primary (COHORT.BACKUP, see
 * src/server/cmd_backup.c) and copied into a local file.
 *
 * The primary applies a write before it acknowledges it, so a snapshot at
 * the primary's applied op holds every write acknowledged before the backup
 * started (and maybe a few later ones): a prefix of the committed history,
 * never a torn one. The file is written to <file>.tmp, verified (its
 * checksums, by the same reader a replica uses at start), synced and only
 * then renamed to <file>: a <file> that exists is a whole backup.
 *
 * Backups may overlap: one started while another runs on the primary waits
 * for it and then starts its own, and the primary keeps the file of the
 * one before the latest while it is being read (runtime/backup.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/rpc.h"
#include "storage/snapshot.h"
#include "storage/vfs.h"

#define PIECE_SIZE (1u << 20)
/* How long `cohort backup` waits for another backup running on the
 * primary (another operator's, or a script's) before it gives up. */
#define BUSY_WAIT_MS (10 * 60 * 1000)
#define BUSY_TEXT "is still being written"
#define GONE_TEXT "no finished backup of op"

/* COHORT.BACKUP START; while another backup runs there, wait for it to
 * finish and start ours after it (ours must begin after this call did, or
 * it could miss writes acknowledged before that). */
static int start_backup(struct cli_rpc *c, uint64_t *op, struct cohort_err *err)
{
    struct resp_arg start[] = {{"COHORT.BACKUP", 13}, {"START", 5}};
    bool told = false;
    for (long waited = 0;; waited += 100) {
        int rc = cli_rpc_call(c, 2, start, err);
        if (rc != 0)
            return rc;
        const struct resp_node *n = &c->nodes[0];
        if (n->type == RESP_TYPE_INTEGER) {
            *op = (uint64_t)n->integer;
            return 0;
        }
        if (n->type != RESP_TYPE_ERROR)
            return err_set(err, -COHORT_EPROTO, "%s: unexpected reply",
                           c->addr);
        bool busy = memmem(n->str, n->len, BUSY_TEXT, strlen(BUSY_TEXT));
        if (!busy || waited >= BUSY_WAIT_MS)
            return err_set(err, -COHORT_EIO, "%s: %.*s%s", c->addr, (int)n->len,
                           n->str,
                           busy ? " (waited 10 minutes for it; run cohort "
                                  "backup again later)"
                                : "");
        if (!told)
            fprintf(stderr, "%s: %.*s; waiting for it to finish\n", c->addr,
                    (int)n->len, n->str);
        told = true;
        cli_pause_ms(100);
    }
}

/* Start a backup on the primary and wait until its file is written. */
static int export_snapshot(struct cli_rpc *c, uint64_t *op, uint64_t *size,
                           struct cohort_err *err)
{
    int rc = start_backup(c, op, err);
    if (rc != 0)
        return rc;
    /* STATUS <op>: ours, even once another backup has started after it. */
    char op_text[24];
    snprintf(op_text, sizeof(op_text), "%" PRIu64, *op);
    struct resp_arg status[] = {
        {"COHORT.BACKUP", 13}, {"STATUS", 6}, {op_text, strlen(op_text)}};
    for (;;) {
        rc = cli_rpc_expect(c, 3, status, RESP_TYPE_ARRAY, err);
        if (rc != 0)
            return rc;
        if (c->node_count != 13)
            return err_set(err, -COHORT_EPROTO, "%s: unexpected reply",
                           c->addr);
        const struct resp_node *v = &c->nodes[1];
        char state[16], error[COHORT_ERR_MESSAGE_MAX];
        snprintf(state, sizeof(state), "%.*s", (int)v[1].len, v[1].str);
        snprintf(error, sizeof(error), "%.*s", (int)v[11].len, v[11].str);
        uint64_t got = strtoull(v[3].str, NULL, 10);
        if (got != *op)
            return err_set(err, -COHORT_EPROTO,
                           "%s: asked about the backup of op %" PRIu64
                           ", told about op %" PRIu64,
                           c->addr, *op, got);
        if (!strcmp(state, "done")) {
            *size = strtoull(v[5].str, NULL, 10);
            return 0;
        }
        if (strcmp(state, "running"))
            return err_set(err, -COHORT_EIO, "%s: backup failed: %s", c->addr,
                           error);
        cli_pause_ms(50);
    }
}

/* Copy the primary's backup file of op into fd, piece by piece. */
static int copy_file(struct cli_rpc *c, uint64_t op, uint64_t size, int fd,
                     const char *path, struct cohort_err *err)
{
    char op_text[24], offset_text[24], count_text[24];
    snprintf(op_text, sizeof(op_text), "%" PRIu64, op);
    snprintf(count_text, sizeof(count_text), "%u", PIECE_SIZE);
    for (uint64_t offset = 0; offset < size;) {
        snprintf(offset_text, sizeof(offset_text), "%" PRIu64, offset);
        struct resp_arg read_args[] = {{"COHORT.BACKUP", 13},
                                       {"READ", 4},
                                       {op_text, strlen(op_text)},
                                       {offset_text, strlen(offset_text)},
                                       {count_text, strlen(count_text)}};
        int rc = cli_rpc_expect(c, 5, read_args, RESP_TYPE_BULK, err);
        if (rc != 0)
            return rc;
        const struct resp_node *piece = &c->nodes[0];
        if (piece->len == 0)
            return err_set(err, -COHORT_EIO,
                           "%s: the backup ended at %" PRIu64 " of %" PRIu64
                           " bytes",
                           c->addr, offset, size);
        if (write(fd, piece->str, piece->len) != (ssize_t)piece->len)
            return err_file(err, errno, "write %s", path);
        offset += piece->len;
    }
    if (fsync(fd) != 0)
        return err_file(err, errno, "fsync %s", path);
    return 0;
}

static int verify_file(const char *path, uint64_t op, struct cohort_err *err)
{
    struct snapshot_reader rd;
    int rc = snapshot_open(&rd, vfs_posix(), path, err);
    if (rc != 0)
        return rc;
    uint64_t got = snapshot_info(&rd)->op;
    snapshot_close(&rd);
    if (got != op)
        return err_set(err, -COHORT_ECORRUPT,
                       "%s holds op %" PRIu64 ", not %" PRIu64, path, got, op);
    return 0;
}

/* Check the destination before anything is asked of the cluster: a
 * directory, or a place where <file>.tmp cannot be made, used to fail only
 * after the whole snapshot was copied. Returns the open <file>.tmp (tmp),
 * or -1 after printing one line. */
static int open_destination(const char *path, char *tmp, size_t tmp_size)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "cohort backup: %s is a directory; give the path of the file "
                "to write, e.g. %s/cohort.snap\n",
                path, path);
        return -1;
    }
    int n = snprintf(tmp, tmp_size, "%s.tmp", path);
    if (n < 0 || (size_t)n >= tmp_size) {
        fprintf(stderr, "cohort backup: %.200s...: path too long\n", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        struct cohort_err err;
        err_file(&err, e, "create %s", tmp);
        fprintf(stderr, "cohort backup: %s%s\n", err.message,
                e == ENOENT ? "; make its directory first" : "");
    }
    return fd;
}

/* Copy a backup into fd (tmp, taken over: closed, and unlinked on
 * failure), then verify it and rename it to path. */
static int backup_to(const char *addr, const char *path, int fd,
                     const char *tmp, uint64_t *op, uint64_t *size,
                     struct cohort_err *err)
{
    struct cli_rpc c;
    int rc = cli_rpc_open_primary(&c, addr, PIECE_SIZE + 4096, err);
    if (rc != 0) {
        close(fd);
        (void)unlink(tmp);
        return rc; /* c is closed */
    }
    rc = export_snapshot(&c, op, size, err);
    /* The file went away under the copy (more backups finished meanwhile
     * than the primary keeps while read): take a new one, a few times. */
    for (int tries = 1; rc == 0; tries++) {
        rc = copy_file(&c, *op, *size, fd, tmp, err);
        if (rc == 0 || tries == 3 || !strstr(err->message, GONE_TEXT))
            break;
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
            rc = err_file(err, errno, "truncate %s", tmp);
            break;
        }
        fprintf(stderr, "%s; taking a new backup\n", err->message);
        rc = export_snapshot(&c, op, size, err);
    }
    close(fd);
    cli_rpc_close(&c);
    if (rc == 0)
        rc = verify_file(tmp, *op, err);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_file(err, errno, "rename %s to %s", tmp, path);
    if (rc != 0)
        (void)unlink(tmp);
    return rc;
}

int cmd_backup(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: [COHORT_USER=name] [COHORT_PASSWORD=secret] cohort "
               "backup <host:port> <file>\n"
               "Export a consistent snapshot of a live cluster's store (taken "
               "by its primary,\nfound from any member's client address) into "
               "<file>. Restore it into a new\ncluster with 'cohort restore "
               "<file> <data-dir>' for every member.\n");
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-')
            return cli_flag_unknown("backup", argv[i]);
    if (argc != 3) {
        fprintf(stderr, "cohort backup: takes <host:port> <file>; see "
                        "'cohort backup --help'\n");
        return 2;
    }
    if (cli_flag_address("backup", argv[1]))
        return 2;
    char tmp[VFS_PATH_MAX];
    int fd = open_destination(argv[2], tmp, sizeof(tmp));
    if (fd < 0)
        return 2;
    uint64_t op = 0, size = 0;
    struct cohort_err err;
    err_clear(&err);
    if (backup_to(argv[1], argv[2], fd, tmp, &op, &size, &err) != 0) {
        fprintf(stderr, "cohort backup: %s\n", err.message);
        return 1;
    }
    printf("cohort backup: op %" PRIu64 " (%" PRIu64 " bytes) from %s "
           "written to %s\n",
           op, size, argv[1], argv[2]);
    return 0;
}
