/*
 * make_arena.c -- arenas of given shapes for the fmtool tests, and the
 * small probes the test scripts need.  Public API only (fmalloc_dep).
 *
 *   make_arena fresh FILE [SIZE]          a new, empty arena (SIZE bytes, default 1 MiB)
 *   make_arena random FILE N SEED         N random blocks, about a third freed again
 *   make_arena dirty FILE N SEED [kill]   a child opens FILE (creating it), allocates N
 *                                         blocks and _exit()s without fm_close; with
 *                                         `kill` it keeps replacing 64 blocks until
 *                                         the parent SIGKILLs it (20-40 ms later)
 *   make_arena big-sparse FILE            64 MiB arena: a 56 MiB block written, then
 *                                         freed (a small block keeps it off the top),
 *                                         so fmalloc punches its pages out of the file
 *   make_arena hash FILE                  "blocks N bytes B hash H" over every block's
 *                                         offset, size and contents (fm_walk)
 *   make_arena first-chunk FILE           offset of the first allocated block's chunk
 *   make_arena flip FILE OFFSET           invert the byte at OFFSET
 *   make_arena hold FILE READY            open FILE read-write, create READY, wait
 *                                         until READY is removed, close
 *
 * Exit 0 on success, 1 with a message on stderr otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fmalloc.h"

static int die(const char *what, int err)
{
    fprintf(stderr, "make_arena: %s: %s\n", what, err ? fm_strerror(err) : "failed");
    return 1;
}

static uint64_t rng_state;

static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t random_size(void)
{
    uint64_t r = rng() % 100;
    if (r < 70)
        return 1 + rng() % 256;
    if (r < 95)
        return 256 + rng() % 4096;
    return 4096 + rng() % (64 * 1024);
}

static void fill(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)rng();
}

static int open_arena(const char *path, unsigned flags, uint64_t size, struct fm_info **fi)
{
    struct fm_options o = {.flags = flags, .initial_size = size};
    return fm_open(path, &o, fi);
}

/* Allocate n random blocks and free about a third of them. */
static int churn(struct fm_info *fi, long n)
{
    void **blocks = calloc((size_t)n + 1, sizeof *blocks);
    if (!blocks)
        return ENOMEM;
    for (long i = 0; i < n; i++) {
        size_t sz = random_size();
        if (!(blocks[i] = fm_malloc(fi, sz))) {
            free(blocks);
            return errno;
        }
        fill(blocks[i], sz);
    }
    for (long i = 0; i < n; i++)
        if (rng() % 3 == 0)
            fm_free(fi, blocks[i]);
    free(blocks);
    return 0;
}

static int cmd_fresh(const char *path, uint64_t size)
{
    struct fm_info *fi;
    int err = open_arena(path, FM_CREATE | FM_EXCL, size, &fi);
    if (err)
        return die(path, err);
    return fm_close(fi) ? die("close", 0) : 0;
}

/* An FM_DURABLE writer that commits once and dies: its journal holds
 * that commit (a clean close would have emptied and removed it). */
static int cmd_durable(const char *path)
{
    struct fm_info *fi;
    int err = open_arena(path, FM_CREATE | FM_DURABLE, 0, &fi);
    if (err)
        return die(path, err);
    if (!fm_malloc_to(fi, (fm_off_t *)fm_root(fi), 100) || fm_commit(fi))
        return die("commit", 0);
    _exit(0);
}

static int cmd_random(const char *path, long n)
{
    struct fm_info *fi;
    int err = open_arena(path, FM_CREATE, 0, &fi);
    if (err)
        return die(path, err);
    if ((err = churn(fi, n)))
        return die("allocate", err);
    return fm_close(fi) ? die("close", 0) : 0;
}

