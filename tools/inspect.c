/*
 * inspect.c -- fmtool info, stats and check.
 *
 * info reads the superblock with pread and never opens the arena: it works
 * on a dirty arena, on one a writer holds open, and on one whose state part
 * is damaged, and it leaves every byte of the file (and its lock) alone.
 * stats and check open the arena with FM_RDONLY and use the public API.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmtool.h"
#include "os.h"
#include "heap.h"
#include "journal.h"

/* ---- info ---------------------------------------------------------------------- */

/*
 * Read and validate the identity part, as fm_open does before it trusts a
 * file.  0, or the FM_E* / errno code the open would fail with.
 */
static int read_header(const char *path, unsigned char hdr[FMT_HEADER_SIZE], uint64_t *real)
{
    struct stat st;
    int err = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno;
    if (fstat(fd, &st) != 0)
        err = errno;
    else if (S_ISDIR(st.st_mode))
        err = EISDIR;
    else if (!S_ISREG(st.st_mode))
        err = FM_ENOTFILE;
    if (err)
        goto out;
    *real = (uint64_t)st.st_size;
    size_t n = *real < FMT_HEADER_SIZE ? (size_t)*real : FMT_HEADER_SIZE;
    memset(hdr, 0, FMT_HEADER_SIZE);
    if (n && (err = os_pread(fd, hdr, n, 0)))
        goto out;
    err = fmt_all_zero(hdr, n) ? FM_EEMPTY
                               : fmt_classify_header(hdr, n, (uint64_t)sysconf(_SC_PAGESIZE));
out:
    close(fd);
    return err;
}

static const char *iso8601(uint64_t ns, char buf[40])
{
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, 40, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, 40, "(invalid: %llu ns)", (unsigned long long)ns);
    return buf;
}

/* "[a, b), n bytes (h)" */
static void rep_range(struct report *r, const char *label, uint64_t off, uint64_t size)
{
    char h[32];
    if (size < 1024)
        rep_text(r, label, "[%llu, %llu), %llu bytes", (unsigned long long)off,
                 (unsigned long long)(off + size), (unsigned long long)size);
    else
        rep_text(r, label, "[%llu, %llu), %llu bytes (%s)", (unsigned long long)off,
                 (unsigned long long)(off + size), (unsigned long long)size, human_size(size, h));
}

/* The FM_DURABLE journal beside the arena: the mode shows through it. */
static void report_journal(struct report *r, const char *file, uint64_t page)
{
    enum jnl_state st = JNL_NONE;
    struct jnl_record last;
    uint64_t nrec = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int err = fd < 0 ? errno : journal_state(file, fd, page, &st, &last, &nrec);
    if (fd >= 0)
        close(fd);
    static const char *const names[] = {"none", "empty", "invalid", "pending"};
    rep_str(r, "journal", NULL, err ? "unreadable" : names[st]);
    if (err)
        rep_text(r, "journal", "unreadable: %s", fm_strerror(err));
    else if (st == JNL_NONE)
        rep_text(r, "journal", "none (not open with FM_DURABLE, or closed cleanly)");
    else if (st == JNL_EMPTY)
        rep_text(r, "journal", "empty: no commit waits (an FM_DURABLE open may hold it)");
    else if (st == JNL_INVALID)
        rep_text(r, "journal", "invalid (torn, damaged or another arena's): never applied");
    else
        rep_text(r, "journal",
                 "%llu commits since the arena was last synced, the last commit %llu of its "
                 "open (%llu pages, file size %llu): an FM_DURABLE open holds them, or it "
                 "died and the next read-write open applies them",
                 (unsigned long long)nrec, (unsigned long long)last.jr_commit,
                 (unsigned long long)last.jr_npages, (unsigned long long)last.jr_file_size);
}

/* FM_SHARED: the block of a set of shared writers (format.md), read as it
 * is on disk; in text, only when there is one. */
static void report_shared(struct report *r, const char *file, uint64_t off, uint64_t real)
{
    rep_u64(r, "shared_block", NULL, off);
    if (!off || r->json)
        return;
    struct fmt_shared b;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    bool got = fd >= 0 && off <= real && real - off >= sizeof b &&
               pread(fd, &b, sizeof b, (off_t)off) == (ssize_t)sizeof b;
    if (fd >= 0)
        close(fd);
    if (!got || b.sh_magic != FMT_SHARED_MAGIC)
        rep_text(r, "shared writers", "lock block at %llu, unreadable or without its magic",
                 (unsigned long long)off);
    else
        rep_text(r, "shared writers",
                 "lock block at %llu: a set of FM_SHARED writers has the arena open, or all of "
                 "them died (last holder pid %llu, %llu dead holders repaired)",
                 (unsigned long long)off, (unsigned long long)(b.sh_holder >> 24),
                 (unsigned long long)b.sh_repairs);
}

