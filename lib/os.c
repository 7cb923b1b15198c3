/*
 * os.c -- system calls, each behind a function that returns 0 or an errno.
 *
 * Layer: lowest.  Owns no invariants of its own; it only makes sure that a
 * failed call reports why, and that the test hooks can fail the calls that
 * matter for crash and disk-full behaviour.
 */
#include "fm_config.h"
#if FM_HAVE_FALLOCATE || FM_HAVE_PUNCH_HOLE || FM_HAVE_SEEK_DATA || FM_HAVE_OFD_LOCKS
#define _GNU_SOURCE /* fallocate(2), FALLOC_FL_*, SEEK_DATA/SEEK_HOLE, F_OFD_* are extensions */
#endif
#include "os.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#if FM_HAVE_GETRANDOM
#include <sys/random.h>
#endif
#if FM_HAVE_PUNCH_HOLE
#include <linux/falloc.h>
#endif
#if FM_HAVE_MEMBARRIER
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif

/* ---- fault injection (tests only) ------------------------------------- */

#if FM_TEST_HOOKS

static struct {
    int err;
    int skip;
    int times;
} fault[OS_FAULT_NOPS];

void os_fault_set_times(enum os_fault_op op, int err, int skip, int times)
{
    fault[op].err = err;
    fault[op].skip = skip;
    fault[op].times = times;
}

void os_fault_set(enum os_fault_op op, int err, int skip)
{
    os_fault_set_times(op, err, skip, 1);
}

static int fault_take(enum os_fault_op op)
{
    if (!fault[op].err)
        return 0;
    if (fault[op].skip > 0) {
        fault[op].skip--;
        return 0;
    }
    int err = fault[op].err;
    if (--fault[op].times <= 0)
        fault[op].err = 0;
    return err;
}

/* ---- tracing (tests only) ---------------------------------------------- */

static void (*os_trace_fn)(const struct os_trace_event *, void *);
static void *os_trace_ctx;
bool os_break_ordering;

void os_trace_set(void (*fn)(const struct os_trace_event *ev, void *ctx), void *ctx)
{
    os_trace_fn = fn;
    os_trace_ctx = ctx;
}

/* One event; the fields a kind of event does not use stay zero. */
#define TRACE(...)                                                         \
    do {                                                                   \
        if (os_trace_fn)                                                   \
            os_trace_fn(&(struct os_trace_event){__VA_ARGS__}, os_trace_ctx); \
    } while (0)
#else
#define fault_take(op) ((void)(op), 0)
#define TRACE(...) ((void)0)
#endif

/* ---- files ------------------------------------------------------------- */

int os_open(const char *path, bool rdonly, bool create_excl, mode_t mode, int *fd)
{
    int flags = (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
    if (create_excl)
        flags |= O_CREAT | O_EXCL;
    int f = open(path, flags, mode);
    if (f < 0)
        return errno;
    /* O_NONBLOCK only kept open() from hanging on a FIFO; drop it. */
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0)
        (void)fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    TRACE(.op = OS_TRACE_OPEN, .fd = f, .path = path);
    return 0;
}

int os_close(int fd)
{
    if (close(fd) != 0)
        return errno;
    TRACE(.op = OS_TRACE_CLOSE, .fd = fd);
    return 0;
}

int os_unlink(const char *path)
{
    if (unlink(path) != 0)
        return errno;
    TRACE(.op = OS_TRACE_UNLINK, .path = path);
    return 0;
}

int os_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        dir[0] = '.', dir[1] = 0;
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir)
            return ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    if (!err)
        TRACE(.op = OS_TRACE_DIRSYNC, .path = path);
    return err;
}

int os_file_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return errno;
    if (S_ISDIR(st.st_mode))
        return EISDIR;
    if (!S_ISREG(st.st_mode))
        return ENODEV;
    *size = (uint64_t)st.st_size;
    return 0;
}