static int cmd_dirty(const char *path, long n, int kill_it)
{
    int ready[2];
    if (pipe(ready) != 0)
        return die("pipe", errno);
    pid_t pid = fork();
    if (pid < 0)
        return die("fork", errno);
    if (pid == 0) {
        struct fm_info *fi;
        close(ready[0]);
        if (open_arena(path, FM_CREATE, 0, &fi) || churn(fi, n))
            _exit(3);
        if (!kill_it)
            _exit(0); /* no fm_close: the arena stays dirty */
        (void)!write(ready[1], "r", 1);
        void *slot[64] = {0};
        for (;;) { /* keep operations in flight until SIGKILL; the arena stays small */
            unsigned i = (unsigned)(rng() % 64);
            fm_free(fi, slot[i]);
            slot[i] = fm_malloc(fi, random_size());
        }
    }
    close(ready[1]);
    if (kill_it) {
        char c;
        if (read(ready[0], &c, 1) == 1) {
            struct timespec ts = {0, 20 * 1000 * 1000 + (long)(rng() % 20) * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
    }
    close(ready[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return die("waitpid", errno);
    if (kill_it ? !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
                : !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        return die("child", 0);
    return 0;
}

static int cmd_big_sparse(const char *path)
{
    struct fm_info *fi;
    const size_t big = 56u << 20;
    int err = open_arena(path, FM_CREATE | FM_EXCL, 64u << 20, &fi);
    if (err)
        return die(path, err);
    unsigned char *b = fm_malloc(fi, big);
    void *keep = fm_malloc(fi, 100);
    if (!b || !keep)
        return die("allocate", errno);
    memset(b, 0xab, big); /* real data blocks, until they are punched */
    fm_free(fi, b);
    return fm_close(fi) ? die("close", 0) : 0;
}

struct hash_state {
    struct fm_info *fi;
    uint64_t h, blocks, bytes;
};

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001b3ull;
}

static int hash_block(void *p, size_t size, void *arg)
{
    struct hash_state *s = arg;
    uint64_t off = fm_offset(s->fi, p), sz = size;
    fnv(&s->h, &off, sizeof off);
    fnv(&s->h, &sz, sizeof sz);
    fnv(&s->h, p, size);
    s->blocks++;
    s->bytes += size;
    return 0;
}

static int cmd_hash(const char *path)
{
    struct fm_info *fi;
    int err = open_arena(path, FM_RDONLY, 0, &fi);
    if (err)
        return die(path, err);
    struct hash_state s = {fi, 0xcbf29ce484222325ull, 0, 0};
    fnv(&s.h, fm_root(fi), fm_root_size(fi));
    if ((err = fm_walk(fi, hash_block, &s)))
        return die("walk", err);
    fm_close(fi);
    printf("blocks %" PRIu64 " bytes %" PRIu64 " hash %016" PRIx64 "\n", s.blocks, s.bytes, s.h);
    return 0;
}

static int first_block(void *p, size_t size, void *arg)
{
    (void)size;
    *(void **)arg = p;
    return 1;
}

static int cmd_first_chunk(const char *path)
{
    struct fm_info *fi;
    void *p = NULL;
    int err = open_arena(path, FM_RDONLY, 0, &fi);
    if (err)
        return die(path, err);
    fm_walk(fi, first_block, &p);
    if (!p)
        return die("no allocated block", 0);
    printf("%" PRIu64 "\n", fm_offset(fi, p) - 16);
    fm_close(fi);
    return 0;
}

static int cmd_flip(const char *path, long long off)
{
    unsigned char c;
    int fd = open(path, O_RDWR);
    if (fd < 0 || pread(fd, &c, 1, (off_t)off) != 1)
        return die(path, errno);
    c ^= 0xff;
    if (pwrite(fd, &c, 1, (off_t)off) != 1)
        return die(path, errno);
    close(fd);
    return 0;
}

static int cmd_hold(const char *path, const char *ready)
{
    struct fm_info *fi;
    struct stat st;
    int err = open_arena(path, 0, 0, &fi);
    if (err)
        return die(path, err);
    int fd = open(ready, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return die(ready, errno);
    close(fd);
    for (int i = 0; i < 120 * 100 && stat(ready, &st) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return fm_close(fi) ? die("close", 0) : 0;
}

/* named FILE: a fresh arena with names: "counts" (a 100-byte block),
 * "root" (the root region), "big" (5000 bytes), and 200 "item/N" names
 * (24-byte blocks) with every other one unbound again. */
static int cmd_named(const char *path)
{
    struct fm_options o = {.flags = FM_CREATE};
    struct fm_info *fi;
    if (fm_open(path, &o, &fi))
        return 1;
    int bad = !fm_name_malloc(fi, "counts", 100) || !fm_name_malloc(fi, "big", 5000) ||
              fm_name_bind(fi, "root", fm_offset(fi, fm_root(fi)));
    char name[32];
    for (int i = 0; i < 200 && !bad; i++) {
        snprintf(name, sizeof name, "item/%03d", i);
        bad = !fm_name_malloc(fi, name, 24);
    }
    for (int i = 0; i < 200 && !bad; i += 2) {
        snprintf(name, sizeof name, "item/%03d", i);
        bad = fm_name_unbind(fi, name) != 0;
    }
    return fm_close(fi) || bad;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    const char *path = argc > 2 ? argv[2] : NULL;
    rng_state = argc > 4 ? strtoull(argv[4], NULL, 0) : 1;
    if (path && strcmp(cmd, "fresh") == 0)
        return cmd_fresh(path, argc > 3 ? strtoull(argv[3], NULL, 0) : 0);
    if (path && strcmp(cmd, "durable") == 0)
        return cmd_durable(path);
    if (path && argc > 3 && strcmp(cmd, "random") == 0)
        return cmd_random(path, strtol(argv[3], NULL, 0));
    if (path && argc > 3 && strcmp(cmd, "dirty") == 0)
        return cmd_dirty(path, strtol(argv[3], NULL, 0), argc > 5 && strcmp(argv[5], "kill") == 0);
    if (path && strcmp(cmd, "named") == 0)
        return cmd_named(path);
    if (path && strcmp(cmd, "big-sparse") == 0)
        return cmd_big_sparse(path);
    if (path && strcmp(cmd, "hash") == 0)
        return cmd_hash(path);
    if (path && strcmp(cmd, "first-chunk") == 0)
        return cmd_first_chunk(path);
    if (path && argc > 3 && strcmp(cmd, "flip") == 0)
        return cmd_flip(path, strtoll(argv[3], NULL, 0));
    if (path && argc > 3 && strcmp(cmd, "hold") == 0)
        return cmd_hold(path, argv[3]);
    fprintf(stderr, "usage: make_arena fresh|random|dirty|named|big-sparse|hash|first-chunk|flip|hold "
                    "FILE [ARGS]\n");
    return 2;
}
