/*
 * fmalloc.h -- a heap that lives in a memory-mapped file.
 *
 * Open (or create) an arena file with fm_open(), allocate from it with
 * fm_malloc() and friends, link objects with offsets (fm_off_t, FM_PTR(T)),
 * close it with fm_close().  The next run maps the file at whatever address
 * the kernel gives and finds every object where it left it.
 *
 * Conventions
 *   - Functions returning int return 0 on success, a positive errno value for
 *     a system error, or a negative FM_E* code for a format or heap error.
 *     fm_strerror() explains both.
 *   - Allocation functions return NULL on failure with errno set (ENOMEM when
 *     the arena cannot grow, EINVAL for bad arguments, EROFS on a read-only
 *     arena); the heap is left intact and usable.
 *   - Every fm_* call on one arena is thread-safe, except fm_close(), which
 *     must not race with any other call on the same arena.  After fm_close,
 *     other threads must not use the arena, even as their fmalloc target.
 *     Calls that change the heap, and the inspection calls, take the
 *     arena's mutex; only the thread caches' fast paths (Caveats) and the
 *     address helpers (fm_root, fm_offset, fm_pointer) do not.  The strings
 *     the library hands out (fm_last_error_detail, fm_check_message) are
 *     the calling thread's own; fm_strerror's are static.
 *   - Every heap operation is atomic with respect to a process crash: after
 *     a kill at any instruction the next fm_open() recovers the arena to the
 *     state just before or just after that operation.
 *
 * Caveats
 *   - fork(): a child must not use an arena its parent opened.  Every call
 *     on an inherited handle fails with FM_EFORKED (errno EPERM; allocation
 *     calls return NULL, fm_free and fm_free_from do nothing) -- the
 *     read-only ones (fm_check, fm_stats, fm_walk, fm_usable_size) too, as
 *     the fork may have copied the arena lock held by a parent thread that
 *     does not exist in the child, and the parent keeps changing the heap
 *     under the child's view.  fm_root, fm_offset and fm_pointer work, and
 *     the child may read the shared mapping at its own risk.  fm_close in
 *     the child (an exit handler's) only unmaps: no sync, no flag, no cache
 *     flush, no unlock.  Until it closes the handle or exits, the child
 *     keeps the parent's flock alive (the lock belongs to the open file,
 *     which parent and child share): after the parent's fm_close, a reopen
 *     gets FM_ELOCKED while such a child lives.  A child that wants the
 *     arena opens it anew, once the parent has closed it.  (fm_open sets
 *     O_CLOEXEC: a child that execs holds nothing.)
 *   - The lock is advisory (flock): it stops other fmalloc opens, nothing
 *     else.  Another process that truncates, rewrites or deletes the file
 *     while it is open is not stopped: a truncation makes the next access
 *     to the lost pages a SIGBUS (as with LMDB), and rewritten bytes are
 *     corruption that fm_check or the next operation may find (FM_ECORRUPT)
 *     or may not.  A copy taken while the arena is open may catch pages of
 *     an operation half-done, which recovery can refuse; copy a closed arena.
 *   - Readers and a writer: a read-write open takes the flock exclusive,
 *     an FM_RDONLY open shared.  Any number of FM_RDONLY opens may read
 *     together; none can open while a writer has the arena (FM_ELOCKED),
 *     and a writer cannot open while any reader has it -- there is no
 *     reading alongside a writer.  It is a local-file lock: on NFS and other
 *     network file systems flock may be emulated, per client, or absent,
 *     and two machines can both open one arena and corrupt it; keep arenas
 *     on local file systems.
 *   - Shared writers (FM_SHARED): several processes open one arena
 *     read-write, each with FM_SHARED, and take a robust process-shared
 *     lock that lives in the file; a process that dies holding it has its
 *     operation rolled back by the next one to take it.  Growth by one is
 *     seen by all (each maps its whole reserved range); the last to close
 *     marks the arena clean.  No thread caches; not with FM_RDONLY or
 *     FM_DURABLE; exclusive writers and readers get FM_ELOCKED while a
 *     shared writer has the arena, and it while they do.  docs/api.md,
 *     "Shared writers".
 *   - Thread caches: only fm_malloc/fm_free (and fmalloc/ffree through them)
 *     of chunks up to 1040 bytes (requests up to 1032 bytes: the chunk adds
 *     8 and rounds to 16) go through a per-thread cache, without the arena
 *     lock; fm_calloc, fm_realloc, fm_memalign, the *_to calls and the
 *     names take the lock every time.  64 caches per arena (TC_MAX; later
 *     threads take the locked path every time); each holds, per 16-byte
 *     size class, at most 128 free blocks (TC_CAP).  They flush: half a
 *     class when a free finds it full; every 65536 fast-path calls, three
 *     quarters of what each class did not need since the last time; all of
 *     them at fm_trim() and fm_close().  A refill takes up to 64 blocks
 *     under the lock.  A thread that exits leaves its cache, blocks and
 *     all, to the next thread that claims one.  FM_NOCACHE (or FM_RDONLY)
 *     opens an arena with no caches: every call locks, and placement is
 *     deterministic.  A cached block stays
 *     an in-use chunk until flushed, so it does not coalesce and fm_trim()
 *     flushes first.  Its first two words hold the cache's list link and a
 *     marker: a write after free over them is found (FM_ECORRUPT through
 *     the error handler, or from fm_check) and never followed, and the
 *     damaged list is dropped -- its blocks leak until fm_close or the next
 *     recovery frees them; writes beyond those words, or into blocks freed
 *     to the heap, are not detected by the caches.
 *   - Compiler attributes: with GCC or Clang the allocation calls are
 *     declared malloc/alloc_size/alloc_align (FM_MALLOC_ below says which
 *     and why).  A program that writes a block through fm_walk's callback,
 *     having kept the block's pointer from fm_malloc without ever passing
 *     it to a function, should define FM_NO_ALLOC_ATTRIBUTES before
 *     including this header (the compiler may keep the block's old values).
 *
 * The file format is described byte for byte in docs/format.md; the API in
 * docs/api.md; the crash model in docs/crash-model.md.
 */
