/*
 * power_record.c -- the os trace hook's listener: records what a power cut
 * could leave on disk (power_record.h says what each record means).
 *
 * One recording at a time (the hook is process-wide).  Invariant: the copy
 * of each mapped page (map.seen) is what the last look saw there, so a page
 * that differs from it is a new version the kernel could write back.
 */
#include "power_record.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os.h"

enum { PAGE = 4096, MAX_FD = 1024, MAX_MAPS = 64 };

/* A shared, writable mapping of [off, off+len) of a file at addr. */
struct map {
    unsigned char *addr;
    uint64_t len, off;
    int file;
    unsigned char *seen;
};

static struct {
    struct record *r;
    int fd_file[MAX_FD]; /* file index + 1; 0: not a file we know */
    uint64_t size[REC_MAX_FILES]; /* each file's size now (no page beyond it is read) */
    struct map maps[MAX_MAPS];
    int nmaps;
} rs;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "power_record: out of memory\n");
        abort();
    }
    return p;
}

static struct rec *rec_add(struct record *r, enum rec_kind kind, int file, uint64_t off,
                           uint64_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4096;
        struct rec *grown = realloc(r->recs, r->cap * sizeof *grown);
        if (!grown) {
            fprintf(stderr, "power_record: out of memory\n");
            abort();
        }
        r->recs = grown;
    }
    struct rec *e = &r->recs[r->n++];
    *e = (struct rec){.kind = kind, .file = file, .off = off, .len = len};
    return e;
}

static void rec_write(struct record *r, int file, uint64_t off, const void *data, uint64_t len,
                      bool from_map)
{
    struct rec *e = rec_add(r, REC_WRITE, file, off, len);
    e->from_map = from_map;
    e->data = xmalloc((size_t)len);
    memcpy(e->data, data, (size_t)len);
    r->bytes_kept += len;
    r->page_writes += from_map;
}

/* ---- mappings ------------------------------------------------------------ */

/* Every page of every mapping (inside its file) that changed since the
 * last look becomes a WRITE of its new version. */
static void maps_look(struct record *r)
{
    for (int i = 0; i < rs.nmaps; i++) {
        struct map *m = &rs.maps[i];
        uint64_t fsize = rs.size[m->file];
        uint64_t end = fsize > m->off ? fsize - m->off : 0;
        if (end > m->len)
            end = m->len;
        for (uint64_t p = 0; p + PAGE <= end; p += PAGE)
            if (memcmp(m->addr + p, m->seen + p, PAGE) != 0) {
                memcpy(m->seen + p, m->addr + p, PAGE);
                rec_write(r, m->file, m->off + p, m->addr + p, PAGE, true);
            }
    }
}

/* A new mapping; `seen` is what we last saw there, or NULL: look now. */
static void map_add(unsigned char *addr, uint64_t len, int file, uint64_t off,
                    const unsigned char *seen)
{
    if (rs.nmaps == MAX_MAPS) {
        fprintf(stderr, "power_record: more than %d mappings\n", MAX_MAPS);
        abort();
    }
    struct map *m = &rs.maps[rs.nmaps++];
    *m = (struct map){.addr = addr, .len = len, .off = off, .file = file};
    m->seen = xmalloc((size_t)len);
    if (seen) {
        memcpy(m->seen, seen, (size_t)len);
        return;
    }
    /* Pages beyond the file cannot be read (SIGBUS); they are zero to us. */
    uint64_t fsize = rs.size[file], inside = fsize > off ? fsize - off : 0;
    inside = inside < len ? inside / PAGE * PAGE : len;
    memcpy(m->seen, addr, (size_t)inside);
    memset(m->seen + inside, 0, (size_t)(len - inside));
}

/* Forget [addr, addr+len) of every mapping: keep the pieces on either side. */
static void maps_cut(unsigned char *addr, uint64_t len)
{
    for (int i = 0; i < rs.nmaps; i++) {
        struct map m = rs.maps[i];
        unsigned char *lo = addr > m.addr ? addr : m.addr;
        unsigned char *hi = addr + len < m.addr + m.len ? addr + len : m.addr + m.len;
        if (lo >= hi)
            continue;
        rs.maps[i] = rs.maps[--rs.nmaps];
        i--;
        if (lo > m.addr) { /* the piece before */
            map_add(m.addr, (uint64_t)(lo - m.addr), m.file, m.off, m.seen);
        }
        if (hi < m.addr + m.len) { /* the piece after */
            uint64_t skip = (uint64_t)(hi - m.addr);
            map_add(hi, m.len - skip, m.file, m.off + skip, m.seen + skip);
        }
        free(m.seen);
        /* Pieces were appended past i: they do not overlap the cut range. */
    }
}

/* The file's pages in [off, off+len) now read zero: so do our copies, or
 * the next look would take the punch for a page write. */
static void maps_zero(int file, uint64_t off, uint64_t len)
{
    for (int i = 0; i < rs.nmaps; i++) {
        struct map *m = &rs.maps[i];
        uint64_t lo = off > m->off ? off : m->off;
        uint64_t hi = off + len < m->off + m->len ? off + len : m->off + m->len;
        if (m->file == file && lo < hi)
            memset(m->seen + (lo - m->off), 0, (size_t)(hi - lo));
    }
}

/* ---- the hook ------------------------------------------------------------ */

