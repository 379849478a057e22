/* client/call: the retry state machine of libcohort-client — which
 * outcomes are retried, when a write may have taken effect, and which
 * error the deadline gives; and client/discover: the primary and members
 * from INFO replication text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/call.h"
#include "client/discover.h"
#include "cohort.h"

static struct resp_node error_node(const char *text)
{
    struct resp_node n;
    memset(&n, 0, sizeof(n));
    n.type = RESP_TYPE_ERROR;
    n.str = text;
    n.len = strlen(text);
    return n;
}

static struct resp_node integer_node(int64_t v)
{
    struct resp_node n;
    memset(&n, 0, sizeof(n));
    n.type = RESP_TYPE_INTEGER;
    n.integer = v;
    return n;
}

static void tryagain_is_retried_and_a_reply_ends_the_call(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, true, 1000, 5000);
    struct resp_node busy = error_node("TRYAGAIN view change in progress");
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &busy, 1001),
                     CALL_RETRY);
    assert_false(call.maybe_applied);
    assert_true(call.retry_at_ms > 1001);
    struct resp_node one = integer_node(1);
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &one, 1100),
                     CALL_DONE);
    assert_int_equal(call.attempts, 2);
}

/* A member removed from the group: certainly not applied, and the next
 * attempt (on another member) may succeed. */
static void removed_is_retried_like_tryagain(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, true, 1000, 5000);
    struct resp_node gone =
        error_node("REMOVED this member (replica 2) was removed from the "
                   "group (epoch 3); use another member");
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &gone, 1001),
                     CALL_RETRY);
    assert_false(call.maybe_applied);
    assert_int_equal(client_call_late(&call, CALL_EV_REPLY, &gone), CALL_RETRY);
    assert_false(call.maybe_applied);
    struct resp_node one = integer_node(1);
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &one, 1100),
                     CALL_DONE);
    struct resp_node word = error_node("REMOVEDX not the code word");
    client_call_start(&call, true, 1000, 5000);
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &word, 1001),
                     CALL_DONE);
}

static void a_write_never_sent_is_not_applied_at_the_deadline(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, true, 0, 100);
    enum call_step s = CALL_RETRY;
    uint64_t now = 0;
    while (s == CALL_RETRY) {
        assert_true(client_call_may_attempt(&call, now));
        s = client_call_step(&call, CALL_EV_NOT_SENT, NULL, now);
        now = call.retry_at_ms;
    }
    assert_int_equal(s, CALL_FAIL);
    assert_int_equal(call.error, -COHORT_ENOTAPPLIED);
    assert_true(call.attempts >= 3);
}

static void a_lost_write_is_unknown_even_after_tryagain(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, true, 0, 1000);
    assert_int_equal(client_call_step(&call, CALL_EV_LOST, NULL, 10),
                     CALL_RETRY);
    assert_true(call.maybe_applied);
    /* A later attempt's -TRYAGAIN speaks for that attempt only. */
    struct resp_node busy = error_node("TRYAGAIN no primary");
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &busy, 20),
                     CALL_RETRY);
    assert_true(call.maybe_applied);
    assert_int_equal(client_call_step(&call, CALL_EV_NOT_SENT, NULL, 999),
                     CALL_FAIL);
    assert_int_equal(call.error, -COHORT_EUNKNOWN);
}

static void unknown_reply_then_the_retry_answer_is_done(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, true, 0, 1000);
    struct resp_node unknown = error_node("UNKNOWN the primary changed");
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &unknown, 1),
                     CALL_RETRY);
    assert_true(call.maybe_applied);
    struct resp_node seven = integer_node(7);
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &seven, 50),
                     CALL_DONE);
}

static void a_read_never_reports_unknown(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, false, 0, 50);
    enum call_step s = client_call_step(&call, CALL_EV_LOST, NULL, 49);
    assert_int_equal(s, CALL_FAIL);
    assert_int_equal(call.error, -COHORT_ENOTAPPLIED);
}

static void other_error_replies_are_answers(void **state)
{
    (void)state;
    const char *answers[] = {
        "ERR value is not an integer or out of range",
        "TRYAGAINX not the code word",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "NOAUTH Authentication required.",
        "UNKNOWNISH",
    };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        struct client_call call;
        client_call_start(&call, true, 0, 1000);
        struct resp_node n = error_node(answers[i]);
        assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &n, 1),
                         CALL_DONE);
    }
    struct resp_node bare = error_node("TRYAGAIN");
    assert_true(client_reply_is_error_code(&bare, "TRYAGAIN"));
}

