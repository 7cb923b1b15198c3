/*
 * journal.c -- appending, applying and replaying the redo journal
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
#include <sys/uio.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "format.h"
#include "log.h"
#include "os.h"

enum { CHUNK_PAGES = 256 }; /* pages read at a time when replaying */
#define JNL_GROW_STEP (256u << 10) /* the file is preallocated in steps of this */

#if FM_TEST_HOOKS
unsigned jnl_checkpoint_commits = JNL_CHECKPOINT_COMMITS;
#endif

static uint64_t round_up(uint64_t x, uint64_t to)
{
    return (x + to - 1) / to * to;
}

/* Where a record's pages start, from its start, and its whole length. */
static uint64_t rec_data(uint64_t npages, uint64_t page)
{
    return round_up(JNL_RECORD_SIZE + 8 * npages, page);
}

static uint64_t rec_size(uint64_t npages, uint64_t page)
{
    return rec_data(npages, page) + npages * page;
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

static void header_make(struct jnl_header *h, const uint8_t id[16], uint64_t page,
                        uint64_t epoch)
{
    memset(h, 0, sizeof *h);
    memcpy(h->jh_magic, JNL_MAGIC, sizeof h->jh_magic);
    h->jh_version = JNL_VERSION;
    h->jh_page_size = (uint32_t)page;
    memcpy(h->jh_arena_id, id, sizeof h->jh_arena_id);
    h->jh_epoch = epoch;
    h->jh_checksum = XXH3_64bits(h, offsetof(struct jnl_header, jh_checksum));
}

/* ---- commit ------------------------------------------------------------------ */

/* A header for j->epoch, synced: from here records of the epoch count. */
static int write_header(struct journal *j)
{
    struct jnl_header h;
    header_make(&h, j->id, j->page, j->epoch);
    int err = os_pwrite(j->fd, &h, sizeof h, 0);
    if (!err)
        err = os_fdatasync(j->fd);
    if (err)
        return err;
    if (j->size < sizeof h)
        j->size = sizeof h;
    j->records = 0;
    j->tail = j->page;
    return 0;
}

int journal_open(struct journal *j, const char *arena_path, mode_t mode, const uint8_t id[16],
                 uint64_t page)
{
    j->fd = -1;
    j->page = page;
    j->records = j->commits = 0;
    j->tail = page;
    memcpy(j->id, id, sizeof j->id);
    /* Random, so no record a previous open left past the end can pass
     * for one of this epoch. */
    os_random(&j->epoch, sizeof j->epoch);
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
    if (!err)
        err = write_header(j);
    if (err) {
        if (j->fd >= 0)
            os_close(j->fd);
        j->fd = -1;
        free(j->path);
        j->path = NULL;
    }
    return err;
}

bool journal_full(const struct journal *j, size_t n)
{
    return j->records > 0 && (j->records >= jnl_checkpoint_commits ||
                              j->tail + rec_size(n, j->page) > JNL_CHECKPOINT_BYTES);
}

/* Write the record: its head (header, offsets, zero padding to the
 * page), then the page runs, as few system calls as IOV_BATCH allows. */
enum { IOV_BATCH = 64 };

static int write_record(int fd, uint64_t at, const unsigned char *head, uint64_t data,
                        const char *base, const uint64_t *offs, size_t n, uint64_t page)
{
    struct iovec iov[IOV_BATCH];
    int cnt = 1;
    iov[0] = (struct iovec){(void *)head, (size_t)data};
    uint64_t batch_at = at;
    for (size_t i = 0, k; i <= n; i += k) {
        if (i == n || cnt == IOV_BATCH) {
            int err = os_pwritev(fd, iov, cnt, batch_at);
            if (err || i == n)
                return err;
            log_crashpoint();
            batch_at = at + data + i * page;
            cnt = 0;
        }
        k = run_at(offs, n, i, page);
        iov[cnt++] = (struct iovec){(void *)(base + offs[i]), k * page};
    }
    return 0;
}

int journal_append(struct journal *j, uint64_t file_size, const char *base, const uint64_t *offs,
                   size_t n)
{
    uint64_t page = j->page, at = j->tail, data = rec_data(n, page), end = at + data + n * page;
    /* Blocks reserved ahead, so that most syncs carry no size change. */
    if (end > j->size) {
        uint64_t want = round_up(end, JNL_GROW_STEP);
        int err = os_allocate(j->fd, j->size, want - j->size);
        if (err)
            return err;
        j->size = want;
    }
    unsigned char *head = calloc(1, (size_t)data);
    if (!head)
        return ENOMEM;
    struct jnl_record r = {.jr_epoch = j->epoch, .jr_seq = j->records + 1,
                           .jr_file_size = file_size, .jr_npages = n,
                           .jr_commit = j->commits + 1};
    memcpy(r.jr_magic, JNL_REC_MAGIC, sizeof r.jr_magic);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, &r, offsetof(struct jnl_record, jr_checksum));
    XXH3_64bits_update(&st, offs, n * sizeof *offs);
    for (size_t i = 0, k; i < n; i += k) {
        k = run_at(offs, n, i, page);
        XXH3_64bits_update(&st, base + offs[i], k * page);
    }
    r.jr_checksum = XXH3_64bits_digest(&st);
    memcpy(head, &r, sizeof r);
    memcpy(head + sizeof r, offs, n * sizeof *offs);
    /* One sync makes it all durable; a torn part fails the checksum. */
    int err = write_record(j->fd, at, head, data, base, offs, n, page);
    free(head);
    if (!err)
        err = os_fdatasync(j->fd);
    if (err)
        return err; /* the next commit writes this record again, here */
    j->tail = end;
    j->records++;
    j->commits++;
    return 0;
}