static int file_of_fd(int fd)
{
    return fd >= 0 && fd < MAX_FD ? rs.fd_file[fd] - 1 : -1;
}

static int file_open(struct record *r, const char *path, int fd)
{
    int f = rec_file(r, path);
    if (f < 0) {
        if (r->nfiles == REC_MAX_FILES) {
            fprintf(stderr, "power_record: more than %d files\n", REC_MAX_FILES);
            abort();
        }
        f = r->nfiles++;
        r->paths[f] = strdup(path);
        /* A file that existed before the recording: its bytes then are
         * durable (the simulator starts from them). */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > 0) {
            unsigned char *buf = xmalloc((size_t)st.st_size);
            if (pread(fd, buf, (size_t)st.st_size, 0) == st.st_size) {
                rec_write(r, f, 0, buf, (uint64_t)st.st_size, false);
                rec_add(r, REC_SYNC, f, 0, 0);
            }
            free(buf);
        }
        rs.size[f] = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    }
    if (fd >= 0 && fd < MAX_FD)
        rs.fd_file[fd] = f + 1;
    return f;
}

static void size_at_least(int f, uint64_t end)
{
    if (end > rs.size[f])
        rs.size[f] = end;
}

/* A call that changed or synced file f. */
static void on_file_change(struct record *r, const struct os_trace_event *ev, int f)
{
    switch (ev->op) {
    case OS_TRACE_PWRITE:
        rec_write(r, f, ev->off, ev->data, ev->len, false);
        size_at_least(f, ev->off + ev->len);
        break;
    case OS_TRACE_TRUNCATE:
        rec_add(r, REC_SIZE, f, ev->off, 0);
        rs.size[f] = ev->off;
        break;
    case OS_TRACE_ALLOCATE:
        rec_add(r, REC_EXTEND, f, ev->off + ev->len, 0);
        size_at_least(f, ev->off + ev->len);
        break;
    case OS_TRACE_PUNCH:
        rec_add(r, REC_PUNCH, f, ev->off, ev->len);
        maps_zero(f, ev->off, ev->len);
        break;
    default: /* OS_TRACE_FDATASYNC */
        rec_add(r, REC_SYNC, f, 0, 0);
        break;
    }
}

static void on_event(const struct os_trace_event *ev, void *ctx)
{
    struct record *r = ctx;
    int f = file_of_fd(ev->fd);
    /* After a shrink the pages past the end are gone (reading them would
     * fault): the look below must not go there. */
    if (ev->op == OS_TRACE_TRUNCATE && f >= 0 && ev->off < rs.size[f])
        rs.size[f] = ev->off;
    maps_look(r);
    switch (ev->op) {
    case OS_TRACE_OPEN:
        file_open(r, ev->path, ev->fd);
        break;
    case OS_TRACE_CLOSE:
        if (f >= 0)
            rs.fd_file[ev->fd] = 0;
        break;
    case OS_TRACE_UNLINK: /* no scenario unlinks its arena; nothing to model */
    case OS_TRACE_DIRSYNC:
        break;
    case OS_TRACE_PWRITE:
    case OS_TRACE_TRUNCATE:
    case OS_TRACE_ALLOCATE:
    case OS_TRACE_PUNCH:
    case OS_TRACE_FDATASYNC:
        if (f >= 0)
            on_file_change(r, ev, f);
        break;
    case OS_TRACE_MSYNC:
        for (int i = 0; i < rs.nmaps; i++) {
            struct map *m = &rs.maps[i];
            unsigned char *a = ev->addr;
            unsigned char *lo = a > m->addr ? a : m->addr;
            unsigned char *hi = a + ev->len < m->addr + m->len ? a + ev->len : m->addr + m->len;
            if (lo < hi)
                rec_add(r, REC_MSYNC, m->file, m->off + (uint64_t)(lo - m->addr),
                        (uint64_t)(hi - lo));
        }
        break;
    case OS_TRACE_MAP:
        maps_cut(ev->addr, ev->len); /* MAP_FIXED replaces what was there */
        /* Private views and read-only maps never write to the file. */
        if (f >= 0 && !ev->priv && !ev->rdonly)
            map_add(ev->addr, ev->len, f, ev->off, NULL);
        break;
    case OS_TRACE_UNMAP:
        maps_cut(ev->addr, ev->len);
        break;
    }
    rec_add(r, REC_POINT, -1, 0, 0);
}

/* ---- the interface -------------------------------------------------------- */

int rec_file(const struct record *r, const char *path)
{
    for (int i = 0; i < r->nfiles; i++)
        if (strcmp(r->paths[i], path) == 0)
            return i;
    return -1;
}

void rec_start(struct record *r)
{
    memset(r, 0, sizeof *r);
    memset(&rs, 0, sizeof rs);
    rs.r = r;
    os_trace_set(on_event, r);
}

void rec_tick(struct record *r)
{
    maps_look(r);
    rec_add(r, REC_POINT, -1, 0, 0);
}

void rec_arm(struct record *r)
{
    r->first_point = r->n;
}

void rec_stop(struct record *r)
{
    (void)r;
    os_trace_set(NULL, NULL);
    for (int i = 0; i < rs.nmaps; i++)
        free(rs.maps[i].seen);
    rs.nmaps = 0;
}

void rec_free(struct record *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->recs[i].data);
    free(r->recs);
    for (int i = 0; i < r->nfiles; i++)
        free(r->paths[i]);
    memset(r, 0, sizeof *r);
}
