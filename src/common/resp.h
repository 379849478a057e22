/* resp — the pure RESP codec shared by the server and the C client: a request
 * parser (server side), a reply writer, and a reply parser (client side).
 * Nothing here touches a socket, a clock or a file.
 *
 * Both parsers are incremental and zero-copy, in the style of hiredis's
 * read.c but stateless: the caller keeps unparsed bytes in its own buffer and
 * calls the parser again when more arrive. Each call looks at one message at
 * the start of the buffer and answers
 *
 *     RESP_COMPLETE    one message; `consumed` bytes belong to it and the
 *                      results borrow pointers into those bytes;
 *     RESP_NEED_MORE   the buffer holds a proper prefix of a message; nothing
 *                      is consumed, `size_wanted` is a lower bound on the
 *                      buffer size at which calling again can succeed;
 *     RESP_NEED_SPACE  a complete message that has more arguments (nodes)
 *                      than the caller's array holds; nothing is consumed,
 *                      argc (node_count) says how many are needed;
 *     RESP_ERROR       malformed input or a broken limit; err holds a
 *                      one-line message, and the connection is beyond repair.
 *
 * Invariants: (1) the parsers read only bytes [0, size) of the buffer;
 * (2) the result for a buffer depends only on its bytes, so feeding a stream
 * in any split gives the same messages and the same error; (3) a limit is
 * never a truncation: a message that breaks one is an error that names the
 * limit and its value; (4) lengths are checked for overflow before use. */
#ifndef COHORT_RESP_H
#define COHORT_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum resp_result {
    RESP_COMPLETE = 0,
    RESP_NEED_MORE = 1,
    RESP_NEED_SPACE = 2,
    RESP_ERROR = 3,
};

/* ------------------------------------------------------------------------ */
/* Request parser (server side).                                            */

/* The configuration names of the request limits, as error messages cite
 * them: "Protocol error: bulk length 2097152 exceeds limit 1048576
 * (max-value-size)". */
#define RESP_LIMIT_ARGS_NAME "max-arguments"
#define RESP_LIMIT_BULK_NAME "max-value-size"
#define RESP_LIMIT_INLINE_NAME "max-inline-size"

struct resp_limits {
    uint32_t arg_count_max; /* arguments per command; > 0 */
    size_t bulk_size_max;   /* bytes per argument */
    size_t inline_size_max; /* bytes in an inline command line; > 0 */
};

/* One argument, borrowed from the parsed buffer. */
struct resp_arg {
    const char *ptr;
    size_t size;
};

/* Whether arg is word, ignoring ASCII case (word is lowercase): how
 * command names and keywords from clients are matched, whatever the
 * locale. */
bool resp_arg_is(const struct resp_arg *arg, const char *word);

struct resp_request {
    /* In: the caller's argument array and how many entries it holds. */
    struct resp_arg *argv;
    uint32_t arg_capacity;
    /* Out. COMPLETE: argc arguments in argv; NEED_SPACE: the argument count
     * (greater than arg_capacity). argc is 0 for an empty command (`*0`,
     * `*-1` or a blank inline line): consume it and do nothing, as Redis
     * does. */
    uint32_t argc;
    size_t consumed;    /* COMPLETE: bytes of the command, > 0 */
    size_t size_wanted; /* NEED_MORE: > size */
    bool is_inline;     /* COMPLETE: it was an inline command */
    /* ERROR because a bulk string's length is over bulk_size_max: that
     * length, where its bytes begin in buf and how many arguments of the
     * command follow it, so that the caller can word its own limit and drop
     * the rest of the command instead of the connection; otherwise 0. */
    uint64_t bulk_size_refused;
    size_t bulk_refused_at;
    uint32_t bulk_refused_args_after;
};