#ifndef FMALLOC_H
#define FMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define FM_API __attribute__((visibility("default")))
#else
#define FM_API
#endif

/*
 * Allocation attributes, where the compiler has them (__has_attribute:
 * GCC 5+, Clang); empty elsewhere and with FM_NO_ALLOC_ATTRIBUTES.
 *   FM_MALLOC_  the returned block is new: no other pointer reaches it and
 *     it holds no pointers.  Only on fm_malloc, fm_calloc, fm_memalign,
 *     fmalloc and fcalloc.  Not on the realloc calls: a moved block holds
 *     the old contents, pointers included (GCC's manual says the same of
 *     realloc).  Not on fm_malloc_to, fm_calloc_to, fm_realloc_to or
 *     fm_name_malloc: they store the block's offset in the arena before
 *     they return, so fm_pointer() of that offset (or of a name's) is a
 *     second pointer to the block although the returned one never escaped
 *     -- exactly what the attribute would let the compiler rule out.
 *   FM_ALLOC_SIZE_(...)  the argument(s) giving the block's size (their
 *     product for calloc-like calls), for __builtin_object_size and
 *     _FORTIFY_SOURCE: true of every call that returns a block.  (The
 *     usable size may be larger; use fm_usable_size() before writing past
 *     the size asked for, as with malloc_usable_size.)
 *   FM_ALLOC_ALIGN_(n)  argument n is the block's alignment (fm_memalign).
 */
#if defined(__has_attribute) && !defined(FM_NO_ALLOC_ATTRIBUTES)
#if __has_attribute(__malloc__)
#define FM_MALLOC_ __attribute__((__malloc__))
#endif
#if __has_attribute(__alloc_size__)
#define FM_ALLOC_SIZE_(...) __attribute__((__alloc_size__(__VA_ARGS__)))
#endif
#if __has_attribute(__alloc_align__)
#define FM_ALLOC_ALIGN_(n) __attribute__((__alloc_align__(n)))
#endif
#endif
#ifndef FM_MALLOC_
#define FM_MALLOC_
#endif
#ifndef FM_ALLOC_SIZE_
#define FM_ALLOC_SIZE_(...)
#endif
#ifndef FM_ALLOC_ALIGN_
#define FM_ALLOC_ALIGN_(n)
#endif

/**
 * Library version this header belongs to (the file format has its own
 * version, FM_FORMAT_VERSION).  meson.build checks these against the
 * project version; fm_version() tells which library a program loaded.
 */
#define FM_VERSION_MAJOR 0
#define FM_VERSION_MINOR 1
#define FM_VERSION_PATCH 0
#define FM_VERSION_STRING "0.1.0"
/** Version of the on-disk format this library reads and writes. */
#define FM_FORMAT_VERSION 2

/** An offset from the start of the arena file; 0 means NULL. */
typedef uint64_t fm_off_t;

