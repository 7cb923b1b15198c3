/*
 * os.h -- the operating-system layer: the only file with system calls.
 *
 * Every function returns 0 or a positive errno value.  Tests can inject
 * failures into the calls that grow, sync or map the file (os_fault_set),
 * SQLite-style: "the next `skip` calls succeed, then one fails with `err`".
 */
#ifndef FM_OS_H
#define FM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum os_fault_op {
    OS_FAULT_TRUNCATE,
    OS_FAULT_ALLOCATE,
    OS_FAULT_MAP,
    OS_FAULT_MSYNC,
    OS_FAULT_FSYNC,
    OS_FAULT_NOPS
};

#if FM_TEST_HOOKS /* only in the tests' library (lib/meson.build) */
/* Test hook: after `skip` more successful calls of `op`, fail once with err
 * (err 0 disarms).  Process-wide. */
void os_fault_set(enum os_fault_op op, int err, int skip);
/* The same, failing `times` calls in a row. */
void os_fault_set_times(enum os_fault_op op, int err, int skip, int times);

/* Test hook: the power-loss simulator (test/power) sees every call that
 * changes or syncs a file, and every file mapping, as an event.  The hook
 * runs after the call succeeded (failed calls are not traced), except for
 * OS_TRACE_UNMAP, which runs just before the mapping goes away so that the
 * simulator can still read its pages.  fn NULL turns tracing off. */
enum os_trace_op {
    OS_TRACE_OPEN,      /* fd, path */
    OS_TRACE_CLOSE,     /* fd */
    OS_TRACE_UNLINK,    /* path */
    OS_TRACE_PWRITE,    /* fd, off, len, data */
    OS_TRACE_TRUNCATE,  /* fd, off = the new size */
    OS_TRACE_ALLOCATE,  /* fd, off, len (extends the size like a write) */
    OS_TRACE_PUNCH,     /* fd, off, len */
    OS_TRACE_FDATASYNC, /* fd */
    OS_TRACE_MSYNC,     /* addr, len */
    OS_TRACE_MAP,       /* addr, len, fd, off, priv, rdonly */
    OS_TRACE_UNMAP,     /* addr, len (any mapping, file or not) */
    OS_TRACE_DIRSYNC    /* path: the directory entries naming this file are durable */
};
struct os_trace_event {
    enum os_trace_op op;
    int fd;
    const char *path;
    uint64_t off, len;
    const void *data;
    void *addr;
    bool priv, rdonly;
};
void os_trace_set(void (*fn)(const struct os_trace_event *ev, void *ctx), void *ctx);

/* Test switch for proving the power-loss simulator can fail: when set,
 * the arena punches a freed chunk at once and truncates before syncing --
 * the orderings lib/arena.c exists to prevent. */
extern bool os_break_ordering;
#else
#define os_break_ordering false
#endif

/* Open `path`; O_CREAT|O_EXCL when `create_excl`.  Sets *fd. */
int os_open(const char *path, bool rdonly, bool create_excl, mode_t mode, int *fd);
int os_close(int fd);
int os_unlink(const char *path);
/* fsync the directory holding `path`, so that its creation or unlink
 * survives a power cut. */
int os_sync_dir(const char *path);
/* Size of a regular file; EISDIR for a directory, ENODEV for anything else. */
int os_file_size(int fd, uint64_t *size);
/* 0 if `path` still names the file open as fd, ESTALE if it names another
 * file or none (it was unlinked or replaced), else the errno of stat. */
int os_same_file(const char *path, int fd);
/* Non-blocking flock: EWOULDBLOCK if someone else holds a conflicting lock. */
int os_lock(int fd, bool exclusive);
/* Give up the flock (a failed conversion may already have: flock(2)). */
void os_unlock(int fd);
/* Byte locks of the open file description (fcntl F_OFD_*), on one byte at
 * `off` (beyond any real file size: they mark, they guard no data).  They
 * belong to the description, as flock does: a fork shares them, the last
 * close drops them.  ENOTSUP where the system has none.
 * os_mark_set: take a shared (or, exclusive, a sole) mark; `wait` blocks for
 * it, else EWOULDBLOCK.  os_mark_clear drops it.  os_mark_held: does some
 * other description hold a mark there (*held), shared or not? */
