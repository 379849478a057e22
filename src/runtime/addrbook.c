/* addrbook — the addresses this process uses for each replica id, and
 * their file. See addrbook.h. */
#include "runtime/addrbook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/address.h"
#include "storage/vfs.h"

#define ADDRBOOK_HEAD "cohort addresses\n"
/* The head and one line per id, each at most id, two addresses, 2 spaces
 * and a newline. */
#define ADDRBOOK_SIZE_MAX                                                      \
    (sizeof(ADDRBOOK_HEAD) +                                                   \
     COHORT_REPLICAS_MAX * (4u + 2u * ADDRBOOK_TEXT_MAX))

bool addrbook_init(struct addrbook *b, uint32_t count, const char *const *peer,
                   const char *const *client)
{
    memset(b, 0, sizeof(*b));
    if (count > COHORT_REPLICAS_MAX)
        return false;
    b->count = count;
    for (uint32_t i = 0; i < count; i++) {
        const char *p = peer[i] ? peer[i] : "";
        const char *c = client[i] ? client[i] : "";
        if (strlen(p) >= ADDRBOOK_TEXT_MAX || strlen(c) >= ADDRBOOK_TEXT_MAX)
            return false;
        memcpy(b->peer[i], p, strlen(p) + 1);
        memcpy(b->client[i], c, strlen(c) + 1);
    }
    return true;
}

/* The next space- or newline-ended word of [*at, end) into out (NUL
 * terminated); false if there is none, it is too long or ends otherwise. */
static bool word(const char **at, const char *end, char stop, char *out,
                 size_t cap)
{
    const char *s = *at;
    const char *e = memchr(s, stop, (size_t)(end - s));
    if (e == NULL || e == s || (size_t)(e - s) >= cap)
        return false;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    *at = e + 1;
    return true;
}

static int refuse(struct cohort_err *err, const char *path, const char *what)
{
    return err_set(err, -COHORT_ECONFIG,
                   "%s: %s; it is written by this replica when a member "
                   "moves (COHORT.ADDRESS): restore it from a member's copy, "
                   "or delete it to use --peers and --clients",
                   path, what);
}

int addrbook_load(struct addrbook *b, const char *data_dir,
                  struct cohort_err *err)
{
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX];
    if (vfs_path_join(path, data_dir, ADDRBOOK_FILE, err) != 0)
        return -COHORT_ECONFIG;
    uint8_t *data = NULL;
    size_t size = 0;
    struct cohort_err read_err;
    err_clear(&read_err);
    int rc = vfs_read_file(vfs, path, &data, &size, &read_err);
    if (rc == -COHORT_ENOTFOUND)
        return 0;
    if (rc != 0) {
        *err = read_err;
        return err_wrap(err, "read %s", path);
    }
    struct addrbook next = *b;
    const char *at = (const char *)data, *end = at + size;
    size_t head = strlen(ADDRBOOK_HEAD);
    if (size > ADDRBOOK_SIZE_MAX || size < head ||
        memcmp(at, ADDRBOOK_HEAD, head))
        rc = refuse(err, path, "not a cohort address file");
    else
        at += head;
    while (rc == 0 && at < end) {
        char id_text[4], peer[ADDRBOOK_TEXT_MAX], client[ADDRBOOK_TEXT_MAX];
        if (!word(&at, end, ' ', id_text, sizeof(id_text)) ||
            !word(&at, end, ' ', peer, sizeof(peer)) ||
            !word(&at, end, '\n', client, sizeof(client))) {
            rc = refuse(err, path, "a line is not \"id peer client\"");
            break;
        }
        uint32_t id = (uint32_t)(id_text[0] - '0');
        if (id_text[1] != '\0' || id_text[0] < '0' || id >= b->count ||
            next.moved[id]) {
            rc = refuse(err, path, "an id is out of range or listed twice");
            break;
        }
        if (!kv_address_valid(peer) || !kv_address_valid(client)) {
            rc = refuse(err, path, "an address is not host:port");
            break;
        }
        memcpy(next.peer[id], peer, sizeof(peer));
        memcpy(next.client[id], client, sizeof(client));
        next.moved[id] = true;
    }
    free(data);
    if (rc == 0)
        *b = next;
    return rc;
}

int addrbook_save(const struct addrbook *b, const char *data_dir,
                  struct cohort_err *err)
{
    char text[ADDRBOOK_SIZE_MAX];
    size_t len = (size_t)snprintf(text, sizeof(text), "%s", ADDRBOOK_HEAD);
    for (uint32_t i = 0; i < b->count; i++)
        if (b->moved[i])
            len += (size_t)snprintf(text + len, sizeof(text) - len,
                                    "%" PRIu32 " %s %s\n", i, b->peer[i],
                                    b->client[i]);
    return vfs_replace_file(vfs_posix(), data_dir, ADDRBOOK_FILE, text, len,
                            err);
}