/**
 * An open arena.  Only `mem` is public: the base address of the mapping
 * (the superblock is at mem, the app root region at (char *)mem + 4096).
 * The base never moves while the arena is open.  Obtain one from fm_open()
 * or fmalloc_init(); never declare one yourself.
 */
struct fm_info {
    void *mem;
};

/** @name Open flags (struct fm_options.flags) */
/**@{*/
#define FM_CREATE 0x1u  /**< create a missing file, or initialise an empty or all-zero one */
#define FM_EXCL   0x2u  /**< with FM_CREATE: fail with EEXIST if the file exists */
#define FM_RDONLY 0x4u  /**< map read-only, share the file with other readers */
#define FM_NOSYNC 0x8u  /**< skip msync/fdatasync at open and close (process crashes stay covered, OS crashes do not) */
#define FM_NOCACHE 0x10u /**< no per-thread caches: every call takes the arena lock (placement is deterministic) */
#define FM_DURABLE 0x20u /**< power-safe commits: the file changes only at fm_commit(), through a redo journal; a crash loses what was not committed */
#define FM_SHARED 0x40u /**< shared writers: any number of processes open the arena read-write at once, each with FM_SHARED (not with FM_RDONLY or FM_DURABLE; no thread caches) */
/**@}*/

/** Options for fm_open(); a zero-initialised struct means the defaults. */
struct fm_options {
    uint64_t initial_size; /**< size in bytes of a new file (default 1 MiB; at least 64 KiB) */
    uint64_t max_size;     /**< most the file may grow to; address space reserved (default 1 TiB) */
    unsigned flags;        /**< FM_CREATE, FM_EXCL, FM_RDONLY, FM_NOSYNC, FM_NOCACHE, FM_DURABLE, FM_SHARED */
    mode_t mode;           /**< permissions of a new file (default 0644) */
};

/** @name Error codes: negative, beside positive errno values */
/**@{*/
#define FM_EBADMAGIC  (-30001) /**< not an fmalloc arena (wrong magic) */
#define FM_EVERSION   (-30002) /**< arena written by an unsupported format version */
#define FM_ECHECKSUM  (-30003) /**< superblock checksum mismatch: header damaged */
#define FM_ETRUNCATED (-30004) /**< file shorter than its header says */
#define FM_ECORRUPT   (-30005) /**< heap or state inconsistent; see fm_check_message() / fm_last_error_detail() */
#define FM_ELOCKED    (-30006) /**< the arena is open elsewhere (another process, or another fm_open here) */
#define FM_EPAGESIZE  (-30007) /**< arena made on a machine with another page size */
#define FM_EEMPTY     (-30008) /**< empty/zero file, or a creation cut short, and FM_CREATE not given */
#define FM_EGEOMETRY  (-30009) /**< header offsets or sizes are impossible */
#define FM_EBADPTR    (-30010) /**< pointer is not a live block of this arena */
#define FM_ENOTFILE   (-30011) /**< path is not a regular file */
#define FM_EFORKED    (-30012) /**< handle inherited through fork(): the child may only fm_close() it (errno EPERM) */
/**@}*/

/**
 * Open or create an arena.
 * @param[in]  path  file name
 * @param[in]  opt   options, or NULL for the defaults (open existing, read-write)
 * @param[out] out   the open arena on success, untouched on failure
 * @return 0; ENOENT (missing, no FM_CREATE); EEXIST (FM_EXCL); EISDIR;
 *   FM_ENOTFILE; FM_EEMPTY; FM_EBADMAGIC; FM_EVERSION; FM_ECHECKSUM;
 *   FM_ETRUNCATED; FM_EGEOMETRY; FM_EPAGESIZE; FM_ECORRUPT (unrecoverable
 *   dirty arena); FM_ELOCKED; ENOMEM (address space); other errno values.
 * A failed open never makes a valid arena invalid and never writes to a
 * file it refuses.  A creation that fails (ENOSPC, EIO) leaves an existing
 * file as it was (size, bytes, mode) and unlinks a file it created itself,
 * never one another opener holds.  (Steps that each leave a valid arena may
 * stay done when a later step fails: rolling a crashed operation back,
 * trimming a stale tail, giving a sparse file's holes their blocks -- a full
 * disk then fails the open with ENOSPC rather than a later store with
 * SIGBUS.)  A dirty arena (its last
 * user crashed) is recovered first; fm_stats() reports that in `recovered`.
 * After a failure, fm_last_error() holds the code and fm_last_error_detail()
 * says why in words (for FM_ECORRUPT: the first inconsistency found).
 */