static void
session_expired_renews_only_when_nothing_may_be_applied(void **state)
{
    (void)state;
    struct resp_node expired = error_node(
        "ERR client session expired: start again at request number 1");
    struct client_call call;
    client_call_start(&call, true, 0, 1000);
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &expired, 1),
                     CALL_RENEW);
    assert_true(call.renewed);
    /* A second expiry (request 1 is never expired): give up. */
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &expired, 2),
                     CALL_FAIL);
    assert_int_equal(call.error, -COHORT_ENOTAPPLIED);

    client_call_start(&call, true, 0, 1000);
    assert_int_equal(client_call_step(&call, CALL_EV_LOST, NULL, 1),
                     CALL_RETRY);
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &expired, 20),
                     CALL_FAIL);
    assert_int_equal(call.error, -COHORT_EUNKNOWN);

    /* A read does not know sessions: the text is its answer. */
    client_call_start(&call, false, 0, 1000);
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &expired, 1),
                     CALL_DONE);
}

static void backoff_doubles_within_its_bounds(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, true, 0, 100000);
    uint64_t now = 0;
    uint64_t prev_gap = 0;
    for (int i = 0; i < 12; i++) {
        assert_int_equal(client_call_step(&call, CALL_EV_NOT_SENT, NULL, now),
                         CALL_RETRY);
        uint64_t gap = call.retry_at_ms - now;
        assert_true(gap >= CALL_BACKOFF_MIN_MS);
        assert_true(gap <= CALL_BACKOFF_MAX_MS);
        assert_true(gap >= prev_gap);
        prev_gap = gap;
        now = call.retry_at_ms;
    }
    assert_int_equal(prev_gap, CALL_BACKOFF_MAX_MS);
}

static struct resp_arg a(const char *s)
{
    return (struct resp_arg){.ptr = s, .size = strlen(s)};
}

static void writes_are_the_store_writes(void **state)
{
    (void)state;
    const char *writes[] = {
        "SET",    "set",      "Del",      "INCR",        "INCRBY", "DECR",
        "DECRBY", "MSET",     "CAS",      "GETDEL",      "GETSET", "SETNX",
        "MSETNX", "append",   "SETRANGE", "INCRBYFLOAT", "UNLINK", "COPY",
        "RENAME", "RENAMENX", "FLUSHDB",  "FLUSHALL",    "publish"};
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        struct resp_arg argv[1] = {a(writes[i])};
        assert_true(client_command_is_write(1, argv));
    }
    const char *reads[] = {"GET",    "MGET", "PING",   "INFO",
                           "KVINFO", "SETX", "STRLEN", "GETRANGE"};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        struct resp_arg argv[1] = {a(reads[i])};
        assert_false(client_command_is_write(1, argv));
    }
    struct resp_arg setuser[2] = {a("acl"), a("SETUSER")};
    struct resp_arg whoami[2] = {a("ACL"), a("WHOAMI")};
    struct resp_arg acl[1] = {a("ACL")};
    assert_true(client_command_is_write(2, setuser));
    assert_false(client_command_is_write(2, whoami));
    assert_false(client_command_is_write(1, acl));
    assert_false(client_command_is_write(0, acl));
}

static void layout_names_the_primary_and_members(void **state)
{
    (void)state;
    const char *text =
        "# Replication\r\nrole:backup\r\nview:4\r\n"
        "primary:127.0.0.1:7002\r\nprimary_index:1\r\nmembers:3\r\n"
        "member0:addr=127.0.0.1:7001,role=backup,health=self\r\n"
        "member1:addr=127.0.0.1:7002,role=primary,health=ok,link=up\r\n"
        "member2:addr=127.0.0.1:7003,role=backup,health=unknown,link=up\r\n";
    struct client_layout l;
    client_layout_parse(text, strlen(text), &l);
    assert_true(l.has_primary);
    assert_false(l.is_primary); /* role:backup */
    assert_string_equal(l.primary, "127.0.0.1:7002");
    assert_int_equal(l.member_count, 3);
    assert_string_equal(l.members[2], "127.0.0.1:7003");
    /* A reconfigured group: learners are members to read from, replicas
     * outside the membership (spares, removed) are not. */
    const char *epochs =
        "role:primary\r\nprimary:127.0.0.1:7001\r\n"
        "member0:addr=127.0.0.1:7001,peer=127.0.0.1:8001,role=primary,"
        "health=self\r\n"
        "member1:addr=127.0.0.1:7002,peer=127.0.0.1:8002,role=outside,"
        "health=ok,link=up,op=0,lag=9\r\n"
        "member2:addr=127.0.0.1:7003,peer=127.0.0.1:8003,role=learner,"
        "health=ok,link=up,op=9,lag=0\r\n"
        "member3:addr=127.0.0.1:7004,peer=127.0.0.1:8004,role=outside\r\n";
    client_layout_parse(epochs, strlen(epochs), &l);
    assert_int_equal(l.member_count, 2);
    assert_string_equal(l.members[0], "127.0.0.1:7001");
    assert_string_equal(l.members[1], "127.0.0.1:7003");
}