int os_mark_set(int fd, uint64_t off, bool exclusive, bool wait);
void os_mark_clear(int fd, uint64_t off);
int os_mark_held(int fd, uint64_t off, bool *held);

int os_pread(int fd, void *buf, size_t len, uint64_t off);
int os_pwrite(int fd, const void *buf, size_t len, uint64_t off);
/* The buffers iov[0..cnt), written one after the other from `off`: one
 * system call for most (traced as a pwrite each). */
struct iovec;
int os_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off);
int os_truncate(int fd, uint64_t size);
/* Give [off, off+len) real blocks so writes through the mapping cannot SIGBUS. */
int os_allocate(int fd, uint64_t off, uint64_t len);
/* Return whole pages in [off, off+len) to the file system (reads give zeros). */
int os_punch_hole(int fd, uint64_t off, uint64_t len);
int os_fdatasync(int fd);
/* The first hole at or after off, [*hole, *hole_end), both clamped to end;
 * *hole == end if there is none before end. */
int os_next_hole(int fd, uint64_t off, uint64_t end, uint64_t *hole, uint64_t *hole_end);
/* Does [off, end) read as zeros?  Holes are skipped without reading. */
int os_is_zero(int fd, uint64_t off, uint64_t end, bool *zero);

/* Reserve `len` bytes of address space, inaccessible and without backing. */
int os_reserve(uint64_t len, void **base);
/* Map [off, off+len) of fd at `addr` (inside a reservation): shared, or
 * private (copy-on-write, writable) when `priv`. */
int os_map_file(void *addr, uint64_t len, int fd, uint64_t off, bool rdonly, bool priv);
/* Make [addr, addr+len) read-only. */
int os_protect_read(void *addr, uint64_t len);
/* A private (copy-on-write) mapping of [0, len) of fd, anywhere. */
int os_map_private(int fd, uint64_t len, void **out);
/* Turn [addr, addr+len) back into reserved, inaccessible address space. */
int os_unmap_to_reserve(void *addr, uint64_t len);
int os_unmap(void *addr, uint64_t len);
int os_msync(void *addr, uint64_t len);
/* This process's page map (/proc/self/pagemap), for os_written_pages:
 * *fd.  Never to be used after a fork (it shows the opener's pages).
 * Linux only; ENOSYS elsewhere. */
int os_pagemap_open(int *fd);
/* The pages of [addr, addr+len), a private (copy-on-write) file mapping,
 * that this process wrote since they were mapped or discarded: their
 * offsets from addr, ascending, in *out (malloc'd; *n of them).  pm comes
 * from os_pagemap_open (PAGEMAP_SCAN, else reading the map). */
int os_written_pages(int pm, void *addr, uint64_t len, uint64_t page, uint64_t **out, size_t *n);
/* Drop the private copies of [addr, addr+len): the range maps the file's
 * bytes again. */
int os_discard(void *addr, uint64_t len);

/* membarrier(2): os_barrier_available says (once per process, then from
 * memory) whether the kernel has the private expedited command and lets
 * this process use it (0, or ENOSYS/EPERM/...; it registers the process);
 * os_barrier_all runs a full memory barrier on every running thread of the
 * process (registering again in a forked child, else with the slower
 * global command); 0 or the errno. */
int os_barrier_available(void);
int os_barrier_all(void);

/* Zero-filled, page-aligned memory of the process (not of any file),
 * whose pages cost nothing until touched; free with os_unmap. */
int os_alloc_zeroed(size_t len, void **out);

uint64_t os_page_size(void);
void os_random(void *buf, size_t len);
uint64_t os_time_ns(void);

#endif