FM_API int fm_open(const char *path, const struct fm_options *opt, struct fm_info **out);

/**
 * Give every thread cache's blocks back to the heap, sync (unless FM_NOSYNC),
 * mark clean, unmap, unlock and free the handle.
 * The handle is released even when an error is returned; in that case the
 * arena stays marked dirty and is recovered at its next open.
 * In a forked child, closing an inherited handle only unmaps (Caveats).
 * @return 0, or the errno of a failed msync/fdatasync.
 */
FM_API int fm_close(struct fm_info *fi);

/**
 * Make everything written to the arena so far durable (msync + fdatasync).
 * @return 0, EROFS on a read-only arena, EINVAL for a NULL fi, FM_EFORKED
 *   (a handle inherited through fork), or the errno of the failed call.
 */
FM_API int fm_sync(struct fm_info *fi);

/**
 * Commit: make the arena's whole state -- every block, every byte of user
 * data in the arena and the root region, the file's size and its free
 * space -- durable as one atomic step.
 *
 * In an FM_DURABLE arena, nothing reaches the file between commits; when
 * fm_commit returns, an OS crash or a power cut at any later instant
 * leaves an arena that opens at this commit or a later one
 * (docs/crash-model.md).  The commit is a quiescent point: no other
 * thread may store into the arena while it runs.  fm_sync and fm_close
 * commit as well.  In the default mode it is fm_sync (durable, not
 * atomic against a power cut).
 * One fdatasync per commit (the journal's); every 64 commits, and after
 * fm_trim, two more (a checkpoint syncs the arena file).
 * @return 0, EROFS on a read-only arena, EINVAL for a NULL fi, FM_EFORKED,
 *   or the errno of the failed write or sync.  A failed journal write
 *   leaves the file at the previous commit and the next commit retries; a
 *   failed apply or checkpoint keeps failing until a reopen replays the
 *   journal.
 */
FM_API int fm_commit(struct fm_info *fi);

/**
 * The version of the library the program runs with, which may differ from
 * the FM_VERSION_* macros it was compiled with (a newer libfmalloc.so.0).
 * Needs no arena; thread-safe.
 * @param[out] major   the library's FM_VERSION_MAJOR, may be NULL
 * @param[out] minor   the library's FM_VERSION_MINOR, may be NULL
 * @param[out] patch   the library's FM_VERSION_PATCH, may be NULL
 * @param[out] format  the library's FM_FORMAT_VERSION: the one on-disk
 *   format version it reads and writes (fm_open refuses others with
 *   FM_EVERSION), may be NULL
 * @return the library's FM_VERSION_STRING, e.g. "0.1.0": static, never NULL.
 */
FM_API const char *fm_version(int *major, int *minor, int *patch, int *format);

/** One sentence explaining an error code (FM_E* or errno). Never NULL. */
FM_API const char *fm_strerror(int err);

/** The FM_E* or errno code of the calling thread's last failed fm/fmalloc call. */
FM_API int fm_last_error(void);
/** fm_strerror() of that code, with details where there are some. Never NULL. */
FM_API const char *fm_last_error_detail(void);

/**
 * Allocate `size` bytes, 16-byte aligned.  fm_malloc(0) returns a unique
 * minimum-size block (usable size 24), as glibc does.
 * @return the block, or NULL with errno ENOMEM (arena cannot grow, or the
 *   size is beyond 2^46), EROFS (read-only arena), EINVAL (NULL fi), EIO
 *   (heap corruption found; the error handler was called), or EPERM
 *   (FM_EFORKED: a handle inherited through fork).  A damaged thread-cache
 *   list (a write after free) goes to the error handler as FM_ECORRUPT; if
 *   it returns, the call is served from the heap.
 */
FM_API void *fm_malloc(struct fm_info *fi, size_t size) FM_MALLOC_ FM_ALLOC_SIZE_(2);
/**
 * Zeroed n*size bytes, 16-byte aligned (always under the arena lock; memory
 * fresh from the file's growth is not written again).
 * @return the block, or NULL with errno ENOMEM (also if n*size overflows),
 *   EINVAL, EROFS, EIO or EPERM, as fm_malloc().
 */
