/*
 * journal.c -- writing, applying and replaying the redo journal
 * (journal.h says what it holds and which invariants it keeps).
 *
 * Layer: journal.  The pages come from the arena's private mapping while
 * the arena is quiescent (arena lock held, thread caches stopped), so
 * what is checksummed is what is written.
 */
#include "journal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "format.h"
#include "log.h"
#include "os.h"

enum { CHUNK_PAGES = 256 }; /* pages read at a time when replaying */

static uint64_t round_up(uint64_t x, uint64_t to)
{
    return (x + to - 1) / to * to;
}

static uint64_t data_offset(uint64_t npages, uint64_t page)
{
    return round_up(JNL_HEADER_SIZE + 8 * npages, page);
}

/* Pages offs[i ..] that follow each other in the arena: how many. */
static size_t run_at(const uint64_t *offs, size_t n, size_t i, uint64_t page)
{
    size_t k = 1;
    while (i + k < n && offs[i + k] == offs[i] + k * page)
        k++;
    return k;
}

char *journal_path(const char *arena_path)
{
    size_t len = strlen(arena_path);
    char *p = malloc(len + sizeof JNL_SUFFIX);
    if (p) {
        memcpy(p, arena_path, len);
        memcpy(p + len, JNL_SUFFIX, sizeof JNL_SUFFIX);
    }
    return p;
}

/* ---- commit ------------------------------------------------------------------ */

int journal_open(struct journal *j, const char *arena_path, mode_t mode)
{
    j->fd = -1;
    j->seq = 0;
    if (!(j->path = journal_path(arena_path)))
        return ENOMEM;
    int err = os_open(j->path, false, true, mode, &j->fd);
    /* A new directory entry must survive the power cut it exists for. */
    if (!err)
        err = os_sync_dir(j->path);
    else if (err == EEXIST)
        err = os_open(j->path, false, false, 0, &j->fd);
    if (!err)
        err = os_file_size(j->fd, &j->size);
    if (err) {
        if (j->fd >= 0)
            os_close(j->fd);
        j->fd = -1;
        free(j->path);
        j->path = NULL;
    }
    return err;
}

int journal_write(struct journal *j, const uint8_t id[16], uint64_t page, uint64_t file_size,
                  const char *base, const uint64_t *offs, size_t n)
{
    uint64_t data = data_offset(n, page), total = data + n * page;
    struct jnl_header h = {.jh_version = JNL_VERSION, .jh_page_size = (uint32_t)page,
                           .jh_seq = j->seq + 1, .jh_file_size = file_size, .jh_npages = n};
    memcpy(h.jh_magic, JNL_MAGIC, sizeof h.jh_magic);
    memcpy(h.jh_arena_id, id, sizeof h.jh_arena_id);
    int err = 0;
    /* Blocks reserved once, so that later syncs carry no size change. */
    if (total > j->size && (err = os_allocate(j->fd, 0, total)))
        return err;
    if (total > j->size)
        j->size = total;

    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, &h, offsetof(struct jnl_header, jh_checksum));
    XXH3_64bits_update(&st, offs, n * sizeof *offs);
    if (n && (err = os_pwrite(j->fd, offs, n * sizeof *offs, JNL_HEADER_SIZE)))
        return err;
    for (size_t i = 0, k; i < n; i += k) {
        k = run_at(offs, n, i, page);
        XXH3_64bits_update(&st, base + offs[i], k * page);
        if ((err = os_pwrite(j->fd, base + offs[i], k * page, data + i * page)))
            return err;
        log_crashpoint();
    }
    h.jh_checksum = XXH3_64bits_digest(&st);
    if ((err = os_pwrite(j->fd, &h, sizeof h, 0)) || (err = os_fdatasync(j->fd)))
        return err;
    j->seq++;
    return 0;
}

/* Give the arena file file_size bytes if it has fewer, then sync it. */
static int size_and_sync(int arena_fd, uint64_t file_size)
{
    uint64_t real;
    int err = os_file_size(arena_fd, &real);
    if (!err && real < file_size)
        err = os_truncate(arena_fd, file_size);
    return err ? err : os_fdatasync(arena_fd);
}

int journal_apply(int arena_fd, uint64_t page, uint64_t file_size, const char *base,
                  const uint64_t *offs, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        k = run_at(offs, n, i, page);
        int err = os_pwrite(arena_fd, base + offs[i], k * page, offs[i]);
        if (err)
            return err;
        log_crashpoint(); /* a kill here leaves a half-applied commit: J3 replays it */
    }
    return size_and_sync(arena_fd, file_size);
}

int journal_close(struct journal *j, bool remove)
{
    int err = 0;
    if (j->fd >= 0) {
        /* Empty is invalid: a journal whose unlink a power cut undoes is
         * never applied over what later opens wrote (J2). */
        err = os_truncate(j->fd, 0);
        if (!err)
            err = os_fdatasync(j->fd);
        os_close(j->fd);
        if (!err && remove)
            (void)os_unlink(j->path);
    }
    free(j->path);
    j->path = NULL;
    j->fd = -1;
    return err;
}

void journal_drop(struct journal *j)
{
    if (j->fd >= 0)
        os_close(j->fd);
    free(j->path);
    j->path = NULL;
    j->fd = -1;
}

/* ---- replay ------------------------------------------------------------------ */

/* The journal open on fd: its header and page offsets (*offs malloc'd),
 * if it is complete, belongs to the arena on arena_fd and checksums.
 * 0 with *valid false for anything else; an errno only for I/O. */
