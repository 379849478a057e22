/* INFO's text: section headers and fields, the replication section as a
 * primary and as a backup (member health, lag), section selection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/info.h"

struct fixture {
    struct node_status st;
    struct kv_stats kv;
    struct info_input in;
    struct resp_buf text;
    char *z; /* the text, NUL-terminated */
};

static void setup(struct fixture *f, uint32_t self, uint32_t primary)
{
    memset(f, 0, sizeof(*f));
    static const char *addrs[] = {"127.0.0.1:7001", "127.0.0.1:7002",
                                  "127.0.0.1:7003"};
    f->st.status = STATUS_NORMAL;
    f->st.view = 4;
    f->st.primary = primary;
    f->st.self = self;
    f->st.replica_count = 3;
    f->st.op = 120;
    f->st.commit = 118;
    f->st.applied = 117;
    f->st.peer_op[1] = 118;
    f->st.peer_op[2] = 100;
    f->st.peer_connected[0] = f->st.peer_connected[1] = true;
    f->st.peer_suspected[2] = true;
    f->st.log_bytes = 4096;
    f->st.snapshot_op = 64;
    f->st.snapshot_time_s = 1700000000;
    f->st.last_sync_us = 250;
    f->st.syncs = 9;
    f->st.messages_invalid = 5;
    f->st.views_refused = 2;
    static const char *peers[] = {"127.0.0.1:8001", "127.0.0.1:8002",
                                  "127.0.0.1:8003"};
    for (int i = 0; i < 3; i++) {
        f->st.client_addr[i] = addrs[i];
        f->st.peer_addr[i] = peers[i];
    }
    membership_all(&f->st.membership, 0, 3);
    f->kv.key_count = 3;
    f->kv.data_size = 30;
    f->in.status = &f->st;
    f->in.kv = &f->kv;
    f->in.version = "0.1.0";
    f->in.tcp_port = 7001;
    f->in.connected_clients = 2;
    f->in.maxclients = 10000;
    f->in.commands_processed = 42;
    resp_buf_init(&f->text, 2);
}

static const char *format(struct fixture *f, unsigned sections)
{
    f->text.size = 0;
    info_format(&f->text, &f->in, sections);
    assert_true(f->text.ok);
    free(f->z);
    f->z = calloc(1, f->text.size + 1);
    memcpy(f->z, f->text.data, f->text.size);
    return f->z;
}

static void teardown_fixture(struct fixture *f)
{
    resp_buf_deinit(&f->text);
    free(f->z);
}

static void primary_reports_members_health_and_lag(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0, 0);
    const char *t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "# Replication\r\nrole:primary\r\nview:4\r\n"));
    assert_non_null(strstr(t, "primary:127.0.0.1:7001\r\n"));
    assert_non_null(strstr(t, "commit_op:118\r\napplied_op:117\r\n"));
    assert_non_null(strstr(t, "member0:addr=127.0.0.1:7001,peer=127.0.0.1:8001,"
                              "role=primary,health=self\r\n"));
    assert_non_null(
        strstr(t, "member1:addr=127.0.0.1:7002,peer=127.0.0.1:8002,role=backup,"
                  "health=ok,link=up,op=118,lag=0\r\n"));
    assert_non_null(
        strstr(t, "member2:addr=127.0.0.1:7003,peer=127.0.0.1:8003,role=backup,"
                  "health=suspected,link=down,op=100,lag=18\r\n"));
    /* State transfer's counters (the pin, one sender). */
    f.in.compactions_pinned = 3;
    f.in.pins_overrun = 1;
    f.in.snapshot_stops = 2;
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "compactions_pinned:3\r\npins_overrun:1\r\n"
                              "snapshot_stops:2\r\n"));
    assert_null(strstr(t, "# Server"));
    teardown_fixture(&f);
}