/* Give the arena file file_size bytes if it has fewer. */
static int size_at_least(int arena_fd, uint64_t file_size)
{
    uint64_t real;
    int err = os_file_size(arena_fd, &real);
    if (!err && real < file_size)
        err = os_truncate(arena_fd, file_size);
    return err;
}

int journal_apply(int arena_fd, uint64_t page, const char *base, const uint64_t *offs, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        k = run_at(offs, n, i, page);
        int err = os_pwrite(arena_fd, base + offs[i], k * page, offs[i]);
        if (err)
            return err;
        log_crashpoint(); /* a kill here leaves a half-applied commit: J3 replays it */
    }
    return 0;
}

int journal_restart(struct journal *j)
{
    j->epoch++;
    return write_header(j);
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

/* Is the header of the journal on fd (size bytes) valid and the arena's
 * on arena_fd?  0 with *valid false for anything else; an errno for I/O. */
static int read_header(int fd, uint64_t size, int arena_fd, uint64_t page, struct jnl_header *h,
                       bool *valid)
{
    unsigned char sb[64];
    uint64_t asize;
    *valid = false;
    if (size < JNL_HEADER_SIZE)
        return 0;
    int err = os_pread(fd, h, sizeof *h, 0);
    if (!err)
        err = os_file_size(arena_fd, &asize);
    if (err)
        return err;
    if (memcmp(h->jh_magic, JNL_MAGIC, sizeof h->jh_magic) != 0 ||
        h->jh_version != JNL_VERSION || h->jh_page_size != page || asize < sizeof sb ||
        XXH3_64bits(h, offsetof(struct jnl_header, jh_checksum)) != h->jh_checksum)
        return 0;
    /* The arena's identity is written once, at creation: a torn apply of
     * the superblock page rewrites it with the same bytes. */
    if ((err = os_pread(arena_fd, sb, sizeof sb, 0)))
        return err;
    *valid = memcmp(sb + offsetof(struct fmt_superblock, sb_arena_id), h->jh_arena_id, 16) == 0;
    return 0;
}

/* The record at `at` of a journal of `size` bytes: its header and page
 * offsets (*offs malloc'd), if it is complete, of the epoch, numbered
 * seq, and checksums.  0 with *valid false for anything else. */
static int read_record(int fd, uint64_t size, uint64_t at, uint64_t page, uint64_t epoch,
                       uint64_t seq, struct jnl_record *r, uint64_t **offs, bool *valid)
{
    *valid = false;
    *offs = NULL;
    if (at > size || size - at < JNL_RECORD_SIZE)
        return 0;
    int err = os_pread(fd, r, sizeof *r, at);
    if (err)
        return err;
    uint64_t room = size - at - JNL_RECORD_SIZE;
    if (memcmp(r->jr_magic, JNL_REC_MAGIC, sizeof r->jr_magic) != 0 || r->jr_epoch != epoch ||
        r->jr_seq != seq || r->jr_npages > room / (page + 8) ||
        rec_size(r->jr_npages, page) > size - at)
        return 0;

    size_t n = (size_t)r->jr_npages;
    uint64_t *o = malloc(n ? n * sizeof *o : 1);
    char *buf = malloc(CHUNK_PAGES * page);
    if (!o || !buf) {
        free(o);
        free(buf);
        return ENOMEM;
    }
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, r, offsetof(struct jnl_record, jr_checksum));
    bool ok = true;
    if (n && (err = os_pread(fd, o, n * sizeof *o, at + JNL_RECORD_SIZE)))
        goto out;
    XXH3_64bits_update(&st, o, n * sizeof *o);
    for (size_t i = 0; i < n && ok; i++)
        ok = o[i] % page == 0 && o[i] < r->jr_file_size && (i == 0 || o[i] > o[i - 1]);
    uint64_t data = at + rec_data(n, page);
    for (size_t i = 0; i < n && ok; i += CHUNK_PAGES) {
        size_t k = n - i < CHUNK_PAGES ? n - i : CHUNK_PAGES;
        if ((err = os_pread(fd, buf, k * page, data + i * page)))
            goto out;
        XXH3_64bits_update(&st, buf, k * page);
    }
    if (ok && XXH3_64bits_digest(&st) == r->jr_checksum) {
        *valid = true;
        *offs = o;
        o = NULL;
    }
out:
    free(o);
    free(buf);
    return err;
}