/* Parse the command at the start of buf[0, size): a RESP2 multibulk array of
 * bulk strings, or, when buf does not start with '*', an inline command line
 * split by Redis's rules (whitespace, "double quotes" with \n \r \t \b \a \\
 * \" and \xHH escapes, 'single quotes' with \'). See the file comment for the
 * results; argv entries point into buf and stay valid while those bytes do.
 *
 * buf is not const for one reason: a quoted inline argument is unescaped in
 * place, which only ever shortens it, and only within the consumed bytes of a
 * COMPLETE result. A multibulk command is never written to.
 *
 * On RESP_ERROR, err gets the message to send after "-ERR ", for example
 * "Protocol error: invalid multibulk length", with code -COHORT_EPROTO, or
 * -COHORT_ETOOBIG when a limit was exceeded. */
enum resp_result resp_request_parse(char *buf, size_t size,
                                    const struct resp_limits *limits,
                                    struct resp_request *req,
                                    struct cohort_err *err);

/* ------------------------------------------------------------------------ */
/* Reply writer.                                                            */

/* A growable output buffer. Writes never fail individually: after an
 * allocation failure `ok` is false, later writes do nothing, and the caller
 * checks `ok` once (and drops the connection). The protocol version picks
 * the encoding of the types RESP2 lacks. */
struct resp_buf {
    char *data;      /* owned; NULL until the first write */
    size_t size;     /* bytes written and not yet consumed */
    size_t capacity; /* bytes allocated */
    int proto;       /* 2 or 3, from HELLO; the caller may change it */
    bool ok;
};

void resp_buf_init(struct resp_buf *b, int proto);
void resp_buf_deinit(struct resp_buf *b);
/* Drop the first n <= size bytes (sent to the peer). */
void resp_buf_consume(struct resp_buf *b, size_t n);

/* "+s". CR and LF in s become spaces: a status line cannot hold them. */
void resp_write_simple(struct resp_buf *b, const char *s);
/* "-msg". msg starts with its code word: "ERR unknown command 'FOO'",
 * "TRYAGAIN view change in progress". CR and LF become spaces. */