static void backup_reports_no_lag(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 1, 0);
    const char *t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "role:backup\r\n"));
    assert_non_null(strstr(t, "primary:127.0.0.1:7001\r\n"));
    assert_null(strstr(t, "lag="));
    /* Replica 2 is suspected by the detector, but a backup does not hear
     * from other backups: it does not know. */
    assert_non_null(
        strstr(t, "member2:addr=127.0.0.1:7003,peer=127.0.0.1:8003,role=backup,"
                  "health=unknown,link=down\r\n"));
    assert_null(strstr(t, "health=suspected"));
    assert_non_null(strstr(
        t, "member0:addr=127.0.0.1:7001,peer=127.0.0.1:8001,role=primary,"
           "health=ok,link=up\r\n"));
    f.st.peer_suspected[0] = true;
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(
        t, "member0:addr=127.0.0.1:7001,peer=127.0.0.1:8001,role=primary,"
           "health=suspected,link=up\r\n"));
    f.st.status = STATUS_VIEW_CHANGE;
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "role:view_change\r\n"));
    /* Outside a normal view nobody's silence means much. */
    assert_non_null(strstr(
        t, "member0:addr=127.0.0.1:7001,peer=127.0.0.1:8001,role=primary,"
           "health=unknown,link=up\r\n"));
    teardown_fixture(&f);
}

/* Redis's replica fields, on a backup only: its link to the primary. */
static void backup_reports_its_primary_link(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 1, 0);
    f.st.primary_heard_ago_ms = 1999;
    const char *t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "primary_index:0\r\nmaster_link_status:up\r\n"
                              "master_last_io_seconds_ago:1\r\n"));
    f.st.primary_lost = true;
    f.st.primary_heard_ago_ms = 12000;
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "master_link_status:down\r\n"
                              "master_last_io_seconds_ago:12\r\n"));
    f.st.primary_heard_ago_ms = -1; /* never heard since start */
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "master_last_io_seconds_ago:-1\r\n"));
    f.st.status = STATUS_VIEW_CHANGE;
    t = format(&f, INFO_REPLICATION);
    assert_null(strstr(t, "master_link_status"));
    teardown_fixture(&f);
    setup(&f, 0, 0);
    t = format(&f, INFO_REPLICATION);
    assert_null(strstr(t, "master_link_status"));
    assert_null(strstr(t, "master_last_io_seconds_ago"));
    teardown_fixture(&f);
}

/* A reconfigured group: the epoch, its voters and learners, and each
 * member's place in it. */
static void replication_shows_epoch_and_roles(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0, 0);
    f.st.membership = (struct membership){.epoch = 3,
                                          .voter_count = 2,
                                          .voters = {0, 2},
                                          .learner_count = 1,
                                          .learners = {1}};
    const char *t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "epoch:3,voters=0+2\r\nlearners:1,ids=1\r\n"
                              "self_member:voter\r\n"));
    assert_non_null(strstr(t, "member1:addr=127.0.0.1:7002,peer=127.0.0.1:"
                              "8002,role=learner,"));
    assert_non_null(strstr(t, "member2:addr=127.0.0.1:7003,peer=127.0.0.1:"
                              "8003,role=backup,"));
    f.st.membership.learner_count = 0;
    f.st.self = 1;
    f.st.removed = true;
    f.st.status = STATUS_RECOVERING; /* as the core keeps an outsider */
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "learners:0,ids=\r\nself_member:outside\r\n"));
    assert_non_null(strstr(t, "member1:addr=127.0.0.1:7002,peer=127.0.0.1:"
                              "8002,role=outside,health=self"));
    /* Never added (a spare): outside, not recovering. */
    assert_non_null(strstr(t, "# Replication\r\nrole:outside\r\n"));
    /* Removed by a membership change: says so. The membership lines stay
     * as they were (cohort members, the client's discovery read them). */
    f.st.left = true;
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "# Replication\r\nrole:removed\r\n"));
    assert_non_null(strstr(t, "self_member:outside\r\n"));
    assert_non_null(strstr(t, "member1:addr=127.0.0.1:7002,peer=127.0.0.1:"
                              "8002,role=outside,health=self"));
    assert_string_equal(info_role(&f.st), "removed");
    teardown_fixture(&f);
}