/* Copy the pages of the record at `at` to where they belong in the arena. */
static int copy_pages(int fd, uint64_t at, int arena_fd, uint64_t page, const uint64_t *offs,
                      size_t n)
{
    char *buf = malloc(CHUNK_PAGES * page);
    if (!buf)
        return ENOMEM;
    int err = 0;
    uint64_t data = at + rec_data(n, page);
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

/*
 * Walk the valid records of the journal on fd, in order, calling
 * apply(ctx, ...) on each (NULL: just count them); *nrec and *last say
 * what was found.  0 with *nrec 0 for an invalid or foreign journal;
 * *header_ok says which.
 */
typedef int (*record_fn)(void *ctx, int fd, uint64_t at, const struct jnl_record *r,
                         const uint64_t *offs);

static int walk_records(int fd, int arena_fd, uint64_t page, bool *header_ok, uint64_t *nrec,
                        struct jnl_record *last, record_fn apply, void *ctx)
{
    uint64_t size;
    struct jnl_header h;
    *nrec = 0;
    int err = os_file_size(fd, &size);
    if (!err)
        err = read_header(fd, size, arena_fd, page, &h, header_ok);
    if (err || !*header_ok)
        return err;
    for (uint64_t at = page, seq = 1;; seq++) {
        struct jnl_record r;
        uint64_t *offs;
        bool valid;
        if ((err = read_record(fd, size, at, page, h.jh_epoch, seq, &r, &offs, &valid)) || !valid)
            return err;
        err = apply ? apply(ctx, fd, at, &r, offs) : 0;
        free(offs);
        if (err)
            return err;
        *last = r;
        ++*nrec;
        at += rec_size(r.jr_npages, page);
    }
}

int journal_state(const char *arena_path, int arena_fd, uint64_t page, enum jnl_state *st,
                  struct jnl_record *last, uint64_t *nrec)
{
    char *path = journal_path(arena_path);
    if (!path)
        return ENOMEM;
    int fd, err = os_open(path, true, false, 0, &fd);
    free(path);
    *st = JNL_NONE;
    *nrec = 0;
    if (err)
        return err == ENOENT ? 0 : err;
    uint64_t size;
    bool header_ok;
    if (!(err = os_file_size(fd, &size)) && size == 0)
        *st = JNL_EMPTY;
    else if (!err && !(err = walk_records(fd, arena_fd, page, &header_ok, nrec, last, NULL, NULL)))
        *st = !header_ok ? JNL_INVALID : *nrec ? JNL_VALID : JNL_EMPTY;
    os_close(fd);
    return err;
}

struct replay {
    int arena_fd;
    uint64_t page;
    bool rdonly;
};

static int replay_record(void *ctx, int fd, uint64_t at, const struct jnl_record *r,
                         const uint64_t *offs)
{
    struct replay *rp = ctx;
    if (rp->rdonly)
        return EAGAIN;
    /* Each record is applied whole before the next is read: a replay cut
     * anywhere is a prefix of the same sequence, and is replayed again. */
    int err = copy_pages(fd, at, rp->arena_fd, rp->page, offs, (size_t)r->jr_npages);
    return err ? err : size_at_least(rp->arena_fd, r->jr_file_size);
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
    struct replay rp = {arena_fd, page, rdonly};
    struct jnl_record last;
    uint64_t nrec;
    bool header_ok;
    err = walk_records(fd, arena_fd, page, &header_ok, &nrec, &last, replay_record, &rp);
    if (err == EAGAIN) {
        snprintf(why, why_len,
                 "commits of a durable open wait in %s: open the arena read-write to apply them",
                 path);
    } else if (!err && nrec) {
        err = os_fdatasync(arena_fd);
        /* J3: applied, then made invalid for good, before the heap is read. */
        log_crashpoint();
        if (!err && !(err = os_truncate(fd, 0)) && !(err = os_fdatasync(fd)))
            *applied = true;
    }
    os_close(fd);
    if (*applied)
        (void)os_unlink(path);
    free(path);
    return err;
}
