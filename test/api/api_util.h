/*
 * api_util.h -- helpers shared by the public-API tests (test/api only).
 *
 * Opening arenas (arena_util.h, shared with the other test directories),
 * file snapshots (to prove a failed open left a file byte-identical), paths
 * in the test's temporary directory, and a seeded block pattern: every
 * block a test allocates is filled from a 64-bit key and verified before it
 * is freed or resized, so a heap that hands out overlapping blocks or moves
 * data wrongly is caught at the first touch.
 */
#ifndef FM_TEST_API_UTIL_H
#define FM_TEST_API_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena_util.h"
#include "harness.h"

/* "<tmpdir>/<name>" in a static buffer ring (four live at a time). */
static inline const char *tpath(const char *name)
{
    static char buf[4][600];
    static unsigned next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", harness_tmpdir(), name);
    return p;
}

/* The whole file in a malloc'd buffer (size in *len), or NULL. */
static inline unsigned char *file_read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    unsigned char *buf;
    size_t done = 0;

    *len = 0;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        close(fd);
        return NULL;
    }
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
        if (n <= 0) {
            free(buf);
            close(fd);
            return NULL;
        }
        done += (size_t)n;
    }
    close(fd);
    *len = done;
    return buf;
}

/* Replace the file with len bytes of buf. 0 or -1. */
static inline int file_write_all(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t done = 0;

    if (fd < 0)
        return -1;
    while (done < len) {
        ssize_t n = write(fd, (const char *)buf + done, len - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

/* Size of the file, or -1 if it cannot be stat'ed. */
static inline long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static inline int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* splitmix64 finaliser: turns (slot, generation) keys into pattern seeds. */
static inline uint64_t pat_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#define PAT_STEP 0xd6e8feb86659fd93ull

/*
 * Fill n bytes with the pattern of `key`.  Byte i of the pattern depends on
 * key and on i only, so any prefix of a block is a prefix of its pattern
 * (what realloc must preserve).
 */
static inline void pat_fill(void *p, size_t n, uint64_t key)
{
    unsigned char *b = p;
    uint64_t w = pat_mix(key);
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t v = w + (uint64_t)i * PAT_STEP;
        memcpy(b + i, &v, 8);
    }
    if (i < n) {
        uint64_t v = w + (uint64_t)i * PAT_STEP;
        memcpy(b + i, &v, n - i);
    }
}

/* Offset of the first byte of p[0..n) that differs from the pattern, or SIZE_MAX. */
static inline size_t pat_check(const void *p, size_t n, uint64_t key)
{
    const unsigned char *b = p;
    uint64_t w = pat_mix(key);
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t v = w + (uint64_t)i * PAT_STEP, got;
        memcpy(&got, b + i, 8);
        if (got != v)
            break;
    }
    for (; i < n; i++) {
        uint64_t v = w + (uint64_t)(i & ~(size_t)7) * PAT_STEP;
        unsigned char want;
        memcpy(&want, (const unsigned char *)&v + (i & 7), 1);
        if (b[i] != want)
            return i;
    }
    return SIZE_MAX;
}

/* True if every byte of p[0..n) is zero. */
static inline int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/*
 * End of a test program: remove its temporary directory if every check
 * passed (a failing run keeps its files for a post-mortem), then
 * harness_done().
 */
static inline int api_done(void)
{
    if (harness_failures == 0) {
        const char *dir = harness_tmpdir();
        DIR *d = opendir(dir);
        struct dirent *e;
        char path[1200];
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0)
                rmdir(path);
        }
        if (d)
            closedir(d);
        rmdir(dir);
    } else {
        printf("files kept in %s\n", harness_tmpdir());
    }
    return harness_done();
}

#endif