int os_same_file(const char *path, int fd)
{
    struct stat by_path, by_fd;
    if (fstat(fd, &by_fd) != 0)
        return errno;
    if (stat(path, &by_path) != 0)
        return errno == ENOENT ? ESTALE : errno;
    return by_path.st_dev == by_fd.st_dev && by_path.st_ino == by_fd.st_ino ? 0 : ESTALE;
}

int os_lock(int fd, bool exclusive)
{
    int r;
    do
        r = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : errno;
}

void os_unlock(int fd)
{
    (void)flock(fd, LOCK_UN);
}

#if FM_HAVE_OFD_LOCKS
static struct flock mark_at(uint64_t off, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl); /* l_pid must be 0 for the OFD commands */
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)off;
    fl.l_len = 1;
    return fl;
}

int os_mark_set(int fd, uint64_t off, bool exclusive, bool wait)
{
    struct flock fl = mark_at(off, exclusive ? F_WRLCK : F_RDLCK);
    int r;
    do
        r = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
    while (r != 0 && errno == EINTR);
    if (r == 0)
        return 0;
    return errno == EACCES || errno == EAGAIN ? EWOULDBLOCK : errno;
}

void os_mark_clear(int fd, uint64_t off)
{
    struct flock fl = mark_at(off, F_UNLCK);
    (void)fcntl(fd, F_OFD_SETLK, &fl);
}

int os_mark_held(int fd, uint64_t off, bool *held)
{
    struct flock fl = mark_at(off, F_WRLCK); /* conflicts with any other mark */
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return errno;
    *held = fl.l_type != F_UNLCK;
    return 0;
}
#else
int os_mark_set(int fd, uint64_t off, bool exclusive, bool wait)
{
    (void)fd, (void)off, (void)exclusive, (void)wait;
    return ENOTSUP;
}

void os_mark_clear(int fd, uint64_t off)
{
    (void)fd, (void)off;
}

int os_mark_held(int fd, uint64_t off, bool *held)
{
    (void)fd, (void)off;
    *held = false;
    return ENOTSUP;
}
#endif

/* Reads into rbuf, or writes wbuf when rbuf is NULL, all len bytes at off:
 * the one loop both calls need (EINTR retried, short transfers resumed). */
static int transfer_all(int fd, char *rbuf, const char *wbuf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = rbuf ? pread(fd, rbuf + done, len - done, (off_t)(off + done))
                         : pwrite(fd, wbuf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0 && rbuf)
            return EIO; /* short file: callers check sizes first */
        done += (size_t)n;
    }
    return 0;
}

int os_pread(int fd, void *buf, size_t len, uint64_t off)
{
    return transfer_all(fd, buf, NULL, len, off);
}

int os_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    int err = transfer_all(fd, NULL, buf, len, off);
    if (err)
        return err;
    TRACE(.op = OS_TRACE_PWRITE, .fd = fd, .off = off, .len = len, .data = buf);
    return 0;
}

int os_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    ssize_t n;
    do
        n = pwritev(fd, iov, cnt, (off_t)off);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno;
    /* What a short write left, a buffer at a time. */
    uint64_t at = off;
    for (int i = 0; i < cnt; i++) {
        size_t len = iov[i].iov_len, done = (size_t)n < len ? (size_t)n : len;
        n -= (ssize_t)done;
        if (done < len) {
            int err = transfer_all(fd, NULL, (const char *)iov[i].iov_base + done, len - done,
                                   at + done);
            if (err)
                return err;
        }
        TRACE(.op = OS_TRACE_PWRITE, .fd = fd, .off = at, .len = len, .data = iov[i].iov_base);
        at += len;
    }
    return 0;
}

int os_truncate(int fd, uint64_t size)
{
    int err = fault_take(OS_FAULT_TRUNCATE);
    if (err)
        return err;
    int r;
    do
        r = ftruncate(fd, (off_t)size);
    while (r != 0 && errno == EINTR);
    if (r != 0)
        return errno;
    TRACE(.op = OS_TRACE_TRUNCATE, .fd = fd, .off = size);
    return 0;
}

