/* counter — increments a counter through libcohort-client, exactly once
 * per call, while you kill the primary (kill -9 its PID, INFO server
 * process_id) as often as you like; then prints the counter, which equals
 * the increments made.
 *
 *   cc counter.c $(pkg-config --cflags --libs cohort-client) -o counter
 *   ./counter 1000 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <cohort_client.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: counter COUNT HOST:PORT...\n");
        return 2;
    }
    long count = strtol(argv[1], NULL, 10);
    char key[64];
    struct cohort_client_options o;
    cohort_client_options_init(&o);
    o.members = (const char *const *)argv + 2;
    o.member_count = (size_t)(argc - 2);
    o.deadline_ms = 60000; /* ride out failovers for up to a minute */
    struct cohort_client *c;
    if (cohort_client_open(&c, &o) != 0) {
        fprintf(stderr, "counter: bad member list\n");
        return 2;
    }
    /* A key of its own, so that another run does not count here. */
    snprintf(key, sizeof(key), "counter:%016" PRIx64, cohort_client_id(c));
    long made = 0;
    int64_t value = 0;
    for (long i = 0; i < count; i++) {
        int rc = cohort_client_incr(c, key, &value);
        if (rc != 0) {
            /* -COHORT_EUNKNOWN: it may have counted; ENOTAPPLIED: not. */
            fprintf(stderr, "counter: %s\n", cohort_client_error(c));
            cohort_client_close(c);
            return 1;
        }
        made++;
    }
    char *text = NULL;
    int rc = cohort_client_get(c, 0, key, &text, NULL);
    printf("made %ld increments; %s is %s\n", made, key,
           rc == 0 ? text : cohort_client_error(c));
    free(text);
    cohort_client_close(c);
    return rc == 0 && value == made ? 0 : 1;
}
