/* client/discover — the group's layout from INFO replication. See
 * discover.h. */
#include "client/discover.h"

#include <stdint.h>
#include <string.h>

#include "common/hostport.h"

/* Copy the value [v, end) into dst when it fits and is an address the
 * client can dial: no spaces or control bytes, not "?", and host:port with
 * a port in 1..65535 (common/hostport.h). Anything else the member said
 * is dropped here rather than taking a member's place. */
static bool copy_addr(char *dst, const char *v, const char *end)
{
    size_t n = (size_t)(end - v);
    if (n == 0 || n >= CLIENT_ADDR_MAX || (n == 1 && v[0] == '?'))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || v[i] == ',')
            return false;
    memcpy(dst, v, n);
    dst[n] = '\0';
    char host[CLIENT_ADDR_MAX];
    uint16_t port = 0;
    return addr_split(dst, host, sizeof(host), &port, NULL) == 0 && port != 0;
}

static bool starts_with(const char *line, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - line) >= n && memcmp(line, word, n) == 0;
}

/* Whether a member line says role=outside: a replica outside the epoch's
 * membership (a spare not yet added, or removed) gets no log and may be
 * stale forever, so it is no member to send anything to. */
static bool outside(const char *line, const char *end)
{
    static const char word[] = ",role=outside";
    size_t n = sizeof(word) - 1;
    for (const char *p = line; (size_t)(end - p) >= n; p++)
        if (memcmp(p, word, n) == 0 && (p + n == end || p[n] == ','))
            return true;
    return false;
}

/* "member<digits>:addr=<addr>,...", unless it is outside. */
static void member_line(const char *line, const char *end,
                        struct client_layout *out)
{
    if (outside(line, end))
        return;
    const char *p = line + strlen("member");
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    if (p == digits || !starts_with(p, end, ":addr="))
        return;
    p += strlen(":addr=");
    const char *v_end = memchr(p, ',', (size_t)(end - p));
    if (v_end == NULL)
        v_end = end;
    if (out->member_count < CLIENT_DISCOVER_MEMBERS_MAX &&
        copy_addr(out->members[out->member_count], p, v_end))
        out->member_count++;
}

static void parse_line(const char *line, const char *end,
                       struct client_layout *out)
{
    if (end > line && end[-1] == '\r')
        end--;
    if (starts_with(line, end, "role:")) {
        out->is_primary = (size_t)(end - line) == strlen("role:primary") &&
                          starts_with(line, end, "role:primary");
    } else if (starts_with(line, end, "primary:")) {
        const char *v = line + strlen("primary:");
        out->has_primary = copy_addr(out->primary, v, end);
    } else if (starts_with(line, end, "member")) {
        member_line(line, end, out);
    }
}

void client_layout_parse(const char *text, size_t size,
                         struct client_layout *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = text;
    const char *end = text + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        parse_line(p, line_end, out);
        p = nl ? nl + 1 : end;
    }
}
