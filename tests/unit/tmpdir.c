/* tmpdir — see tmpdir.h. */
#include "tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

bool tmpdir_make(char *out, size_t size, const char *name)
{
    int n = snprintf(out, size, "/tmp/cohort-%s-XXXXXX", name);
    return n > 0 && (size_t)n < size && mkdtemp(out) != NULL;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tmpdir_remove(const char *path)
{
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
