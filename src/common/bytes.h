/* bytes — little-endian encoding of integers into byte buffers, used by every
 * wire and disk format in cohort (peer messages, log records, metadata,
 * snapshots). Formats are little-endian regardless of the host. The put
 * functions write exactly N bytes; the get functions read exactly N bytes. The
 * caller checks bounds; struct cursor below does it for parsers of untrusted
 * bytes. */
#ifndef COHORT_BYTES_H
#define COHORT_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/* A bounds-checked reader over untrusted bytes. Every read checks the
 * remaining length; after the first failed read `ok` is false and every later
 * read returns zero, so a parser may read a whole header and check `ok` once.
 */
struct cursor {
    const uint8_t *p;
    size_t left;
    bool ok;
};

static inline struct cursor cursor_make(const uint8_t *p, size_t size)
{
    struct cursor c = {p, size, true};
    return c;
}

static inline const uint8_t *cursor_take(struct cursor *c, size_t n)
{
    if (!c->ok || c->left < n) {
        c->ok = false;
        return NULL;
    }
    const uint8_t *at = c->p;
    c->p += n;
    c->left -= n;
    return at;
}

static inline uint8_t cursor_u8(struct cursor *c)
{
    const uint8_t *p = cursor_take(c, 1);
    return p ? p[0] : 0;
}

static inline uint16_t cursor_u16(struct cursor *c)
{
    const uint8_t *p = cursor_take(c, 2);
    return p ? get_u16(p) : 0;
}

static inline uint32_t cursor_u32(struct cursor *c)
{
    const uint8_t *p = cursor_take(c, 4);
    return p ? get_u32(p) : 0;
}

static inline uint64_t cursor_u64(struct cursor *c)
{
    const uint8_t *p = cursor_take(c, 8);
    return p ? get_u64(p) : 0;
}

/* A bounds-checked writer into a caller-owned buffer; same `ok` rule. */
struct writer {
    uint8_t *p;
    size_t left;
    bool ok;
};

static inline struct writer writer_make(uint8_t *p, size_t size)
{
    struct writer w = {p, size, true};
    return w;
}

static inline uint8_t *writer_take(struct writer *w, size_t n)
{
    if (!w->ok || w->left < n) {
        w->ok = false;
        return NULL;
    }
    uint8_t *at = w->p;
    w->p += n;
    w->left -= n;
    return at;
}

static inline void writer_u8(struct writer *w, uint8_t v)
{
    uint8_t *p = writer_take(w, 1);
    if (p)
        p[0] = v;
}

static inline void writer_u16(struct writer *w, uint16_t v)
{
    uint8_t *p = writer_take(w, 2);
    if (p)
        put_u16(p, v);
}

static inline void writer_u32(struct writer *w, uint32_t v)
{
    uint8_t *p = writer_take(w, 4);
    if (p)
        put_u32(p, v);
}

static inline void writer_u64(struct writer *w, uint64_t v)
{
    uint8_t *p = writer_take(w, 8);
    if (p)
        put_u64(p, v);
}

static inline void writer_bytes(struct writer *w, const void *src, size_t n)
{
    uint8_t *p = writer_take(w, n);
    if (p && n)
        memcpy(p, src, n);
}

#endif
