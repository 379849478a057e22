/* relay — RESP2 replies to a client of either protocol. See relay.h. */
#include "server/relay.h"

#include <string.h>

#include "common/assert.h"

/* The bounce of a forwarded command by a replica that is not the primary:
 * this server's marker, and the text servers before it sent. */
#define NOT_PRIMARY_HOP_PREFIX "-TRYAGAIN NOTPRIMARY "
#define NOT_PRIMARY_HOP_LEGACY                                                 \
    "-TRYAGAIN this replica is not the primary (a forwarded command is not "   \
    "forwarded again)"

/* The prefix of node.c's REPLY_EXPIRED text. */
#define SESSION_EXPIRED_PREFIX "-ERR client session expired"

/* The number after a '$' or '*': "-1" or decimal digits. */
static bool parse_count(const char *p, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return false;
    bool negative = p[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == n)
        return false;
    long long v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        if (v > (0x7fffffffffffffffLL - 9) / 10)
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = negative ? -v : v;
    return true;
}

/* Translate the RESP2 reply in buf[0, size) into out (RESP3 nulls; with
 * top_map, a top-level array of 2n elements becomes a map of n pairs).
 * Returns false if the bytes are not exactly one RESP2 reply. */
static bool translate(struct resp_buf *out, const char *buf, size_t size,
                      bool top_map)
{
    size_t pos = 0;
    unsigned long long pending = 1; /* values still to copy */
    while (pending > 0) {
        if (pos >= size)
            return false;
        const char *lf = memchr(buf + pos, '\n', size - pos);
        if (lf == NULL || lf == buf + pos || lf[-1] != '\r')
            return false;
        size_t line_end = (size_t)(lf - buf) + 1; /* past the LF */
        size_t text = line_end - pos - 3;         /* between type and CR */
        char type = buf[pos];
        long long count = 0;
        bool counted = type == '$' || type == '*';
        if (counted && !parse_count(buf + pos + 1, text, &count))
            return false;
        if (counted && count == -1) {
            resp_write_raw(out, "_\r\n", 3);
            pos = line_end;
        } else if (type == '$') {
            if (count < 0 || (unsigned long long)count > size - line_end ||
                size - line_end - (size_t)count < 2)
                return false;
            size_t end = line_end + (size_t)count + 2;
            if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
                return false;
            resp_write_raw(out, buf + pos, end - pos);
            pos = end;
        } else if (type == '*') {
            if (count < 0 || (unsigned long long)count > size)
                return false;
            if (top_map && pos == 0 && count % 2 == 0)
                resp_write_map(out, (size_t)count / 2);
            else
                resp_write_raw(out, buf + pos, line_end - pos);
            pending += (unsigned long long)count;
            pos = line_end;
        } else if (type == '+' || type == '-' || type == ':') {
            resp_write_raw(out, buf + pos, line_end - pos);
            pos = line_end;
        } else {
            return false;
        }
        pending--;
    }
    return pos == size;
}

static void relay(struct resp_buf *out, const char *reply, size_t size,
                  bool top_map)
{
    ASSERT(reply != NULL || size == 0);
    if (out->proto != 3 || size == 0) {
        resp_write_raw(out, reply, size);
        return;
    }
    size_t before = out->size;
    if (translate(out, reply, size, top_map))
        return;
    if (out->ok)
        out->size = before; /* drop the partial translation */
    resp_write_raw(out, reply, size);
}

void relay_reply(struct resp_buf *out, const char *reply, size_t size)
{
    relay(out, reply, size, false);
}

void relay_reply_map(struct resp_buf *out, const char *reply, size_t size)
{
    relay(out, reply, size, true);
}

bool relay_is_session_expired(const char *reply, size_t size)
{
    size_t n = sizeof(SESSION_EXPIRED_PREFIX) - 1;
    return size >= n && memcmp(reply, SESSION_EXPIRED_PREFIX, n) == 0;
}

static bool has_prefix(const char *reply, size_t size, const char *prefix)
{
    size_t n = strlen(prefix);
    return size >= n && memcmp(reply, prefix, n) == 0;
}

bool relay_is_not_primary_hop(const char *reply, size_t size)
{
    return has_prefix(reply, size, NOT_PRIMARY_HOP_PREFIX) ||
           has_prefix(reply, size, NOT_PRIMARY_HOP_LEGACY);
}
