/*
 * fuzz_util.h -- what the fuzz targets share: the per-process arena path,
 * an error handler that records instead of aborting, a block pattern, and
 * fuzz_fail(), the one way a target reports a finding.
 *
 * A finding is anything the library promises never to do: crash, hang,
 * touch memory outside the mapping (ASan), or break an invariant that
 * fm_check() or the target's own model can see.  fuzz_fail() prints what
 * was wrong and abort()s, so libFuzzer (or the replay main) stops there
 * with the input saved.
 */
#ifndef FM_FUZZ_UTIL_H
#define FM_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmalloc.h"

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FUZZ FINDING: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define FUZZ_REQUIRE(cond, ...)                                                    \
    do {                                                                           \
        if (!(cond))                                                               \
            fuzz_fail(__VA_ARGS__);                                                \
    } while (0)

/* ---- the arena file: one per process, never left behind --------------------- */

static char fuzz_path_buf[600];
static char fuzz_named_buf[600];

static inline void fuzz_path_remove(void)
{
    if (fuzz_named_buf[0])
        unlink(fuzz_named_buf);
}

/*
 * The path of this process's arena file.  The file is made in $FUZZ_TMPDIR,
 * else /dev/shm when it is writable (no disk I/O per execution), else
 * $TMPDIR or /tmp -- and unlinked at once, kept open, and reached through
 * /proc/self/fd/N: a run that dies of a finding leaves no file behind, and
 * children forked later reach the same file by the same path.  Without
 * /proc it stays a named file, removed at exit.
 */
static inline const char *fuzz_path(const char *name)
{
    if (!fuzz_path_buf[0]) {
        const char *dir = getenv("FUZZ_TMPDIR");
        if (!dir && access("/dev/shm", W_OK) == 0)
            dir = "/dev/shm";
        if (!dir)
            dir = getenv("TMPDIR");
        if (!dir)
            dir = "/tmp";
        snprintf(fuzz_named_buf, sizeof fuzz_named_buf, "%s/%s.%ld.fm", dir, name,
                 (long)getpid());
        int fd = open(fuzz_named_buf, O_RDWR | O_CREAT | O_TRUNC, 0600);
        FUZZ_REQUIRE(fd >= 0, "cannot create %s", fuzz_named_buf);
        snprintf(fuzz_path_buf, sizeof fuzz_path_buf, "/proc/self/fd/%d", fd);
        if (access(fuzz_path_buf, F_OK) == 0) {
            unlink(fuzz_named_buf); /* fd stays open for the life of the process */
            fuzz_named_buf[0] = 0;
        } else {
            close(fd);
            snprintf(fuzz_path_buf, sizeof fuzz_path_buf, "%s", fuzz_named_buf);
            atexit(fuzz_path_remove);
        }
    }
    return fuzz_path_buf;
}

/* Replace the file's contents with data[0..size). */
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_REQUIRE(fd >= 0, "cannot create %s", path);
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue; /* libFuzzer's timeout timer */
        FUZZ_REQUIRE(n > 0, "cannot write %s", path);
        done += (size_t)n;
    }
    close(fd);
}

/* Does the file hold exactly data[0..size)? */
static inline int fuzz_file_equals(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint8_t buf[1 << 14];
    size_t done = 0;
    int same = 1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            same = 0;
        if (n <= 0)
            break;
        if (done + (size_t)n > size || memcmp(buf, data + done, (size_t)n) != 0) {
            same = 0;
            break;
        }
        done += (size_t)n;
    }
    close(fd);
    return same && done == size;
}

/* ---- error handler ----------------------------------------------------------- */

struct fuzz_errors {
    int count;
    int last_err;
    char last_msg[256];
};

static inline void fuzz_record_error(struct fm_info *fi, int err, const char *msg, void *arg)
{
    struct fuzz_errors *e = arg;
    (void)fi;
    e->count++;
    e->last_err = err;
    snprintf(e->last_msg, sizeof e->last_msg, "%s", msg ? msg : "(null)");
}

/* ---- block pattern ------------------------------------------------------------ */

/* Loops over block bytes are not worth coverage feedback, and its
 * comparison hooks would make them the slowest part of every execution.
 * noinline: coverage is added after inlining, into the caller. */
#if defined(__clang__)
#define FUZZ_NOCOV __attribute__((no_sanitize("coverage"), noinline, unused))
#elif defined(__GNUC__)
#define FUZZ_NOCOV __attribute__((unused))
#else
#define FUZZ_NOCOV
#endif

/* Word w of the pattern `seed`; byte i of a block is byte i % 8 of word i / 8
 * (little-endian), so fill and verify go a word at a time. */
static inline uint64_t fuzz_pattern_word(uint32_t seed, size_t w)
{
    return ((uint64_t)seed + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)w * 0xd6e8feb86659fd93ull;
}

static inline uint8_t fuzz_pattern_byte(uint32_t seed, size_t i)
{
    return (uint8_t)(fuzz_pattern_word(seed, i / 8) >> (8 * (i % 8)));
}

FUZZ_NOCOV static void fuzz_fill(void *p, size_t n, uint32_t seed)
{
    uint8_t *b = p;
    size_t w = 0;
    for (; (w + 1) * 8 <= n; w++) {
        uint64_t v = fuzz_pattern_word(seed, w);
        memcpy(b + 8 * w, &v, 8);
    }
    for (size_t i = 8 * w; i < n; i++)
        b[i] = fuzz_pattern_byte(seed, i);
}

/* Index of the first byte in [from, n) that differs from the pattern, or n. */
FUZZ_NOCOV static size_t fuzz_verify_from(const void *p, size_t from, size_t n, uint32_t seed)
{
    const uint8_t *b = p;
    size_t i = from;
    for (; i < n && i % 8; i++)
        if (b[i] != fuzz_pattern_byte(seed, i))
            return i;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        if (v != fuzz_pattern_word(seed, i / 8))
            break; /* the byte loop below finds which */
    }
    for (; i < n; i++)
        if (b[i] != fuzz_pattern_byte(seed, i))
            return i;
    return n;
}

FUZZ_NOCOV static size_t fuzz_verify(const void *p, size_t n, uint32_t seed)
{
    return fuzz_verify_from(p, 0, n, seed);
}

/* Index of the first non-zero byte of p[0..n), or n. */
FUZZ_NOCOV static size_t fuzz_first_nonzero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return i;
    return n;
}

#endif