static int read_valid(int fd, int arena_fd, uint64_t page, struct jnl_header *h,
                      uint64_t **offs, bool *valid)
{
    uint64_t size, asize;
    unsigned char id[64];
    *valid = false;
    *offs = NULL;
    int err = os_file_size(fd, &size);
    if (err || size < JNL_HEADER_SIZE)
        return err;
    if ((err = os_pread(fd, h, sizeof *h, 0)) || (err = os_file_size(arena_fd, &asize)))
        return err;
    if (memcmp(h->jh_magic, JNL_MAGIC, sizeof h->jh_magic) != 0 ||
        h->jh_version != JNL_VERSION || h->jh_page_size != page || asize < sizeof id ||
        h->jh_npages > (size - JNL_HEADER_SIZE) / (page + 8) ||
        size < data_offset(h->jh_npages, page) + h->jh_npages * page)
        return 0;
    /* The arena's identity is written once, at creation: a torn apply of
     * the superblock page rewrites it with the same bytes. */
    if ((err = os_pread(arena_fd, id, sizeof id, 0)))
        return err;
    if (memcmp(id + offsetof(struct fmt_superblock, sb_arena_id), h->jh_arena_id, 16) != 0)
        return 0;

    size_t n = (size_t)h->jh_npages;
    uint64_t *o = malloc(n ? n * sizeof *o : 1);
    char *buf = malloc(CHUNK_PAGES * page);
    if (!o || !buf) {
        free(o);
        free(buf);
        return ENOMEM;
    }
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, h, offsetof(struct jnl_header, jh_checksum));
    bool ok = true;
    if (n && (err = os_pread(fd, o, n * sizeof *o, JNL_HEADER_SIZE)))
        goto out;
    XXH3_64bits_update(&st, o, n * sizeof *o);
    for (size_t i = 0; i < n && ok; i++)
        ok = o[i] % page == 0 && o[i] < h->jh_file_size && (i == 0 || o[i] > o[i - 1]);
    uint64_t data = data_offset(n, page);
    for (size_t i = 0; i < n && ok; i += CHUNK_PAGES) {
        size_t k = n - i < CHUNK_PAGES ? n - i : CHUNK_PAGES;
        if ((err = os_pread(fd, buf, k * page, data + i * page)))
            goto out;
        XXH3_64bits_update(&st, buf, k * page);
    }
    if (ok && XXH3_64bits_digest(&st) == h->jh_checksum) {
        *valid = true;
        *offs = o;
        o = NULL;
    }
out:
    free(o);
    free(buf);
    return err;
}

/* Copy the journal's pages to where they belong in the arena. */
static int copy_pages(int fd, int arena_fd, uint64_t page, const uint64_t *offs, size_t n)
{
    char *buf = malloc(CHUNK_PAGES * page);
    if (!buf)
        return ENOMEM;
    int err = 0;
    uint64_t data = data_offset(n, page);
    for (size_t i = 0; i < n && !err; i += CHUNK_PAGES) {
        size_t k = n - i < CHUNK_PAGES ? n - i : CHUNK_PAGES;
        err = os_pread(fd, buf, k * page, data + i * page);
        for (size_t m = 0; m < k && !err; m++)
            err = os_pwrite(arena_fd, buf + m * page, page, offs[i + m]);
        log_crashpoint(); /* a replay cut short is replayed again */
    }
    free(buf);
    return err;
}

int journal_state(const char *arena_path, int arena_fd, uint64_t page, enum jnl_state *st,
                  struct jnl_header *h)
{
    char *path = journal_path(arena_path);
    if (!path)
        return ENOMEM;
    int fd, err = os_open(path, true, false, 0, &fd);
    free(path);
    *st = JNL_NONE;
    if (err)
        return err == ENOENT ? 0 : err;
    uint64_t size, *offs;
    bool valid;
    if (!(err = os_file_size(fd, &size)) && size == 0)
        *st = JNL_EMPTY;
    else if (!err && !(err = read_valid(fd, arena_fd, page, h, &offs, &valid)))
        *st = valid ? JNL_VALID : JNL_INVALID;
    if (!err && *st == JNL_VALID)
        free(offs);
    os_close(fd);
    return err;
}

int journal_replay(const char *arena_path, int arena_fd, uint64_t page, bool rdonly,
                   bool *applied, char *why, size_t why_len)
{
    *applied = false;
    char *path = journal_path(arena_path);
    if (!path)
        return ENOMEM;
    int fd, err = os_open(path, rdonly, false, 0, &fd);
    if (err) {
        free(path);
        return err == ENOENT ? 0 : err;
    }
    struct jnl_header h;
    uint64_t *offs;
    bool valid;
    err = read_valid(fd, arena_fd, page, &h, &offs, &valid);
    if (!err && valid && rdonly) {
        snprintf(why, why_len,
                 "commit %llu of a durable open waits in %s: open the arena read-write to apply it",
                 (unsigned long long)h.jh_seq, path);
        err = EAGAIN;
    } else if (!err && valid) {
        err = copy_pages(fd, arena_fd, page, offs, (size_t)h.jh_npages);
        if (!err)
            err = size_and_sync(arena_fd, h.jh_file_size);
        /* J3: applied, then made invalid for good, before the heap is read. */
        log_crashpoint();
        if (!err && !(err = os_truncate(fd, 0)) && !(err = os_fdatasync(fd)))
            *applied = true;
    }
    free(offs);
    os_close(fd);
    if (*applied)
        (void)os_unlink(path);
    free(path);
    return err;
}