FM_API void *fm_calloc(struct fm_info *fi, size_t n, size_t size) FM_MALLOC_ FM_ALLOC_SIZE_(2, 3);
/**
 * Resize a block.  NULL p is fm_malloc(size).  size 0 frees p and returns
 * NULL (as glibc does).  Shrinks in place; grows in place into a following
 * free chunk or the top before moving.  On failure returns NULL, leaves p
 * untouched, errno ENOMEM (no room), EINVAL (p is not a live block: the
 * error handler was called), EROFS, EIO (heap corruption found) or EPERM
 * (FM_EFORKED).  Not FM_MALLOC_: the block keeps p's contents.
 */
FM_API void *fm_realloc(struct fm_info *fi, void *p, size_t size) FM_ALLOC_SIZE_(3);
/**
 * `size` bytes aligned to `alignment` (a power of two, up to 1 GiB; below
 * 16 the block is 16-byte aligned anyway).
 * @return the block, or NULL with errno EINVAL (a bad alignment, or NULL
 *   fi), ENOMEM, EROFS, EIO or EPERM, as fm_malloc().
 */
FM_API void *fm_memalign(struct fm_info *fi, size_t alignment, size_t size)
    FM_MALLOC_ FM_ALLOC_SIZE_(3) FM_ALLOC_ALIGN_(2);
/**
 * Free a block.  NULL is a no-op.  An invalid pointer (outside the heap,
 * misaligned, not a block start, already free) never corrupts the heap: it
 * is reported through the error handler (default: message and abort()).
 * A NULL fi, a read-only arena or an inherited handle only sets errno
 * (EINVAL, EROFS, EPERM) and fm_last_error().
 */
FM_API void fm_free(struct fm_info *fi, void *p);
/** Bytes usable in the block p (at least what was asked); 0 for NULL or
 * anything that is not a live block (a freed one included); no error is
 * reported.  Works on FM_RDONLY arenas; 0 on an inherited handle. */
FM_API size_t fm_usable_size(struct fm_info *fi, const void *p);

/**
 * Error handler for invalid frees and heap corruption found during an
 * operation.  `err` is FM_EBADPTR or FM_ECORRUPT; `msg` names the pointer and
 * its offset.  If the handler returns, the offending call does nothing (and
 * allocation calls return NULL with errno EINVAL for FM_EBADPTR, EIO for
 * FM_ECORRUPT).
 */
typedef void (*fm_error_handler)(struct fm_info *fi, int err, const char *msg, void *arg);
/** Install a handler (NULL restores the default: print to stderr, abort).
 * One per arena, shared by its threads; it runs in the thread whose call
 * found the problem, with the arena unlocked (it may call fm_* on it).
 * Does nothing for a NULL fi or an inherited handle. */
FM_API void fm_set_error_handler(struct fm_info *fi, fm_error_handler fn, void *arg);

/** The 8 KiB app root region at offset 4096, zero-filled at creation; NULL
 * for a NULL fi.  Needs no lock; works on an inherited handle. */
FM_API void *fm_root(struct fm_info *fi);
/** Size in bytes of the app root region (8192, whatever fi is). */
FM_API size_t fm_root_size(struct fm_info *fi);
/** Offset of p from the start of the file; 0 for NULL p or fi, or a pointer
 * outside the mapping.  Needs no lock; works on an inherited handle. */
FM_API fm_off_t fm_offset(struct fm_info *fi, const void *p);
/** Pointer for an offset; 0 -> NULL; NULL too for a NULL fi or an offset
 * outside the mapping.  Needs no lock; works on an inherited handle. */
FM_API void *fm_pointer(struct fm_info *fi, fm_off_t off);

/**
 * Allocate and link atomically: allocate `size` bytes and store the block's
 * offset in *slot in one crash-atomic step.  `slot` must be an 8-byte aligned
 * fm_off_t in the root region or in a live block: one outside the root
 * region and the heap, or misaligned, is refused with EINVAL; one inside
 * free space cannot be told apart cheaply and corrupts the heap (the
 * caller's bug, like writing to freed memory).
 * Whatever *slot held before is overwritten (not freed).
 * Not FM_MALLOC_ (nor are the other *_to calls and fm_name_malloc): the
 * stored offset is a second way to the block.
 * @return the block, or NULL with errno set as by fm_malloc() (*slot
 *   unchanged).
 */
FM_API void *fm_malloc_to(struct fm_info *fi, fm_off_t *slot, size_t size) FM_ALLOC_SIZE_(3);
/**
 * fm_malloc_to() of n*size zero-filled bytes: the block is zeroed before it
 * is linked, in the same atomic step, so a crash never leaves *slot pointing
 * at uninitialised memory (FM_PTR fields in it read as NULL).
 * @return the block, or NULL with errno ENOMEM (also if n*size overflows),
 *   EINVAL (bad slot), EROFS or EIO, as fm_malloc_to().
 */
