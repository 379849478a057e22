/* cmd_backup — COHORT.BACKUP, behind `cohort backup`: start an operator's
 * backup of this replica's store (runtime/backup: a snapshot at the applied
 * op, written by a forked child under <data-dir>/backup/), ask how it goes,
 * and read the finished file back in pieces of at most BACKUP_READ_MAX
 * bytes, so a backup of any size crosses the client port with bounded
 * buffers on both sides.
 *
 *   COHORT.BACKUP START                  -> :<op>
 *   COHORT.BACKUP STATUS [<op>]          -> state, op, size, duration_us,
 *                                           path, error (name/value pairs)
 *                                           of the latest backup, or of
 *                                           the finished one of op
 *   COHORT.BACKUP READ <op> <offset> <count>  -> $<bytes> (short at the end)
 *
 * A READ names the op of the backup it reads: the latest finished one, or
 * the one before it while it is still being read (runtime/backup.h); the
 * file of an older one is gone, and the client is told so rather than
 * handed bytes of another file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/backup.h"
#include "server/command.h"
#include "server/internal.h"

#define BACKUP_READ_MAX (1u << 20)

static void backup_start_reply(struct conn *c, struct resp_buf *out)
{
    struct cohort_err err;
    err_clear(&err);
    if (node_backup_start(c->server->node, &err) != 0) {
        resp_write_errorf(out, "ERR backup not started: %s", err.message);
        return;
    }
    resp_write_integer(out, (int64_t)node_backup(c->server->node)->op);
}

static void pair_text(struct resp_buf *out, const char *name, const char *v)
{
    resp_write_bulk(out, name, strlen(name));
    resp_write_bulk(out, v, strlen(v));
}

static void pair_u64(struct resp_buf *out, const char *name, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    pair_text(out, name, text);
}

static void backup_status_reply(struct conn *c, struct resp_buf *out,
                                const struct resp_arg *op_arg)
{
    const struct backup *b = node_backup(c->server->node);
    uint64_t op;
    if (op_arg != NULL) {
        if (!command_parse_u64(op_arg, &op)) {
            resp_write_errorf(out, "ERR COHORT.BACKUP STATUS takes an op");
            return;
        }
        const char *path;
        uint64_t size;
        if (op != b->op) {
            /* The previous backup, finished, if it is kept. */
            if (!node_backup_find(c->server->node, op, &path, &size)) {
                resp_write_errorf(
                    out,
                    "ERR no backup of op %" PRIu64
                    " on this replica (the latest is of op %" PRIu64
                    "); start one with COHORT.BACKUP START",
                    op, b->op);
                return;
            }
            resp_write_array(out, 12);
            pair_text(out, "state", backup_state_name(BACKUP_DONE));
            pair_u64(out, "op", op);
            pair_u64(out, "size", size);
            pair_u64(out, "duration_us", b->prev_duration_us);
            pair_text(out, "path", path);
            pair_text(out, "error", "");
            return;
        }
    }
    resp_write_array(out, 12);
    pair_text(out, "state", backup_state_name(b->state));
    pair_u64(out, "op", b->op);
    pair_u64(out, "size", b->size);
    pair_u64(out, "duration_us", b->duration_us);
    pair_text(out, "path", b->path);
    pair_text(out, "error", b->error);
}

/* Up to count bytes of the finished backup of op, from offset. */
static void backup_read_reply(struct conn *c, struct resp_buf *out,
                              const struct resp_arg *argv)
{
    uint64_t op, offset, count;
    if (!command_parse_u64(&argv[2], &op) ||
        !command_parse_u64(&argv[3], &offset) ||
        !command_parse_u64(&argv[4], &count) || count > BACKUP_READ_MAX) {
        resp_write_errorf(out, "ERR COHORT.BACKUP READ takes <op> <offset> "
                               "<count>, count at most 1048576");
        return;
    }
    const struct backup *b = node_backup(c->server->node);
    const char *path;
    uint64_t size;
    if (!node_backup_find(c->server->node, op, &path, &size)) {
        resp_write_errorf(out,
                          "ERR no finished backup of op %" PRIu64
                          " on this replica (state %s, op %" PRIu64
                          "); start one with COHORT.BACKUP START",
                          op, backup_state_name(b->state), b->op);
        return;
    }
    if (offset > size)
        offset = size;
    if (count > size - offset)
        count = size - offset;
    char *buf = malloc(count ? count : 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 && buf ? pread(fd, buf, count, (off_t)offset) : -1;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (n < 0 || (uint64_t)n != count)
        resp_write_errorf(out, "ERR read %s at %" PRIu64 ": %s", path, offset,
                          n < 0 ? strerror(saved) : "file cut short");
    else
        resp_write_bulk(out, buf, count);
    free(buf);
}

void cmd_cohort_backup(struct conn *c, struct resp_buf *out, uint32_t argc,
                       const struct resp_arg *argv)
{
    if (command_word_is(&argv[1], "start") && argc == 2)
        backup_start_reply(c, out);
    else if (command_word_is(&argv[1], "status") && (argc == 2 || argc == 3))
        backup_status_reply(c, out, argc == 3 ? &argv[2] : NULL);
    else if (command_word_is(&argv[1], "read") && argc == 5)
        backup_read_reply(c, out, argv);
    else
        resp_write_errorf(out,
                          "ERR usage: COHORT.BACKUP START | STATUS [<op>] | "
                          "READ <op> <offset> <count>");
}
