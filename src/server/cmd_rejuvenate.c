/* cmd_rejuvenate — COHORT.REJUVENATE [FORCE], behind `cohort rejuvenate`:
 * restart this replica in place. The process finishes its disk work, closes
 * its ports and its data directory, and re-executes its binary with its
 * original arguments (cli/cmd_server.c, runtime/reexec): same PID, a new
 * process image (INFO server's run_id changes, its uptime starts again),
 * which recovers from its data directory and catches up from the group. An
 * admin command: under ACLs only a user allowed @admin runs it.
 *
 *   COHORT.REJUVENATE        -> +OK  the reply is queued before the stop;
 *                                    the connection then closes
 *                            -> -ERR one line saying why not and what to do
 *   COHORT.REJUVENATE PROGRESS <note>
 *                            -> +OK  `cohort rejuvenate` telling every member
 *                                    what it is doing, for INFO replication's
 *                                    rejuvenation_in_progress and
 *                                    rejuvenation_progress; DONE clears it
 *
 * Refused: on a replica that is not a primary or backup of a normal view
 * (it would restart into a group that may not have a majority), twice, and
 * on the primary of a group of more than one replica unless FORCE is given
 * (restarting the primary costs a view change by timeout: hand its role to
 * a backup first, cohort transfer, which `cohort rejuvenate` does). Nothing
 * is forwarded: the command is for the member it is sent to. */
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "runtime/logline.h"
#include "server/command.h"
#include "server/info.h"
#include "server/internal.h"

static bool refuse(struct server *s, struct resp_buf *out, bool force)
{
    if (s->config.rejuvenate == NULL) {
        resp_write_error(out, "ERR this server cannot re-execute itself "
                              "(it was not started by cohort server); "
                              "restart it by hand");
        return true;
    }
    if (s->admin.rejuvenating) {
        resp_write_error(out, "ERR this replica is already restarting; wait "
                              "for it to come back (cohort members)");
        return true;
    }
    struct node_status st;
    node_status(s->node, &st);
    if (st.removed) {
        resp_write_error(out, "ERR this replica is outside the group's "
                              "membership (removed, or not yet added), so "
                              "it is left alone; restart it by hand if need "
                              "be, or add it first (cohort add)");
        return true;
    }
    if (st.status != STATUS_NORMAL) {
        resp_write_errorf(out,
                          "ERR this replica is %s, not in a normal view; "
                          "wait until it is (cohort members) and try again",
                          info_role(&st));
        return true;
    }
    if (st.primary == st.self && st.replica_count > 1 && !force) {
        resp_write_error(out, "ERR this replica is the primary: hand its role "
                              "to a backup first (cohort transfer ID), or "
                              "use cohort rejuvenate, which does; FORCE "
                              "restarts it anyway (a view change by timeout)");
        return true;
    }
    return false;
}

/* COHORT.REJUVENATE PROGRESS <note>: remember the note for INFO ("DONE"
 * clears it). Printable ASCII, at most SERVER_ADMIN_NOTE_MAX bytes. */
static void progress(struct server *s, struct resp_buf *out,
                     const struct resp_arg *note)
{
    if (note->size > SERVER_ADMIN_NOTE_MAX) {
        resp_write_errorf(out, "ERR a progress note has at most %u bytes",
                          SERVER_ADMIN_NOTE_MAX);
        return;
    }
    for (size_t i = 0; i < note->size; i++)
        if (note->ptr[i] < 0x20 || note->ptr[i] > 0x7e) {
            resp_write_error(out, "ERR a progress note is printable ASCII");
            return;
        }
    bool done = note->size == 4 && !strncasecmp(note->ptr, "DONE", 4);
    size_t n = done ? 0 : note->size;
    memcpy(s->admin.rejuvenation, note->ptr, n);
    s->admin.rejuvenation[n] = '\0';
    resp_write_simple(out, "OK");
}

void cmd_cohort_rejuvenate(struct conn *c, struct resp_buf *out, uint32_t argc,
                           const struct resp_arg *argv)
{
    struct server *s = c->server;
    if (argc == 3 && argv[1].size == 8 &&
        !strncasecmp(argv[1].ptr, "PROGRESS", 8)) {
        progress(s, out, &argv[2]);
        return;
    }
    bool force = false;
    if (argc == 2 && argv[1].size == 5 && !strncasecmp(argv[1].ptr, "FORCE", 5))
        force = true;
    else if (argc != 1) {
        resp_write_error(out, "ERR usage: COHORT.REJUVENATE [FORCE] | "
                              "COHORT.REJUVENATE PROGRESS <note>");
        return;
    }
    if (refuse(s, out, force))
        return;
    struct node_status st;
    node_status(s->node, &st);
    s->admin.rejuvenating = true;
    logline(LOGLINE_INFO,
            "COHORT.REJUVENATE: restarting this replica (view %" PRIu64
            ", op %" PRIu64 ", commit %" PRIu64 "): re-executing the binary",
            st.view, st.op, st.commit);
    resp_write_simple(out, "OK");
    s->config.rejuvenate(s->config.rejuvenate_ctx);
}