FM_API void *fm_calloc_to(struct fm_info *fi, fm_off_t *slot, size_t n, size_t size)
    FM_ALLOC_SIZE_(3, 4);
/** Free the block *slot links and set *slot to 0, in one atomic step.  The
 * slot is read under the arena lock: 0 (also when another thread cleared it
 * first) is a no-op.  A bad slot, a NULL fi, a read-only arena or an
 * inherited handle only sets errno (EINVAL, EROFS, EPERM); a slot that links
 * no live block goes to the error handler (FM_EBADPTR), as fm_free. */
FM_API void fm_free_from(struct fm_info *fi, fm_off_t *slot);
/**
 * fm_realloc() of the block *slot links, storing the new offset in *slot in
 * the same atomic step.  size 0 frees it and stores 0.  A slot that holds 0
 * (read under the arena lock, as by fm_free_from) is fm_malloc_to.  A slot
 * inside the block itself is refused with EINVAL (it would move with the block).
 * @return the (possibly moved) block, or NULL with errno set (*slot unchanged).
 */
FM_API void *fm_realloc_to(struct fm_info *fi, fm_off_t *slot, size_t size) FM_ALLOC_SIZE_(3);

/** Heap figures.  allocated_bytes + free_bytes == heap_size whenever fm_stats
 * returns 0.  Blocks held by thread caches count as free (they are free to
 * the user), though they have not coalesced yet. */
struct fm_stats {
    uint64_t file_size;       /**< bytes in the file (heap end) */
    uint64_t heap_size;       /**< bytes from the heap start to the end of the file */
    uint64_t allocated_bytes; /**< bytes in allocated chunks (headers included) */
    uint64_t allocated_count; /**< allocated blocks */
    uint64_t free_bytes;      /**< bytes in free chunks, top included */
    uint64_t free_blocks;     /**< free chunks, top included */
    uint64_t largest_free;    /**< largest free chunk, top included */
    uint64_t top_size;        /**< bytes in the top chunk (wilderness) */
    uint64_t punched_bytes;   /**< bytes in free chunks flagged as punched (pages may be holes) */
    uint64_t generation;      /**< read-write opens of this arena so far */
    bool recovered;           /**< this open recovered the arena after a crash */
};

/** Walk the heap and fill *st (O(heap size)).
 * @return 0, FM_ECORRUPT, ENOMEM, EINVAL, FM_EFORKED (inherited through fork). */
FM_API int fm_stats(struct fm_info *fi, struct fm_stats *st);
/**
 * Verify every heap invariant (full walk of chunks, bins and trees).
 * Then the thread caches' lists: a damaged one (a write after free over a
 * cached block) is FM_ECORRUPT, reported, never followed.
 * @return 0, FM_ECORRUPT with the first violation in fm_check_message(),
 * ENOMEM (no memory for the walk), EINVAL (NULL fi), or FM_EFORKED (a
 * handle inherited through fork: see Caveats).
 * Never crashes on a damaged file.
 */
FM_API int fm_check(struct fm_info *fi);
/**
 * Description of the violation the calling thread's last fm_check(),
 * fm_stats() or fm_walk() of this arena found ("" if it found none).
 * Thread-safe: each thread reads its own copy, which other threads' checks
 * do not change; it stays valid until this thread's next check or
 * fm_check_message call, or fm_close.  A thread that has not checked this
 * arena gets a copy of the arena's last message (any thread's check, or
 * the open's); on an inherited handle, "".  With a NULL fi,
 * fm_last_error_detail().  Never NULL.
 */
FM_API const char *fm_check_message(struct fm_info *fi);
/**
 * Call fn(p, usable_size, arg) for every allocated block in address order
 * (blocks held by thread caches are free, and skipped); stop early when fn
 * returns non-zero and return that value.  The arena is locked meanwhile
 * (its caches stopped): fn must not call fm_* functions on the same arena.
 * A block written in fn: see "Compiler attributes" in Caveats.
 * @return 0, fn's non-zero value, FM_ECORRUPT (message in
 *   fm_check_message()), ENOMEM, EINVAL (NULL fi/fn) or FM_EFORKED.
 */
FM_API int fm_walk(struct fm_info *fi, int (*fn)(void *p, size_t size, void *arg), void *arg);