int os_allocate(int fd, uint64_t off, uint64_t len)
{
    int err = fault_take(OS_FAULT_ALLOCATE);
    if (err)
        return err;
#if FM_HAVE_FALLOCATE
    int r;
    do
        r = fallocate(fd, 0, (off_t)off, (off_t)len);
    while (r != 0 && errno == EINTR);
    if (r != 0 && errno != EOPNOTSUPP)
        return errno;
    /* r != 0: tmpfs and friends without fallocate: fall through */
    err = r == 0 ? 0 : posix_fallocate(fd, (off_t)off, (off_t)len);
#else
    err = posix_fallocate(fd, (off_t)off, (off_t)len);
#endif
    /* A file system that cannot preallocate at all: accept the risk. */
    if (err && err != EOPNOTSUPP && err != EINVAL)
        return err;
    TRACE(.op = OS_TRACE_ALLOCATE, .fd = fd, .off = off, .len = len);
    return 0;
}

int os_punch_hole(int fd, uint64_t off, uint64_t len)
{
#if FM_HAVE_PUNCH_HOLE && FM_HAVE_FALLOCATE
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) != 0)
        return errno;
    TRACE(.op = OS_TRACE_PUNCH, .fd = fd, .off = off, .len = len);
    return 0;
#else
    (void)fd, (void)off, (void)len;
    return EOPNOTSUPP;
#endif
}

/* lseek(SEEK_DATA / SEEK_HOLE) with "nothing there" mapped to `end`.  A
 * file system without them (EINVAL) is one data extent, as POSIX allows. */
#if !FM_HAVE_SEEK_DATA
#define SEEK_DATA 3
#define SEEK_HOLE 4
#endif

static int seek_extent(int fd, uint64_t off, uint64_t end, int whence, uint64_t *out)
{
#if FM_HAVE_SEEK_DATA
    off_t r = lseek(fd, (off_t)off, whence);
#else
    off_t r = (errno = EINVAL, -1);
#endif
    if (r >= 0) {
        *out = (uint64_t)r < end ? (uint64_t)r : end;
        return 0;
    }
    if (errno == ENXIO) {
        *out = end;
        return 0;
    }
    if (errno != EINVAL)
        return errno;
    *out = whence == SEEK_DATA ? off : end;
    return 0;
}

int os_next_hole(int fd, uint64_t off, uint64_t end, uint64_t *hole, uint64_t *hole_end)
{
    int err = seek_extent(fd, off, end, SEEK_HOLE, hole);
    if (!err)
        err = *hole < end ? seek_extent(fd, *hole, end, SEEK_DATA, hole_end) : 0;
    if (!err && *hole >= end)
        *hole_end = end;
    return err;
}

int os_is_zero(int fd, uint64_t off, uint64_t end, bool *zero)
{
    enum { BUF = 1 << 16 };
    *zero = true;
    unsigned char *buf = malloc(BUF);
    if (!buf)
        return ENOMEM;
    int err = 0;
    while (off < end && *zero && !err) {
        uint64_t data = end;
        if ((err = seek_extent(fd, off, end, SEEK_DATA, &data)) || data >= end)
            break;
        uint64_t n = end - data < BUF ? end - data : BUF;
        if ((err = os_pread(fd, buf, (size_t)n, data)))
            break;
        for (uint64_t i = 0; i < n && *zero; i++)
            *zero = buf[i] == 0;
        off = data + n;
    }
    free(buf);
    return err;
}

int os_fdatasync(int fd)
{
    int err = fault_take(OS_FAULT_FSYNC);
    if (err)
        return err;
    if (fdatasync(fd) != 0)
        return errno;
    TRACE(.op = OS_TRACE_FDATASYNC, .fd = fd);
    return 0;
}

/* ---- mappings ---------------------------------------------------------- */