int cmd_info(const struct tool_args *a)
{
    unsigned char hdr[FMT_HEADER_SIZE];
    uint64_t real = 0, page = (uint64_t)sysconf(_SC_PAGESIZE);
    int err = read_header(a->file, hdr, &real);
    if (err)
        return tool_fail(a, err, NULL);

    const struct fmt_superblock *sb = (const void *)hdr;
    bool dirty = sb->sb_state_flags & SB_DIRTY;
    uint64_t fsize = sb->sb_file_size, heap_off = sb->sb_heap_off, top = sb->sb_top;
    /* The state part is not trusted: a dirty arena may be mid-operation,
     * a damaged one anything.  Derived sizes are shown only when sane. */
    bool top_ok = top >= heap_off && top < fsize;
    char why[256] = "", idhex[33], when[40];
    int serr = fmt_check_state(hdr, real, page, why, sizeof why);
    for (int i = 0; i < 16; i++)
        snprintf(idhex + 2 * i, 3, "%02x", sb->sb_arena_id[i]);

    struct report r;
    rep_begin(&r, stdout, a->json);
    rep_str(&r, "file", "file", a->file);
    rep_u64(&r, "format_version", "format version", sb->sb_version);
    rep_str(&r, "arena_id", "arena id", idhex);
    rep_str(&r, "created", "created", iso8601(sb->sb_created_ns, when));
    rep_u64(&r, "created_ns", NULL, sb->sb_created_ns);
    rep_u64(&r, "page_size", "page size", sb->sb_page_size);
    rep_u64(&r, "header_size", NULL, sb->sb_header_size);
    rep_range(&r, "superblock", 0, sb->sb_header_size);
    rep_u64(&r, "root_offset", NULL, sb->sb_root_off);
    rep_u64(&r, "root_size", NULL, sb->sb_root_size);
    rep_range(&r, "root", sb->sb_root_off, sb->sb_root_size);
    rep_u64(&r, "heap_offset", NULL, heap_off);
    rep_u64(&r, "heap_size", NULL, fsize > heap_off ? fsize - heap_off : 0);
    if (fsize > heap_off)
        rep_range(&r, "heap", heap_off, fsize - heap_off);
    else
        rep_text(&r, "heap", "[%llu, ?): the recorded file size %llu is impossible",
                 (unsigned long long)heap_off, (unsigned long long)fsize);
    rep_u64(&r, "file_size_recorded", NULL, fsize);
    rep_u64(&r, "file_size_real", NULL, real);
    rep_text(&r, "file size", "%llu bytes recorded, %llu real%s", (unsigned long long)fsize,
             (unsigned long long)real,
             real < fsize   ? " (TRUNCATED: the file is shorter than its header says)"
             : real > fsize ? " (the tail past the recorded size is ignored; a read-write "
                              "open cuts it off)"
                            : "");
    rep_str(&r, "state", NULL, dirty ? "dirty" : "clean");
    rep_bool(&r, "dirty", NULL, dirty);
    rep_text(&r, "state", "%s",
             dirty ? "dirty (open read-write now, or its last writer did not close it: "
                     "the next open recovers it)"
                   : "clean (closed by its last writer)");
    rep_u64(&r, "generation", "generation", sb->sb_generation);
    rep_u64(&r, "log_records", NULL, sb->sb_log_count);
    rep_text(&r, "log records", "%llu pending%s", (unsigned long long)sb->sb_log_count,
             sb->sb_log_count ? " (an operation was in flight: recovery rolls it back)" : "");
    report_journal(&r, a->file, page);
    report_shared(&r, a->file, sb->sb_shared, real);
    rep_u64(&r, "top_offset", NULL, top);
    if (r.json) {
        if (top_ok)
            fprintf(rep_key(&r, "top_size"), "%llu", (unsigned long long)(fsize - top));
        else
            fputs("null", rep_key(&r, "top_size"));
    } else if (top_ok) {
        rep_range(&r, "top", top, fsize - top);
    } else {
        rep_text(&r, "top", "offset %llu (outside the heap)", (unsigned long long)top);
    }
    const char *sum = "not kept while dirty";
    if (!dirty)
        sum = sb->sb_state_checksum == fmt_state_checksum(sb) ? "ok" : "mismatch";
    rep_str(&r, "state_checksum", "state checksum", sum);
    if (r.json) {
        fputs(serr ? "false" : "true", rep_key(&r, "state_ok"));
        if (serr) {
            json_string(rep_key(&r, "state_error"), fm_strerror(serr));
            json_string(rep_key(&r, "state_reason"), why);
        } else {
            fputs("null", rep_key(&r, "state_error"));
            fputs("null", rep_key(&r, "state_reason"));
        }
    } else if (serr) {
        rep_text(&r, "state check", "FAILED: %s%s%s", fm_strerror(serr), why[0] ? ": " : "", why);
    } else {
        rep_text(&r, "state check", "ok%s",
                 dirty ? " (as far as the header shows; the heap is checked by recovery)" : "");
    }
    rep_end(&r);
    return EXIT_CLEAN;
}