/**
 * Give the free tail of the heap back to the file system: shrink the file
 * so that at most `pad` free bytes (rounded down to a page) stay at its end;
 * a minimal top chunk and a 64 KiB file always remain.  First every thread
 * cache's blocks go back to the heap and coalesce (fm_trim(fi, SIZE_MAX)
 * does only that).
 * @return 0, EROFS, EINVAL (NULL fi), FM_EFORKED, or an errno from
 *   ftruncate (the file then keeps its size; the next open trims it).
 */
FM_API int fm_trim(struct fm_info *fi, size_t pad);

/* ---------------------------------------------------------------------------
 * Named objects: a directory in the arena mapping names to offsets.
 *
 * A name is 1..FM_NAME_MAX bytes, NUL-terminated; every byte except the
 * control bytes 0x01..0x1F and 0x7F is allowed (UTF-8 passes unchecked).
 * Lookups are O(1) expected (a hash table in the heap that grows).  Every
 * change is one crash-atomic operation, as a heap operation is.  The
 * directory holds offsets, not objects: freeing a named block does not
 * unbind its name (unbind first).
 * ------------------------------------------------------------------------- */

/** Most bytes in a name, without its NUL. */
#define FM_NAME_MAX 255

/**
 * Bind `name` to the offset `off`.
 * @param[in] fi    the arena (read-write)
 * @param[in] name  1..FM_NAME_MAX bytes, no control bytes
 * @param[in] off   an offset in the root region or the heap
 *                  (normally a block's, fm_offset(fi, p))
 * @return 0; EEXIST (the name is bound; nothing changes); EINVAL (NULL fi,
 *   bad name, off outside the root region and heap); EROFS; ENOMEM (no
 *   room for the entry or a bigger table); FM_ECORRUPT (the directory is
 *   damaged: the error handler was called).
 */
FM_API int fm_name_bind(struct fm_info *fi, const char *name, fm_off_t off);
/**
 * The offset bound to `name`.
 * @param[out] off  the offset on success, untouched otherwise
 * @return 0; ENOENT (not bound); EINVAL (NULL fi or off, bad name);
 *   FM_ECORRUPT (the directory is damaged).  Works on FM_RDONLY arenas.
 */
FM_API int fm_name_lookup(struct fm_info *fi, const char *name, fm_off_t *off);
/**
 * Remove `name` from the directory (the block it names is not freed).
 * @return 0; ENOENT (not bound); EINVAL; EROFS; FM_ECORRUPT (error handler
 *   called).
 */
FM_API int fm_name_unbind(struct fm_info *fi, const char *name);
/**
 * Allocate `size` zero-filled bytes and bind `name` to the block, in one
 * crash-atomic step (as fm_calloc_to: after a crash the name is either
 * unbound and nothing allocated, or bound to a zeroed block).
 * @return the block, or NULL with errno EEXIST (the name is bound), EINVAL
 *   (NULL fi, bad name), EROFS, ENOMEM or EIO (damaged directory or heap).
 */
FM_API void *fm_name_malloc(struct fm_info *fi, const char *name, size_t size) FM_ALLOC_SIZE_(3);
/**
 * Call fn(name, off, arg) for every bound name, in table order; stop early
 * when fn returns non-zero and return that value.  The arena is locked
 * meanwhile: fn must not call fm_* functions on the same arena.
 * @return 0, fn's value, EINVAL (NULL fi or fn), or FM_ECORRUPT.
 */
FM_API int fm_name_iterate(struct fm_info *fi,
                           int (*fn)(const char *name, fm_off_t off, void *arg), void *arg);

/* ---------------------------------------------------------------------------
 * fmalloc-compatible API: a current target arena per thread.
 * ------------------------------------------------------------------------- */

/**
 * fm_open(filepath) with FM_CREATE and default options (1 MiB, 1 TiB of
 * address space, mode 0644), then make the arena the calling thread's
 * current target and the process default (the target of every thread that
 * never chose one).  Call it once per file: a second open of the same file,
 * in this process too, fails with FM_ELOCKED.  Close with fm_close(), which
 * clears the default if it is this arena, and the closing thread's own
 * target (that thread then has none until it sets one).  Thread-safe.
 * @param[out] init true if this call created or initialised the arena,
 *   false if it opened an existing one; may be NULL
 * @return the arena, or NULL with fm_last_error() fm_open's code and
 *   errno its errno value (FM_ELOCKED EBUSY, FM_ECORRUPT EIO, other FM_E*
 *   EINVAL); fm_last_error_detail() says why.
 */