int os_reserve(uint64_t len, void **base)
{
    void *p = mmap(NULL, (size_t)len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return errno;
    *base = p;
    return 0;
}

int os_map_file(void *addr, uint64_t len, int fd, uint64_t off, bool rdonly, bool priv)
{
    int err = fault_take(OS_FAULT_MAP);
    if (err)
        return err;
    int prot = rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
    int flags = (priv ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED;
    void *p = mmap(addr, (size_t)len, prot, flags, fd, (off_t)off);
    if (p == MAP_FAILED)
        return errno;
    TRACE(.op = OS_TRACE_MAP, .addr = addr, .len = len, .fd = fd, .off = off, .priv = priv,
          .rdonly = rdonly);
    return 0;
}

int os_protect_read(void *addr, uint64_t len)
{
    /* The mapping stays what it was (shared or private): nothing to trace. */
    return mprotect(addr, (size_t)len, PROT_READ) == 0 ? 0 : errno;
}

int os_map_private(int fd, uint64_t len, void **out)
{
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return errno;
    *out = p;
    TRACE(.op = OS_TRACE_MAP, .addr = p, .len = len, .fd = fd, .priv = true);
    return 0;
}

int os_unmap_to_reserve(void *addr, uint64_t len)
{
    TRACE(.op = OS_TRACE_UNMAP, .addr = addr, .len = len);
    void *p = mmap(addr, (size_t)len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return p == MAP_FAILED ? errno : 0;
}

int os_alloc_zeroed(size_t len, void **out)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    *out = p;
    return 0;
}

int os_unmap(void *addr, uint64_t len)
{
    TRACE(.op = OS_TRACE_UNMAP, .addr = addr, .len = len);
    return munmap(addr, (size_t)len) == 0 ? 0 : errno;
}

int os_msync(void *addr, uint64_t len)
{
    int err = fault_take(OS_FAULT_MSYNC);
    if (err)
        return err;
    if (msync(addr, (size_t)len, MS_SYNC) != 0)
        return errno;
    TRACE(.op = OS_TRACE_MSYNC, .addr = addr, .len = len);
    return 0;
}

/* ---- written pages of a private mapping ---------------------------------- */

/* Page offsets, growing as they are found. */
struct offsets {
    uint64_t *v;
    size_t n, cap;
};

static int offsets_add(struct offsets *o, uint64_t off)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 256;
        uint64_t *v = realloc(o->v, cap * sizeof *v);
        if (!v)
            return ENOMEM;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = off;
    return 0;
}

#ifdef __linux__
/* PAGEMAP_SCAN (Linux 6.7), declared here: older kernel headers lack it. */
struct scan_region {
    uint64_t start, end, categories;
};
struct scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define SCAN_IOCTL _IOWR('f', 16, struct scan_arg)
#define SCAN_IS_FILE (1u << 2)
#define SCAN_IS_PRESENT (1u << 3)
#define SCAN_IS_SWAPPED (1u << 4)

/* A page written in a private file mapping is an anonymous copy: present
 * or swapped out, and not a page of the file.  One call per run of such
 * pages, so the cost follows what was written, not the mapping's size. */
static int scan_ioctl(int pm, uintptr_t a, uint64_t len, uint64_t page, struct offsets *o)
{
    enum { NREGIONS = 128 };
    struct scan_region vec[NREGIONS];
    uint64_t at = a, end = a + len;
    while (at < end) {
        memset(vec, 0, sizeof vec); /* tools that do not know the ioctl see it defined */
        struct scan_arg arg = {
            .size = sizeof arg, .start = at, .end = end,
            .vec = (uintptr_t)vec, .vec_len = NREGIONS,
            .category_inverted = SCAN_IS_FILE, .category_mask = SCAN_IS_FILE,
            .category_anyof_mask = SCAN_IS_PRESENT | SCAN_IS_SWAPPED,
            .return_mask = SCAN_IS_PRESENT | SCAN_IS_SWAPPED,
        };
        int got = ioctl(pm, SCAN_IOCTL, &arg);
        if (got < 0)
            return errno;
        for (int i = 0; i < got; i++)
            for (uint64_t p = vec[i].start; p < vec[i].end; p += page)
                if (offsets_add(o, p - a))
                    return ENOMEM;
        if (arg.walk_end <= at)
            return EIO; /* no progress: never loop forever */
        at = arg.walk_end;
    }
    return 0;
}

/* The older interface: 8 bytes per page of the range, bit 63 present,
 * 62 swapped, 61 a page of a file (or shared). */
static int scan_pagemap(int pm, uintptr_t a, uint64_t len, uint64_t page, struct offsets *o)
{
    enum { CHUNK = 512 };
    uint64_t ent[CHUNK], pages = len / page;
    for (uint64_t i = 0; i < pages; i += CHUNK) {
        size_t k = pages - i < CHUNK ? (size_t)(pages - i) : CHUNK;
        int err = os_pread(pm, ent, k * sizeof *ent, (a / page + i) * sizeof *ent);
        if (err)
            return err;
        for (size_t j = 0; j < k; j++) {
            bool mine = (ent[j] >> 63 & 1) || (ent[j] >> 62 & 1);
            if (mine && !(ent[j] >> 61 & 1) && offsets_add(o, (i + j) * page))
                return ENOMEM;
        }
    }
    return 0;
}
#endif

int os_pagemap_open(int *fd)
{
#ifdef __linux__
    *fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    return *fd < 0 ? errno : 0;
#else
    *fd = -1;
    return ENOSYS;
#endif
}

int os_written_pages(int pm, void *addr, uint64_t len, uint64_t page, uint64_t **out, size_t *n)
{
#ifdef __linux__
    struct offsets o = {0};
    int err = scan_ioctl(pm, (uintptr_t)addr, len, page, &o);
    if (err == ENOTTY || err == EINVAL || err == ENOSYS) {
        o.n = 0;
        err = scan_pagemap(pm, (uintptr_t)addr, len, page, &o);
    }
    if (err) {
        free(o.v);
        return err;
    }
    *out = o.v;
    *n = o.n;
    return 0;
#else
    (void)pm, (void)addr, (void)len, (void)page, (void)out, (void)n;
    return ENOSYS;
#endif
}

int os_discard(void *addr, uint64_t len)
{
    return madvise(addr, (size_t)len, MADV_DONTNEED) == 0 ? 0 : errno;
}

/* ---- odds and ends ----------------------------------------------------- */

uint64_t os_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (uint64_t)p : 4096;
}