static void every_section_appears_once_in_order(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0, 0);
    const char *t = format(&f, INFO_ALL);
    const char *names[] = {"# Server",      "# Clients",     "# Memory",
                           "# Replication", "# Persistence", "# Stats",
                           "# Keyspace"};
    const char *at = t;
    for (size_t i = 0; i < 7; i++) {
        const char *p = strstr(at, names[i]);
        assert_non_null(p);
        assert_null(strstr(p + 1, names[i]));
        at = p;
    }
    assert_non_null(strstr(t, "connected_clients:2\r\n"));
    assert_non_null(strstr(t, "connected_forward_links:0\r\n"));
    assert_non_null(strstr(t, "timedout_connections:0\r\n"));
    assert_non_null(strstr(t, "maxmemory_policy:noeviction\r\n"));
    assert_non_null(strstr(t, "total_commands_processed:42\r\n"));
    assert_non_null(strstr(t, "last_snapshot_op:64\r\n"));
    assert_non_null(strstr(t, "last_sync_latency_us:250\r\n"));
    assert_non_null(strstr(t, "peer_messages_invalid:5\r\n"));
    assert_non_null(strstr(t, "peer_views_refused:2\r\n"));
    assert_non_null(strstr(t, "db0:keys=3,expires=0,avg_ttl=0\r\n"));
    /* Every line ends in CRLF and none is empty but the separators. */
    assert_int_equal(t[strlen(t) - 1], '\n');
    assert_int_equal(t[strlen(t) - 2], '\r');
    teardown_fixture(&f);
}

static void memory_section_has_redis_fields(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0, 0);
    f.in.used_memory = 1536;
    f.in.used_memory_rss = 3u << 20;
    f.in.maxmemory = 0;
    assert_string_equal(format(&f, INFO_MEMORY),
                        "# Memory\r\n"
                        "used_memory:1536\r\n"
                        "used_memory_human:1.50K\r\n"
                        "used_memory_rss:3145728\r\n"
                        "used_memory_rss_human:3.00M\r\n"
                        "maxmemory:0\r\n"
                        "maxmemory_human:0B\r\n"
                        "maxmemory_policy:noeviction\r\n");
    char text[32];
    info_bytes_human(1023, text, sizeof(text));
    assert_string_equal(text, "1023B");
    info_bytes_human(5ull << 30, text, sizeof(text));
    assert_string_equal(text, "5.00G");
    teardown_fixture(&f);
}

static void empty_keyspace_has_only_its_header(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0, 0);
    f.kv.key_count = 0;
    assert_string_equal(format(&f, INFO_KEYSPACE), "# Keyspace\r\n");
    teardown_fixture(&f);
}

static void section_names_select_sections(void **state)
{
    (void)state;
    struct resp_arg argv[] = {
        {"INFO", 4}, {"REPLICATION", 11}, {"stats", 5}, {"nosuch", 6}};
    assert_int_equal(info_sections(1, argv), INFO_ALL);
    assert_int_equal(info_sections(2, argv), INFO_REPLICATION);
    assert_int_equal(info_sections(3, argv), INFO_REPLICATION | INFO_STATS);
    assert_int_equal(info_sections(4, argv), INFO_REPLICATION | INFO_STATS);
    struct resp_arg only_bad[] = {{"INFO", 4}, {"nosuch", 6}};
    assert_int_equal(info_sections(2, only_bad), 0);
    struct resp_arg all[] = {{"INFO", 4}, {"everything", 10}};
    assert_int_equal(info_sections(2, all), INFO_ALL);
}