FM_API struct fm_info *fmalloc_init(const char *filepath, bool *init);
/** Set the calling thread's current target arena; NULL makes it follow the
 * process default again.  Affects only the calling thread. */
FM_API void fmalloc_set_target(struct fm_info *fi);
/** The calling thread's chosen target, or (if it chose none) the process
 * default, or NULL.  Other threads that chose an arena keep it after an
 * fm_close: set theirs before closing it. */
FM_API struct fm_info *fmalloc_target(void);
/** fm_malloc(fmalloc_target(), size); NULL with errno EINVAL (and
 * fm_last_error() EINVAL) when the thread has no target. */
FM_API void *fmalloc(size_t size) FM_MALLOC_ FM_ALLOC_SIZE_(1);
/** fm_free(fmalloc_target(), p).  NULL does nothing; with no target only
 * the error (EINVAL) is set.  p must belong to the current target: one of
 * another arena goes to the error handler (FM_EBADPTR). */
FM_API void ffree(void *p);
/** fm_calloc(fmalloc_target(), n, size); NULL with EINVAL without a target. */
FM_API void *fcalloc(size_t n, size_t size) FM_MALLOC_ FM_ALLOC_SIZE_(1, 2);
/** fm_realloc(fmalloc_target(), p, size); NULL with EINVAL without a target
 * (p is then untouched). */
FM_API void *frealloc(void *p, size_t size) FM_ALLOC_SIZE_(2);

/* ---------------------------------------------------------------------------
 * Typed relative pointers.
 *
 *   struct node { int val; FM_PTR(struct node) next; };
 *   FM_PTR_SET(fi, n->next, other);      // other must be a struct node *
 *   struct node *m = FM_PTR_GET(fi, n->next);
 *
 * The field stores an fm_off_t (base-relative, so structs can be memcpy'd);
 * a zero offset is NULL.  Assigning a pointer of another type is a
 * compile-time error under GCC and Clang.  Each FM_PTR(T) spelling is a
 * distinct type: to copy between fields declared apart, copy .off, or name
 * the type once: typedef FM_PTR(struct node) node_ptr;
 * fm_offset() of a pointer outside the arena is 0: FM_PTR_SET with a
 * pointer into another arena stores NULL.
 * ------------------------------------------------------------------------- */
#define FM_PTR(T)                                                                  \
    union {                                                                        \
        fm_off_t off;                                                              \
        T *type_witness_; /* never stored: remembers the pointee type */           \
    }

#if (defined(__GNUC__) || defined(__clang__)) && !defined(__cplusplus)
/* A negative array size is a hard error in every compiler mode. */
#define FM_PTR_TYPECHECK_(field, ptr)                                              \
    ((void)sizeof(char[1 - 2 * !(__builtin_types_compatible_p(                     \
                               __typeof__((field).type_witness_), __typeof__(ptr)) \
                           || __builtin_types_compatible_p(__typeof__(ptr), void *))]))
/** The pointer stored in `field`, typed. */
#define FM_PTR_GET(fi, field) ((__typeof__((field).type_witness_))fm_pointer((fi), (field).off))
#elif defined(__cplusplus) && __cplusplus >= 201103L
/* C++: typed through decltype; static_cast refuses an unrelated pointer
   type as the C check does (NULL and void * still pass). */
#define FM_PTR_TYPECHECK_(field, ptr)                                              \
    ((void)sizeof(static_cast<decltype((field).type_witness_)>(ptr)))
#define FM_PTR_GET(fi, field)                                                      \
    (static_cast<decltype((field).type_witness_)>(fm_pointer((fi), (field).off)))
#else
#define FM_PTR_TYPECHECK_(field, ptr) ((void)0)
#define FM_PTR_GET(fi, field) (fm_pointer((fi), (field).off))
#endif
/**
 * Store the offset of `ptr` in `field`.  `ptr` must have the field's pointee
 * type (or be NULL / void *); another type does not compile.
 */
#define FM_PTR_SET(fi, field, ptr)                                                 \
    (FM_PTR_TYPECHECK_(field, ptr), (field).off = fm_offset((fi), (ptr)))
/** The same through the calling thread's current target. */
#define FM_PTR_TSET(field, ptr) FM_PTR_SET(fmalloc_target(), field, ptr)
#define FM_PTR_TGET(field) FM_PTR_GET(fmalloc_target(), field)
/** True if `field` holds NULL. */
#define FM_PTR_ISNULL(field) ((field).off == 0)

#ifdef __cplusplus
}
#endif
#endif /* FMALLOC_H */