void os_random(void *buf, size_t len)
{
#if FM_HAVE_GETRANDOM
    if (getrandom(buf, len, 0) == (ssize_t)len)
        return;
#endif
    /* No entropy source: the id need only be unlikely to collide. */
    unsigned char *b = buf;
    uint64_t x = os_time_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)buf;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)x;
    }
}

uint64_t os_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- process-wide memory barrier -------------------------------------- */

#if FM_HAVE_MEMBARRIER
static int membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0) == 0 ? 0 : errno;
}
#endif

int os_barrier_available(void)
{
#if FM_HAVE_MEMBARRIER
    static atomic_int known; /* 0 unknown, else the answer + 1 */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k)
        return k - 1;
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0); /* a bit mask */
    int err = cmds < 0 ? errno
              : (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) && (cmds & MEMBARRIER_CMD_GLOBAL)
                  ? 0
                  : ENOSYS;
    /* Register now, once per process: a sandbox that refuses it says so
     * here, where the caller can still choose the spin locks, rather than
     * at the first barrier, where it could not. */
    if (!err)
        err = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
    atomic_store_explicit(&known, err + 1, memory_order_relaxed);
    return err;
#else
    return ENOSYS;
#endif
}

int os_barrier_all(void)
{
#if FM_HAVE_MEMBARRIER
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return 0;
    /* Not registered (a child of fork(), which does not inherit it):
     * register again, or make do with the global barrier (slower, always
     * there). */
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return 0;
    return membarrier(MEMBARRIER_CMD_GLOBAL);
#else
    return ENOSYS;
#endif
}
