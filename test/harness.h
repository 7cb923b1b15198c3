/*
 * harness.h -- the tiny test harness shared by every test program.
 *
 * expect_*() records a failure and carries on; require_*() records it and
 * ends the test program.  A program ends with `return harness_done();`,
 * which prints a summary and exits 1 if anything failed.  Randomised tests
 * take their seed from harness_seed() (FM_TEST_SEED in the environment, or
 * the clock) and print it, so a failing run can be replayed.
 * Exit code 77 tells meson the test was skipped.
 */
#ifndef FM_TEST_HARNESS_H
#define FM_TEST_HARNESS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

static int harness_failures;
static int harness_checks;

static inline int harness_done(void)
{
    printf("%d checks, %d failed\n", harness_checks, harness_failures);
    return harness_failures ? 1 : 0;
}

#define HARNESS_FAIL_(fmt, ...)                                                    \
    (harness_failures++,                                                           \
     fprintf(stderr, "%s:%d: FAIL: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__))

#define expect_true(cond)                                                          \
    (harness_checks++, (cond) ? 1 : (HARNESS_FAIL_("%s", #cond), 0))
static inline int harness_expect_eq_(long long a, long long b, int want_equal, const char *as,
                                     const char *bs, const char *file, int line)
{
    harness_checks++;
    if ((a == b) == want_equal)
        return 1;
    harness_failures++;
    if (want_equal)
        fprintf(stderr, "%s:%d: FAIL: %s == %s (%lld != %lld)\n", file, line, as, bs, a, b);
    else
        fprintf(stderr, "%s:%d: FAIL: %s != %s (both %lld)\n", file, line, as, bs, a);
    return 0;
}
/* expect_eq/expect_ne are expressions: 1 if the check held, else 0. */
#define expect_eq(a, b)                                                            \
    harness_expect_eq_((long long)(a), (long long)(b), 1, #a, #b, __FILE__, __LINE__)
#define expect_ne(a, b)                                                            \
    harness_expect_eq_((long long)(a), (long long)(b), 0, #a, #b, __FILE__, __LINE__)
#define expect_str(a, b)                                                           \
    do {                                                                           \
        const char *a_ = (a), *b_ = (b);                                           \
        harness_checks++;                                                          \
        if (strcmp(a_, b_) != 0)                                                   \
            HARNESS_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, a_, b_);          \
    } while (0)

#define require_true(cond)                                                         \
    do {                                                                           \
        if (!expect_true(cond))                                                    \
            exit(harness_done());                                                  \
    } while (0)
#define require_eq(a, b)                                                           \
    do {                                                                           \
        if (!expect_eq(a, b))                                                      \
            exit(harness_done());                                                  \
    } while (0)


/* The seed for this run: FM_TEST_SEED if set, else the clock; printed. */
static inline uint64_t harness_seed(void)
{
    const char *s = getenv("FM_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
    printf("seed %" PRIu64 " (replay with FM_TEST_SEED=%" PRIu64 ")\n", seed, seed);
    return seed;
}

/* xorshift64*: small, seeded, good enough for test workloads. */
static inline uint64_t harness_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* A fresh empty directory for this test's files (under $TMPDIR or /tmp). */
static inline const char *harness_tmpdir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fmtest.XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

/* Copy a file whole (an arena image to crash or damage a copy of). */
static inline void harness_copy_file(const char *from, const char *to)
{
    static char buf[1 << 16];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    require_true(in >= 0 && out >= 0);
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        require_true(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
}

#endif
