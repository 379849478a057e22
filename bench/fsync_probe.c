/* fsync_probe — what an fdatasync costs after a write, by how the file's
 * blocks were made (issue 16, pre-written log segments):
 *
 *   append     the write extends the file (size change: inode metadata)
 *   fallocate  the file was posix_fallocate'd to full size and synced
 *              first (what wal segments were until wal_prepare): the
 *              blocks are "unwritten" extents, converted on first write
 *   prewrite   the file was written with zeros to full size and synced:
 *              each write is a plain overwrite
 *
 * Usage: fsync_probe MODE N PATH BLOCK OUT — N times pwrite(BLOCK bytes,
 * at i*BLOCK) + fdatasync, appending each latency (µs) to OUT, one a line,
 * and printing percentiles. bench/fsync_probe.sh interleaves the modes.
 * Build: cc -O2 -o fsync_probe bench/fsync_probe.c */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: fsync_probe append|fallocate|prewrite N PATH "
                        "BLOCK OUT\n");
        return 2;
    }
    const char *mode = argv[1], *path = argv[3];
    int n = atoi(argv[2]);
    size_t bs = (size_t)atoi(argv[4]);
    size_t total = (size_t)n * bs, chunk = 1u << 20;
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char *buf = calloc(1, chunk);
    double *lat = malloc(sizeof(double) * (size_t)n);
    if (fd < 0 || !buf || !lat || bs == 0 || bs > chunk || n < 1) {
        perror("fsync_probe");
        return 1;
    }
    if (!strcmp(mode, "prewrite")) {
        for (size_t o = 0; o < total; o += chunk)
            if (pwrite(fd, buf, total - o < chunk ? total - o : chunk,
                       (off_t)o) < 0)
                return perror("pwrite"), 1;
        fsync(fd);
    } else if (!strcmp(mode, "fallocate")) {
        if (posix_fallocate(fd, 0, (off_t)total) != 0)
            return perror("fallocate"), 1;
        fsync(fd);
    }
    memset(buf, 'x', bs);
    for (int i = 0; i < n; i++) {
        double t = now_us();
        if (pwrite(fd, buf, bs, (off_t)i * (off_t)bs) != (ssize_t)bs ||
            fdatasync(fd) != 0)
            return perror("write+fdatasync"), 1;
        lat[i] = now_us() - t;
    }
    FILE *out = fopen(argv[5], "a");
    for (int i = 0; out && i < n; i++)
        fprintf(out, "%.1f\n", lat[i]);
    if (out)
        fclose(out);
    qsort(lat, (size_t)n, sizeof(double), cmp);
    printf("%-10s block=%zu n=%d p50=%.0f p90=%.0f p99=%.0f p99.9=%.0f us\n",
           mode, bs, n, lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100],
           lat[n * 999 / 1000]);
    close(fd);
    unlink(path);
    free(buf);
    free(lat);
    return 0;
}
