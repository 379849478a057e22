/* hostport — "host:port" text split into host and port. See hostport.h. */
#include "common/hostport.h"

#include <string.h>

#include "common/assert.h"

static int parse_port(const char *text, const char *digits, uint16_t *port,
                      struct cohort_err *err)
{
    uint32_t value = 0;
    size_t count = 0;
    for (const char *p = digits; *p != '\0'; p++, count++) {
        if (*p < '0' || *p > '9' || count == 5)
            return err_set(err, -COHORT_ECONFIG,
                           "address '%s': port '%s' is not a number in "
                           "0..65535",
                           text, digits);
        value = value * 10 + (uint32_t)(*p - '0');
    }
    if (count == 0 || value > 65535)
        return err_set(err, -COHORT_ECONFIG,
                       "address '%s': port '%s' is not a number in 0..65535",
                       text, digits);
    *port = (uint16_t)value;
    return 0;
}

int addr_split(const char *text, char *host, size_t host_size, uint16_t *port,
               struct cohort_err *err)
{
    ASSERT(text != NULL);
    ASSERT(host_size > 0);
    const char *colon = strrchr(text, ':');
    if (colon == NULL)
        return err_set(err, -COHORT_ECONFIG,
                       "address '%s' has no port; write host:port, e.g. "
                       "127.0.0.1:7101",
                       text);
    const char *start = text;
    const char *end = colon;
    if (text[0] == '[') {
        if (colon == text || colon[-1] != ']')
            return err_set(err, -COHORT_ECONFIG,
                           "address '%s': an IPv6 host is written "
                           "[addr]:port, e.g. [::1]:7101",
                           text);
        start = text + 1;
        end = colon - 1;
    } else if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
        return err_set(err, -COHORT_ECONFIG,
                       "address '%s': an IPv6 host is written [addr]:port, "
                       "e.g. [::1]:7101",
                       text);
    }
    size_t host_len = (size_t)(end - start);
    if (host_len == 0)
        return err_set(err, -COHORT_ECONFIG,
                       "address '%s' has no host; write host:port, e.g. "
                       "127.0.0.1:7101",
                       text);
    if (host_len >= host_size)
        return err_set(err, -COHORT_ECONFIG,
                       "address '%.100s...': host is "
                       "too long",
                       text);
    memcpy(host, start, host_len);
    host[host_len] = '\0';
    return parse_port(text, colon + 1, port, err);
}
