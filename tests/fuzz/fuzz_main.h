/* fuzz_main.h — the plain-program driver every fuzz target shares when it
 * is built without libFuzzer (with -DFUZZ_MAIN, as ctest's fuzz smoke tests
 * are, under whatever sanitizers the build has). A target includes it last,
 * once, after defining LLVMFuzzerTestOneInput() and optionally:
 *
 *   FUZZ_NAME      its name, for messages (required);
 *   FUZZ_TOKENS    an array of strings the mutator may splice in;
 *   FUZZ_ACCEPTED  a counter the target bumps for each input it accepted
 *                  whole: replaying the corpus must bump it at least once,
 *                  so a corpus that went stale fails loudly;
 *   INPUT_COUNT    how many mutated inputs to run by default.
 *
 * Usage: NAME_smoke [--inputs N] PATH...
 * Every PATH is a corpus file or a directory of them (tests/fuzz/corpus/
 * NAME). Each file runs once, then N inputs, each a corpus file put through
 * 1..8 mutations (bit flips, bytes, little-endian integers, ranges deleted,
 * duplicated or spliced from another file, tokens, truncation) drawn from a
 * fixed pseudo-random sequence: the same inputs on every run. To replay a
 * crash file from libFuzzer: NAME_smoke --inputs 0 crash-<sha1>. */
#ifndef COHORT_FUZZ_MAIN_H
#define COHORT_FUZZ_MAIN_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef INPUT_COUNT
#define INPUT_COUNT 20000
#endif
#define FUZZ_MAIN_INPUT_MAX (1u << 20)

struct fuzz_corpus_file {
    uint8_t *data;
    size_t size;
};

static struct fuzz_corpus_file *fuzz_files;
static size_t fuzz_file_count, fuzz_file_cap;
static uint64_t fuzz_rng = 0x9e3779b97f4a7c15ull;

static uint64_t fuzz_next(void)
{
    uint64_t x = fuzz_rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    fuzz_rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static size_t fuzz_below(size_t bound)
{
    return bound ? (size_t)(fuzz_next() % bound) : 0;
}

static void fuzz_add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    uint8_t *data = malloc(FUZZ_MAIN_INPUT_MAX);
    if (!data)
        abort();
    size_t n = fread(data, 1, FUZZ_MAIN_INPUT_MAX, f);
    fclose(f);
    if (fuzz_file_count == fuzz_file_cap) {
        fuzz_file_cap = fuzz_file_cap ? fuzz_file_cap * 2 : 16;
        fuzz_files = realloc(fuzz_files, fuzz_file_cap * sizeof(*fuzz_files));
        if (!fuzz_files)
            abort();
    }
    fuzz_files[fuzz_file_count++] = (struct fuzz_corpus_file){data, n};
}

static int fuzz_compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or every regular file in a directory (in name order, so the
 * sequence does not depend on the directory's order). */
static void fuzz_add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        fuzz_add_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        exit(2);
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof(*names));
            if (!names)
                abort();
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[count] = malloc(len);
        if (!names[count])
            abort();
        snprintf(names[count++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof(*names), fuzz_compare_names);
    for (size_t i = 0; i < count; i++) {
        fuzz_add_file(names[i]);
        free(names[i]);
    }
    free(names);
}

/* Run one input from an exact-size heap copy, so ASan sees a read past
 * its end. */