/* ---- stats --------------------------------------------------------------------- */

#define NCLASSES 64 /* size class k holds chunk sizes in [2^k, 2^(k+1)) */

struct histogram {
    uint64_t count[NCLASSES][2]; /* [class][0 allocated, 1 free] */
    uint64_t bytes[NCLASSES][2];
};

static unsigned size_class(uint64_t size)
{
    unsigned k = 0;
    while (k + 1 < NCLASSES && size >> (k + 1))
        k++;
    return k;
}

static int histogram_add(const struct chunk *c, void *arg)
{
    struct histogram *h = arg;
    if (c->kind == CHUNK_TOP) /* the wilderness is reported on its own */
        return 0;
    unsigned k = size_class(c->size), j = c->kind == CHUNK_FREE;
    h->count[k][j]++;
    h->bytes[k][j] += c->size;
    return 0;
}

/* "512", "4K", "16M": a power of two, short, for the class column. */
static const char *pow2_label(unsigned k, char buf[24])
{
    static const char units[] = " KMGTPE";
    unsigned u = 0;
    while (k >= 10 && u + 1 < sizeof units - 1)
        k -= 10, u++;
    if (u)
        snprintf(buf, 24, "%llu%c", 1ull << k, units[u]);
    else
        snprintf(buf, 24, "%llu", 1ull << k);
    return buf;
}

static void print_histogram(struct report *r, const struct histogram *h)
{
    char lo[24], hi[24], cls[56];
    if (r->json) {
        FILE *f = rep_key(r, "size_classes");
        bool first = true;
        fputs("[", f);
        for (unsigned k = 0; k < NCLASSES; k++) {
            if (!h->count[k][0] && !h->count[k][1])
                continue;
            fprintf(f,
                    "%s\n    {\"min\": %llu, \"max\": %llu, \"allocated_count\": %llu, "
                    "\"allocated_bytes\": %llu, \"free_count\": %llu, \"free_bytes\": %llu}",
                    first ? "" : ",", 1ull << k, k + 1 < 64 ? 1ull << (k + 1) : 0,
                    (unsigned long long)h->count[k][0], (unsigned long long)h->bytes[k][0],
                    (unsigned long long)h->count[k][1], (unsigned long long)h->bytes[k][1]);
            first = false;
        }
        fputs(first ? "]" : "\n  ]", f);
        return;
    }
    printf("\nsize classes (chunk sizes, headers included; the top is not counted):\n");
    printf("  %-14s %12s %16s %12s %16s\n", "chunk size", "allocated", "bytes", "free", "bytes");
    for (unsigned k = 0; k < NCLASSES; k++) {
        if (!h->count[k][0] && !h->count[k][1])
            continue;
        snprintf(cls, sizeof cls, "[%s, %s)", pow2_label(k, lo), pow2_label(k + 1, hi));
        printf("  %-14s %12llu %16llu %12llu %16llu\n", cls, (unsigned long long)h->count[k][0],
               (unsigned long long)h->bytes[k][0], (unsigned long long)h->count[k][1],
               (unsigned long long)h->bytes[k][1]);
    }
}