void resp_write_error(struct resp_buf *b, const char *msg);
void resp_write_errorf(struct resp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void resp_write_integer(struct resp_buf *b, int64_t value);
void resp_write_bulk(struct resp_buf *b, const void *data, size_t size);
/* RESP2 "$-1", RESP3 "_". */
void resp_write_null(struct resp_buf *b);
/* RESP2 "*-1", RESP3 "_". */
void resp_write_null_array(struct resp_buf *b);
/* Aggregate headers; the caller writes the elements next. A map of n pairs
 * is a flat array of 2n elements in RESP2; a set and a push are arrays. */
void resp_write_array(struct resp_buf *b, size_t count);
void resp_write_map(struct resp_buf *b, size_t pair_count);
void resp_write_set(struct resp_buf *b, size_t count);
void resp_write_push(struct resp_buf *b, size_t count);
/* RESP3 ",1.5" (shortest text that reads back equal; "inf", "-inf", "nan");
 * RESP2 a bulk string of the same text. */
void resp_write_double(struct resp_buf *b, double value);
/* RESP3 "#t"/"#f"; RESP2 ":1"/":0". */
void resp_write_boolean(struct resp_buf *b, bool value);
/* RESP3 "=" with a 3-letter format ("txt", "mkd"); RESP2 a bulk string of
 * the text alone. */
void resp_write_verbatim(struct resp_buf *b, const char *format,
                         const void *data, size_t size);
/* A command as a client sends it: a multibulk array of bulk strings, the
 * same in both protocol versions. */
void resp_write_command(struct resp_buf *b, uint32_t argc,
                        const struct resp_arg *argv);
/* Bytes that are already RESP, such as a reply relayed from the primary. */
void resp_write_raw(struct resp_buf *b, const void *data, size_t size);

/* A client's bytes (a key, a name, a command word) as text to echo in a
 * one-line message, for a "%s": printable ASCII as itself, a backslash as
 * two, every other byte (NUL, CR, LF, non-ASCII) as "\xHH", so nothing is
 * cut at a NUL or hidden. At most out_size - 1 characters, whole escapes
 * only (a longer text is cut, as Redis's "%.128s" cuts); out_size > 0.
 * Returns out. */
const char *resp_show(char *out, size_t out_size, const void *data,
                      size_t size);

/* ------------------------------------------------------------------------ */
/* Reply parser (client side).                                              */

/* The type byte of each reply type. RESP2 nulls ("$-1", "*-1") parse as
 * RESP_TYPE_NULL. Attributes ("|") are checked and skipped: they annotate
 * the value after them and appear in no tree. */
enum resp_type {
    RESP_TYPE_SIMPLE = '+',
    RESP_TYPE_ERROR = '-',
    RESP_TYPE_INTEGER = ':',
    RESP_TYPE_BULK = '$',
    RESP_TYPE_ARRAY = '*',
    RESP_TYPE_NULL = '_',
    RESP_TYPE_DOUBLE = ',',
    RESP_TYPE_BOOLEAN = '#',
    RESP_TYPE_BLOB_ERROR = '!',
    RESP_TYPE_VERBATIM = '=',
    RESP_TYPE_BIG_NUMBER = '(',
    RESP_TYPE_MAP = '%',
    RESP_TYPE_SET = '~',
    RESP_TYPE_PUSH = '>',
};

/* One value. A reply is a tree stored in preorder: an aggregate's first
 * child is the node after it, and each node's `next` is the index just past
 * its subtree, so the children of nodes[i] are i + 1, nodes[i + 1].next, ...
 * (resp_node_children() of them; a map's alternate key, value). */
struct resp_node {
    enum resp_type type;
    uint32_t next;
    /* SIMPLE, ERROR, BULK, BLOB_ERROR, VERBATIM (the text after "fmt:"),
     * BIG_NUMBER and DOUBLE (the digits): bytes borrowed from the buffer.
     * Aggregates: str is NULL and len is the count as sent (map: pairs). */
    const char *str;
    size_t len;
    int64_t integer; /* INTEGER; BOOLEAN as 1 or 0 */
    double dbl;      /* DOUBLE */
    char format[4];  /* VERBATIM: the format, NUL-terminated ("txt") */
};

static inline size_t resp_node_children(const struct resp_node *n)
{
    if (n->type == RESP_TYPE_MAP)
        return n->len * 2;
    if (n->type == RESP_TYPE_ARRAY || n->type == RESP_TYPE_SET ||
        n->type == RESP_TYPE_PUSH)
        return n->len;
    return 0;
}

/* The deepest nesting any caller may allow; the parser's stack. */
#define RESP_DEPTH_LIMIT 64

struct resp_reply_limits {
    uint32_t depth_max;         /* aggregates inside aggregates, 1..64 */
    size_t bulk_size_max;       /* bytes of one string or line */
    uint64_t element_count_max; /* elements of one aggregate */
};

struct resp_reply {
    /* In: the caller's node array. */
    struct resp_node *nodes;
    uint32_t node_capacity;
    /* Out. COMPLETE: nodes[0, node_count) is the tree; NEED_SPACE: the
     * nodes needed (greater than node_capacity). */
    uint32_t node_count;
    size_t consumed;    /* COMPLETE: bytes of the reply, > 0 */
    size_t size_wanted; /* NEED_MORE: > size */
};

/* Parse one reply (RESP2 or RESP3, any type but the streamed "$?" forms) at
 * the start of buf[0, size). See the file comment for the results. On
 * RESP_ERROR, err gets "Protocol error: ..." with code -COHORT_EPROTO, or
 * -COHORT_ETOOBIG for a broken limit. */
enum resp_result resp_reply_parse(const char *buf, size_t size,
                                  const struct resp_reply_limits *limits,
                                  struct resp_reply *reply,
                                  struct cohort_err *err);

/* Parse a signed 64-bit decimal exactly as Redis's string2ll(): "0", or an
 * optional '-' and a digit 1-9 followed by digits, within int64_t. No '+',
 * no leading zeros, no "-0", no spaces. The one parser for integers in
 * protocol text, command arguments and stored values. */
bool resp_parse_i64(const void *text, size_t size, int64_t *out);

#endif