static void fuzz_run(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

static size_t fuzz_insert(uint8_t *buf, size_t size, size_t at, const void *src,
                          size_t n)
{
    if (n > FUZZ_MAIN_INPUT_MAX - size)
        n = FUZZ_MAIN_INPUT_MAX - size;
    memmove(buf + at + n, buf + at, size - at);
    memcpy(buf + at, src, n);
    return size + n;
}

static size_t fuzz_mutate(uint8_t *buf, size_t size)
{
    static const uint64_t interesting[] = {0,
                                           1,
                                           2,
                                           7,
                                           8,
                                           63,
                                           64,
                                           255,
                                           256,
                                           4095,
                                           4096,
                                           65535,
                                           65536,
                                           0x7fffffffu,
                                           0x80000000u,
                                           0xffffffffu,
                                           0x100000000ull,
                                           0x7fffffffffffffffull,
                                           0xffffffffffffffffull};
    size_t at = fuzz_below(size + 1);
    switch (fuzz_below(10)) {
    case 0: /* flip a bit */
        if (size)
            buf[fuzz_below(size)] ^= (uint8_t)(1u << fuzz_below(8));
        return size;
    case 1: /* set a byte */
        if (size)
            buf[fuzz_below(size)] = (uint8_t)fuzz_next();
        return size;
    case 2: { /* an interesting little-endian u32 or u64 */
        uint64_t v = interesting[fuzz_below(sizeof(interesting) /
                                            sizeof(interesting[0]))];
        size_t width = fuzz_below(2) ? 8 : 4;
        if (size < width)
            return size;
        size_t where = fuzz_below(size - width + 1) & ~(size_t)3;
        for (size_t i = 0; i < width; i++)
            buf[where + i] = (uint8_t)(v >> (8 * i));
        return size;
    }
    case 3: { /* delete a range, mostly a short one */
        size_t n = fuzz_below(size - at + 1);
        if (n > 16 && fuzz_below(4))
            n = fuzz_below(16);
        memmove(buf + at, buf + at + n, size - at - n);
        return size - n;
    }
    case 4: { /* duplicate a range */
        uint8_t copy[256];
        size_t from = fuzz_below(size + 1);
        size_t n = fuzz_below(size - from + 1);
        n = n < sizeof(copy) ? n : sizeof(copy);
        memcpy(copy, buf + from, n);
        return fuzz_insert(buf, size, at, copy, n);
    }
    case 5: { /* splice in part of another corpus file */
        const struct fuzz_corpus_file *f =
            &fuzz_files[fuzz_below(fuzz_file_count)];
        size_t from = fuzz_below(f->size + 1);
        size_t n = fuzz_below(f->size - from + 1);
        return fuzz_insert(buf, size, at, f->data + from, n);
    }
    case 6: /* truncate */
        return at;
    case 7: { /* append junk */
        uint8_t junk[16];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)fuzz_next();
        return fuzz_insert(buf, size, size, junk, 1 + fuzz_below(16));
    }
    default: { /* a token, or zeros */
#ifdef FUZZ_TOKENS
        size_t count = sizeof(FUZZ_TOKENS) / sizeof(FUZZ_TOKENS[0]);
        if (fuzz_below(2)) {
            const char *tok = FUZZ_TOKENS[fuzz_below(count)];
            return fuzz_insert(buf, size, at, tok, strlen(tok));
        }
#endif
        size_t n = fuzz_below(size - at + 1);
        memset(buf + at, 0, n < 64 ? n : 64);
        return size;
    }
    }
}

int main(int argc, char **argv)
{
    long inputs = INPUT_COUNT;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--inputs") == 0) {
        inputs = strtol(argv[i + 1], NULL, 10);
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [--inputs N] CORPUS-FILE-OR-DIR...\n",
                argv[0]);
        return 2;
    }
    for (; i < argc; i++)
        fuzz_add_path(argv[i]);
    if (fuzz_file_count == 0) {
        fprintf(stderr, "%s: the corpus is empty\n", FUZZ_NAME);
        return 2;
    }
    for (size_t k = 0; k < fuzz_file_count; k++)
        fuzz_run(fuzz_files[k].data, fuzz_files[k].size);
#ifdef FUZZ_ACCEPTED
    if (FUZZ_ACCEPTED == 0 && inputs > 0) {
        fprintf(stderr,
                "%s: no corpus file is a valid input; regenerate the "
                "corpus (tests/fuzz/README.md)\n",
                FUZZ_NAME);
        return 1;
    }
#endif
    uint8_t *buf = malloc(FUZZ_MAIN_INPUT_MAX);
    if (!buf)
        abort();
    for (long k = 0; k < inputs; k++) {
        const struct fuzz_corpus_file *f =
            &fuzz_files[fuzz_below(fuzz_file_count)];
        size_t size = f->size;
        memcpy(buf, f->data, size);
        size_t rounds = 1 + fuzz_below(fuzz_below(2) ? 2 : 8);
        for (size_t r = 0; r < rounds; r++)
            size = fuzz_mutate(buf, size);
        fuzz_run(buf, size);
    }
    free(buf);
    for (size_t k = 0; k < fuzz_file_count; k++)
        free(fuzz_files[k].data);
    free(fuzz_files);
    printf("%s: %zu corpus files and %ld mutated inputs, all checks "
           "passed\n",
           FUZZ_NAME, fuzz_file_count, inputs);
    return 0;
}

#endif
