/*
 * stress_util.h -- small helpers shared by the stress tools (mmap_stress,
 * mem_stress): a seeded random generator, byte-pattern checks and option
 * parsing ("--name V" or "--name=V"; a bad value or an unknown option ends
 * the tool with status 2, --help with 0).  Everything is `static inline` so a tool that uses only part of
 * it compiles without unused-function warnings.
 *
 * The generator is xoshiro256** seeded through splitmix64: one 64-bit seed
 * fully determines a run, so a failing seed can be printed and replayed.
 */
#ifndef FM_STRESS_UTIL_H
#define FM_STRESS_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Random numbers
 * ---------------------------------------------------------------------- */

struct stress_rng {
    uint64_t s[4];
};

/* splitmix64: turns any seed (0 included) into well-mixed state words. */
static inline uint64_t stress_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void stress_rng_seed(struct stress_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = stress_splitmix64(&x);
}

static inline uint64_t stress_rotl(uint64_t v, int k)
{
    return (v << k) | (v >> (64 - k));
}

/* xoshiro256**: the next 64 random bits. */
static inline uint64_t stress_rng_next(struct stress_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = stress_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = stress_rotl(s[3], 45);
    return result;
}

/* A random value in [0, n); 0 when n is 0.  (The modulo bias is irrelevant
 * for a workload generator.) */
static inline uint64_t stress_rng_below(struct stress_rng *rng, uint64_t n)
{
    return n ? stress_rng_next(rng) % n : 0;
}

/* A seed nobody chose: the clock and the process id, mixed. */
static inline uint64_t stress_fresh_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 40;
    return stress_splitmix64(&x);
}

/* Seconds on the monotonic clock. */
static inline double stress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------
 * Pattern checks
 * ---------------------------------------------------------------------- */

/*
 * Index of the first byte of p[0..n) that differs from `fill`, or n when
 * all match.  The first loop has no early exit so the compiler can
 * vectorise it; the slow search runs only after a mismatch.
 */
static inline size_t stress_find_mismatch(const unsigned char *p, size_t n, unsigned char fill)
{
    unsigned acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (unsigned)(p[i] ^ fill);
    if (acc == 0)
        return n;
    for (size_t i = 0; i < n; i++)
        if (p[i] != fill)
            return i;
    return n;
}

/* How many bytes of p[0..n) differ from `fill`. */
static inline size_t stress_count_mismatch(const unsigned char *p, size_t n, unsigned char fill)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += p[i] != fill;
    return bad;
}

/* ------------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------- */

/* Parse a whole unsigned number (decimal, 0x hex or 0 octal) into *out. */
static inline bool stress_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* Prints the tool's help to the stream. */
typedef void stress_usage_fn(FILE *f);

/*
 * The value of option `name` at argv[*i] ("--name V", advancing *i, or
 * "--name=V"), or NULL when argv[*i] is another option.  A missing value
 * ends the tool.
 */
static inline const char *stress_option_value(const char *tool, stress_usage_fn *usage, int argc,
                                              char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", tool, name);
        usage(stderr);
        exit(2);
    }
    return argv[++*i];
}

/* Value `v` of option `opt` as a number in [min, max]; else the tool ends. */
static inline uint64_t stress_option_u64(const char *tool, const char *opt, const char *v,
                                         uint64_t min, uint64_t max)
{
    uint64_t n;
    if (!stress_parse_u64(v, &n) || n < min || n > max) {
        fprintf(stderr, "%s: bad value '%s' in %s\n", tool, v, opt);
        exit(2);
    }
    return n;
}

/* `arg` is none of the tool's options: --help or -h prints the help and
 * ends the tool with 0, anything else is an error (status 2). */
static inline void stress_option_other(const char *tool, stress_usage_fn *usage, const char *arg)
{
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        usage(stdout);
        exit(0);
    }
    fprintf(stderr, "%s: unknown argument '%s'\n", tool, arg);
    usage(stderr);
    exit(2);
}

#endif /* FM_STRESS_UTIL_H */
