/* client/resume: where a libcohort-client watch resumes after a reconnect.
 * A stream of events, some revisions with several, is cut after every
 * event (and twice in a row); each resume replays what the server would
 * send FROM the asked revision, and the application must see the stream
 * exactly once, in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/resume.h"

/* Revisions of the events the group produced, in order (rev 7: an MSET of
 * three keys; rev 9: two). Each event is its index in this array. */
static const uint64_t stream[] = {3, 4, 7, 7, 7, 8, 9, 9, 12};
#define STREAM_LEN (sizeof(stream) / sizeof(stream[0]))

/* The index of the first event the server sends FROM from (above it). */
static size_t server_first(uint64_t from)
{
    size_t i = 0;
    while (i < STREAM_LEN && stream[i] <= from)
        i++;
    return i;
}

/* Watch from after 2, cut the connection after `cut1` delivered-or-read
 * events and again after `cut2` more; the application's events go to got. */
static size_t run(size_t cut1, size_t cut2, size_t *got)
{
    struct client_resume r;
    client_resume_init(&r, 2);
    size_t n = 0;
    size_t i = server_first(client_resume_from(&r));
    size_t cuts[2] = {cut1, cut2};
    for (int c = 0; c < 3; c++) {
        size_t budget = c < 2 ? cuts[c] : STREAM_LEN * 2;
        for (size_t k = 0; k < budget && i < STREAM_LEN; k++, i++)
            if (client_resume_accept(&r, stream[i]))
                got[n++] = i;
        i = server_first(client_resume_from(&r));
    }
    return n;
}

static void every_cut_delivers_each_event_once_in_order(void **state)
{
    (void)state;
    for (size_t a = 0; a <= STREAM_LEN; a++)
        for (size_t b = 0; b <= STREAM_LEN; b++) {
            size_t got[STREAM_LEN * 4];
            size_t n = run(a, b, got);
            assert_int_equal(n, STREAM_LEN);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(got[i], i);
        }
}

static void a_fresh_watch_resumes_from_its_start(void **state)
{
    (void)state;
    struct client_resume r;
    client_resume_init(&r, 40);
    assert_int_equal(client_resume_from(&r), 40);
    /* An event at the starting point itself is not wanted. */
    assert_false(client_resume_accept(&r, 40));
    assert_true(client_resume_accept(&r, 41));
    assert_int_equal(client_resume_from(&r), 40);
    assert_false(client_resume_accept(&r, 41));
    assert_true(client_resume_accept(&r, 41));
    assert_true(client_resume_accept(&r, 42));
    assert_false(client_resume_accept(&r, 41));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_cut_delivers_each_event_once_in_order),
        cmocka_unit_test(a_fresh_watch_resumes_from_its_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