static void layout_without_a_primary_or_with_garbage(void **state)
{
    (void)state;
    const char *text = "role:view_change\nprimary:?\nmember0:addr=?,role=x\n"
                       "memberX:addr=1.2.3.4:5\nmember1:addr=has space:1\n"
                       "member2:addr=1.2.3.4:0\nmember3:addr=1.2.3.4:99999\n"
                       "member4:addr=::1:7001\nmember5:addr=7001\n"
                       "primary:";
    struct client_layout l;
    client_layout_parse(text, strlen(text), &l);
    assert_false(l.has_primary);
    assert_false(l.is_primary);
    assert_int_equal(l.member_count, 0);
    const char *roles = "role:primaryx\nrole:primary\r\n";
    client_layout_parse(roles, strlen(roles), &l);
    assert_true(l.is_primary);
    client_layout_parse(roles, 14, &l); /* "role:primaryx" alone */
    assert_false(l.is_primary);
    char long_addr[CLIENT_ADDR_MAX + 20];
    memset(long_addr, 'a', sizeof(long_addr));
    memcpy(long_addr, "primary:", 8);
    client_layout_parse(long_addr, sizeof(long_addr), &l);
    assert_false(l.has_primary);
    /* Ports the client cannot dial are no primary either. */
    const char *bad_port = "primary:1.2.3.4:0\nmember0:addr=[::1]:7001\n";
    client_layout_parse(bad_port, strlen(bad_port), &l);
    assert_false(l.has_primary);
    assert_int_equal(l.member_count, 1);
    assert_string_equal(l.members[0], "[::1]:7001");
}

static void a_hedge_retries_at_once_and_the_write_may_be_applied(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, true, 0, 1000);
    uint32_t backoff = call.backoff_ms;
    assert_int_equal(client_call_step(&call, CALL_EV_HEDGE, NULL, 200),
                     CALL_RETRY);
    assert_true(call.maybe_applied);
    assert_int_equal(call.retry_at_ms, 200); /* no backoff */
    assert_int_equal(call.backoff_ms, backoff);
    assert_int_equal(call.hedges, 1);
    assert_int_equal(call.attempts, 1);
    /* The hedged attempt's -TRYAGAIN or -UNKNOWN drops it: the call goes
     * on, still maybe applied; its real answer ends the call. */
    struct resp_node busy = error_node("TRYAGAIN view change");
    assert_int_equal(client_call_late(&call, CALL_EV_REPLY, &busy), CALL_RETRY);
    struct resp_node unknown = error_node("UNKNOWN the primary changed");
    assert_int_equal(client_call_late(&call, CALL_EV_REPLY, &unknown),
                     CALL_RETRY);
    struct resp_node expired = error_node("ERR client session expired: x");
    assert_int_equal(client_call_late(&call, CALL_EV_REPLY, &expired),
                     CALL_RETRY);
    assert_int_equal(client_call_late(&call, CALL_EV_LOST, NULL), CALL_RETRY);
    struct resp_node one = integer_node(1);
    assert_int_equal(client_call_late(&call, CALL_EV_REPLY, &one), CALL_DONE);
    struct resp_node wrong = error_node("ERR wrong type");
    assert_int_equal(client_call_late(&call, CALL_EV_REPLY, &wrong), CALL_DONE);
    assert_int_equal(call.attempts, 1); /* late answers are not attempts */
    /* A later attempt's -TRYAGAIN does not make the write "not applied". */
    assert_int_equal(client_call_step(&call, CALL_EV_REPLY, &busy, 999),
                     CALL_FAIL);
    assert_int_equal(call.error, -COHORT_EUNKNOWN);
}

static void a_hedge_at_the_deadline_fails(void **state)
{
    (void)state;
    struct client_call call;
    client_call_start(&call, false, 0, 100);
    assert_int_equal(client_call_step(&call, CALL_EV_HEDGE, NULL, 100),
                     CALL_FAIL);
    assert_int_equal(call.error, -COHORT_ENOTAPPLIED); /* a read */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tryagain_is_retried_and_a_reply_ends_the_call),
        cmocka_unit_test(removed_is_retried_like_tryagain),
        cmocka_unit_test(a_write_never_sent_is_not_applied_at_the_deadline),
        cmocka_unit_test(a_lost_write_is_unknown_even_after_tryagain),
        cmocka_unit_test(unknown_reply_then_the_retry_answer_is_done),
        cmocka_unit_test(a_read_never_reports_unknown),
        cmocka_unit_test(other_error_replies_are_answers),
        cmocka_unit_test(
            session_expired_renews_only_when_nothing_may_be_applied),
        cmocka_unit_test(backoff_doubles_within_its_bounds),
        cmocka_unit_test(a_hedge_retries_at_once_and_the_write_may_be_applied),
        cmocka_unit_test(a_hedge_at_the_deadline_fails),
        cmocka_unit_test(writes_are_the_store_writes),
        cmocka_unit_test(layout_names_the_primary_and_members),
        cmocka_unit_test(layout_without_a_primary_or_with_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