int cmd_stats(const struct tool_args *a)
{
    struct fm_info *fi;
    struct fm_stats st;
    struct histogram hist;
    char h1[64];
    int rc = tool_open(a, &fi);
    if (rc)
        return rc;
    struct stat fst;
    uint64_t disk = stat(a->file, &fst) == 0 ? (uint64_t)fst.st_blocks * 512 : 0;
    int err = fm_stats(fi, &st);
    if (err == FM_ECORRUPT) {
        rc = tool_corrupt(a, "corrupt", fm_check_message(fi));
        fm_close(fi);
        return rc;
    }
    memset(&hist, 0, sizeof hist);
    if (!err)
        err = tool_walk_chunks(fi, histogram_add, &hist);
    if (err) { /* ENOMEM from fm_stats, or a walk that disagrees with the check */
        rc = err == FM_ECORRUPT ? tool_corrupt(a, "corrupt", "the chunk walk found a damaged chunk")
                                : tool_fail(a, err, NULL);
        fm_close(fi);
        return rc;
    }
    fm_close(fi);

    uint64_t free_chunks_bytes = st.free_bytes - st.top_size;
    uint64_t free_chunks = st.free_blocks ? st.free_blocks - 1 : 0;
    struct report r;
    rep_begin(&r, stdout, a->json);
    rep_str(&r, "file", "file", a->file);
    rep_bool(&r, "recovered", NULL, st.recovered);
    rep_text(&r, "recovered", "%s",
             st.recovered ? "yes (a crashed writer's last operation was rolled back in a "
                            "private view; the file is unchanged)"
                          : "no");
    rep_u64(&r, "generation", "generation", st.generation);
    rep_size(&r, "file_size", "file size", st.file_size);
    rep_size(&r, "heap_size", "heap size", st.heap_size);
    rep_u64(&r, "allocated_bytes", NULL, st.allocated_bytes);
    rep_u64(&r, "allocated_count", NULL, st.allocated_count);
    rep_text(&r, "allocated", "%s in %llu blocks", bytes_words(st.allocated_bytes, h1),
             (unsigned long long)st.allocated_count);
    rep_u64(&r, "free_bytes", NULL, st.free_bytes);
    rep_u64(&r, "free_blocks", NULL, st.free_blocks);
    rep_text(&r, "free", "%s in %llu chunks, top included", bytes_words(st.free_bytes, h1),
             (unsigned long long)st.free_blocks);
    rep_u64(&r, "free_bytes_outside_top", NULL, free_chunks_bytes);
    rep_u64(&r, "free_blocks_outside_top", NULL, free_chunks);
    rep_text(&r, "free outside top", "%s in %llu chunks", bytes_words(free_chunks_bytes, h1),
             (unsigned long long)free_chunks);
    rep_size(&r, "largest_free", "largest free", st.largest_free);
    rep_size(&r, "top_size", "top", st.top_size);
    rep_u64(&r, "punched_bytes", NULL, st.punched_bytes);
    rep_text(&r, "punched", "%s in free chunks whose pages went back to the file system",
             bytes_words(st.punched_bytes, h1));
    rep_u64(&r, "disk_bytes", NULL, disk);
    rep_text(&r, "on disk", "%s in file system blocks", bytes_words(disk, h1));
    rep_real(&r, "fragmentation", "fragmentation",
             st.free_bytes ? 1.0 - (double)st.largest_free / (double)st.free_bytes : 0.0, true,
             "(1 - largest free / free bytes)");
    rep_real(&r, "file_per_allocated", "file / allocated",
             st.allocated_bytes ? (double)st.file_size / (double)st.allocated_bytes : 0.0,
             st.allocated_bytes != 0, "(file size / allocated bytes)");
    print_histogram(&r, &hist);
    rep_end(&r);
    return EXIT_CLEAN;
}

/* ---- check --------------------------------------------------------------------- */

int cmd_check(const struct tool_args *a)
{
    struct fm_info *fi;
    struct fm_stats st;
    int rc = tool_open_checked(a, "corrupt", &fi);
    if (rc)
        return rc;
    /* Clean: the figures come from the same walk, run again. */
    int err = fm_stats(fi, &st);
    fm_close(fi);
    if (err)
        return tool_fail(a, err, NULL);
    struct report r;
    rep_begin(&r, stdout, a->json);
    if (a->json) {
        rep_str(&r, "file", NULL, a->file);
        rep_str(&r, "status", NULL, "clean");
        rep_bool(&r, "recovered", NULL, st.recovered);
        rep_u64(&r, "allocated_bytes", NULL, st.allocated_bytes);
        rep_u64(&r, "allocated_count", NULL, st.allocated_count);
        rep_u64(&r, "free_bytes", NULL, st.free_bytes);
        rep_u64(&r, "free_blocks", NULL, st.free_blocks);
        rep_u64(&r, "file_size", NULL, st.file_size);
    } else {
        printf("%s: clean: %llu blocks allocated (%llu bytes), %llu free chunks (%llu bytes, "
               "top included), file size %llu\n",
               a->file, (unsigned long long)st.allocated_count,
               (unsigned long long)st.allocated_bytes, (unsigned long long)st.free_blocks,
               (unsigned long long)st.free_bytes, (unsigned long long)st.file_size);
        if (st.recovered)
            printf("%s: note: the arena was dirty; the check ran on the recovered heap "
                   "(in a private view: the file is unchanged until its next read-write "
                   "open)\n",
                   a->file);
    }
    rep_end(&r);
    return EXIT_CLEAN;
}