static void persistence_shows_a_disk_stall_and_failing_snapshots(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0, 0);
    const char *t = format(&f, INFO_PERSISTENCE);
    assert_non_null(strstr(t, "disk_status:ok\r\n"));
    assert_non_null(strstr(t, "disk_stalled_since:0\r\n"));
    assert_non_null(strstr(t, "snapshot_status:ok\r\n"));
    assert_non_null(strstr(t, "snapshot_failures:0\r\n"));
    f.st.disk_stalled = true;
    f.st.disk.failures = 3;
    f.st.disk.failures_total = 5;
    f.st.disk.since_wall_ms = 1700000123456ull;
    snprintf(f.st.disk.error, sizeof(f.st.disk.error),
             "create wal/x.log: No space left on device");
    f.st.snapshots.failures = 2;
    f.st.snapshots.since_wall_ms = 1700000100999ull;
    snprintf(f.st.snapshots.error, sizeof(f.st.snapshots.error),
             "snapshot at op 9: No space left on device");
    t = format(&f, INFO_PERSISTENCE);
    assert_non_null(strstr(t, "disk_status:stalled\r\n"));
    assert_non_null(strstr(t, "disk_stalled_since:1700000123\r\n"));
    assert_non_null(strstr(t, "disk_write_failures:5\r\n"));
    assert_non_null(strstr(
        t, "disk_last_error:create wal/x.log: No space left on device\r\n"));
    assert_non_null(strstr(t, "snapshot_status:failing\r\n"));
    assert_non_null(strstr(t, "snapshot_failures:2\r\n"));
    assert_non_null(strstr(t, "snapshot_failing_since:1700000100\r\n"));
    assert_non_null(strstr(t, "snapshot_last_error:snapshot at op 9: No "
                              "space left on device\r\n"));
    teardown_fixture(&f);
}

static void replication_shows_operations_and_view_history(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0, 0);
    f.in.run_id = 0xabcdefull;
    const char *t = format(&f, INFO_SERVER | INFO_REPLICATION);
    assert_non_null(strstr(t, "run_id:0000000000abcdef\r\n"));
    assert_non_null(strstr(t, "transfer_in_progress:0\r\n"));
    assert_null(strstr(t, "transfer_target:"));
    assert_non_null(strstr(t,
                           "rejuvenating:0\r\n"
                           "rejuvenation_in_progress:0\r\nview_history:0\r\n"));
    /* Ten records: the latest INFO_VIEW_HISTORY, oldest first. */
    struct node_view_record views[10];
    memset(views, 0, sizeof(views));
    for (uint32_t k = 0; k < 10; k++) {
        views[k].view = k + 1;
        views[k].primary = k % 3;
        views[k].role = k % 3 == 0 ? COHORT_ROLE_PRIMARY : COHORT_ROLE_BACKUP;
        views[k].cause =
            k == 9 ? COHORT_VIEW_CAUSE_TRANSFER : COHORT_VIEW_CAUSE_SUSPECTED;
        views[k].wall_ms = 1700000000000ull + k;
    }
    f.in.view_history = views;
    f.in.view_history_count = 10;
    f.in.transfer_in_progress = true;
    f.in.transfer_target = 2;
    f.in.rejuvenating = true;
    f.in.rejuvenation = "restarting replica 1 (2 of 3)";
    t = format(&f, INFO_REPLICATION);
    assert_non_null(strstr(t, "transfer_in_progress:1\r\ntransfer_target:2\r\n"
                              "rejuvenating:1\r\nrejuvenation_in_progress:1\r\n"
                              "rejuvenation_progress:restarting replica 1 (2 "
                              "of 3)\r\nview_history:8\r\n"));
    assert_non_null(strstr(t,
                           "view_history0:view=3,epoch=0,primary=2,role=backup,"
                           "cause=suspected,time_ms=1700000000002\r\n"));
    assert_non_null(
        strstr(t, "view_history7:view=10,epoch=0,primary=0,role=primary,"
                  "cause=transfer,time_ms=1700000000009\r\n"));
    assert_null(strstr(t, "view_history8:"));
    teardown_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(primary_reports_members_health_and_lag),
        cmocka_unit_test(backup_reports_no_lag),
        cmocka_unit_test(backup_reports_its_primary_link),
        cmocka_unit_test(replication_shows_epoch_and_roles),
        cmocka_unit_test(every_section_appears_once_in_order),
        cmocka_unit_test(memory_section_has_redis_fields),
        cmocka_unit_test(empty_keyspace_has_only_its_header),
        cmocka_unit_test(section_names_select_sections),
        cmocka_unit_test(persistence_shows_a_disk_stall_and_failing_snapshots),
        cmocka_unit_test(replication_shows_operations_and_view_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
