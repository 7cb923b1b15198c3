/*
 * snapshot.c -- fmtool snapshot: a consistent copy of a closed arena.
 *
 * Consistency comes from the arena's own lock: the source is opened with
 * FM_RDONLY, which takes a shared flock, so no writer is active while we
 * copy (a writer elsewhere makes the open fail with FM_ELOCKED), and none
 * can start.  The copy is written to a temporary file beside COPY, checked
 * (it must open and pass fm_check), then renamed into place, so COPY is
 * either absent, or the old file (--force), or a complete, checked copy.
 *
 * Holes stay holes, where the library allows holes.  fmalloc keeps this
 * invariant (lib/heap.c): a page of an arena is a hole only inside a free
 * chunk flagged CH_PUNCHED, past its first CH_PUNCH_KEEP bytes; every other
 * byte has real blocks, so that a store into the mapping can never fail for
 * lack of disk space.  The copy keeps it too:
 *   - a reflink (ioctl FICLONE) shares the source's blocks, holes and all;
 *   - else the ranges lseek SEEK_DATA reports as data are copied, and the
 *     ranges it reports as holes stay holes inside punched chunks and are
 *     allocated (posix_fallocate) everywhere else -- SEEK_HOLE also reports
 *     preallocated, never-written blocks, which the source does own;
 *   - else (no SEEK_DATA) everything is copied.
 * FICLONE and SEEK_DATA are Linux/GNU extensions, so this is the one file of
 * fmtool that defines _GNU_SOURCE, and only when meson found them.
 */
#include "fmtool_config.h"
#if FMTOOL_HAVE_FICLONE || FMTOOL_HAVE_SEEK_DATA
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if FMTOOL_HAVE_FICLONE
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

#include "fmtool.h"
#include "heap.h"

#define COPY_BUF (1u << 20)

/* Where the copy may keep holes: the interiors of punched free chunks, in
 * address order. */
struct span {
    uint64_t lo, hi;
};
struct spans {
    struct span *v;
    size_t n, cap;
    size_t cur; /* first span that may still matter, as ranges go up */
};

static int collect_punched(const struct chunk *c, void *arg)
{
    struct spans *p = arg;
    if (!c->punched || c->size <= CH_PUNCH_KEEP)
        return 0;
    void *v = p->v;
    if (tool_reserve(&v, &p->cap, p->n, sizeof *p->v))
        return ENOMEM;
    p->v = v;
    p->v[p->n++] = (struct span){c->off + CH_PUNCH_KEEP, c->off + c->size};
    return 0;
}

static int allocate(int fd, uint64_t off, uint64_t len)
{
    int err = posix_fallocate(fd, (off_t)off, (off_t)len);
    /* A file system that cannot preallocate: fmalloc accepts that too. */
    return err == EOPNOTSUPP || err == EINVAL ? 0 : err;
}

enum copy_method { COPY_REFLINK, COPY_SPARSE, COPY_PLAIN };
static const char *const method_name[] = {"reflink", "sparse copy", "plain copy"};

/* Copy bytes [off, end) of src to the same place in dst. */
static int copy_range(int src, int dst, uint64_t off, uint64_t end, char *buf)
{
    while (off < end) {
        size_t n = end - off < COPY_BUF ? (size_t)(end - off) : COPY_BUF;
        ssize_t got = pread(src, buf, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EIO; /* the file shrank under a shared lock */
        for (ssize_t done = 0; done < got;) {
            ssize_t w =
                pwrite(dst, buf + done, (size_t)(got - done), (off_t)(off + (uint64_t)done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return errno;
            done += w;
        }
        off += (uint64_t)got;
    }
    return 0;
}

#if FMTOOL_HAVE_SEEK_DATA
/* A hole of the source, [lo, hi): stays a hole in the copy where it lies in
 * a punched chunk, gets blocks everywhere else. */
static int copy_hole(int dst, uint64_t lo, uint64_t hi, struct spans *p, uint64_t *kept)
{
    while (lo < hi) {
        while (p->cur < p->n && p->v[p->cur].hi <= lo)
            p->cur++;
        const struct span *sp = p->cur < p->n ? &p->v[p->cur] : NULL;
        if (sp && sp->lo <= lo) { /* inside a punched chunk */
            uint64_t end = sp->hi < hi ? sp->hi : hi;
            *kept += end - lo;
            lo = end;
            continue;
        }
        uint64_t end = sp && sp->lo < hi ? sp->lo : hi;
        int err = allocate(dst, lo, end - lo);
        if (err)
            return err;
        lo = end;
    }
    return 0;
}

/* Copy the data ranges, keep the holes the arena allows.  0, an errno, or
 * EOPNOTSUPP when the file system cannot say where its holes are (the
 * caller then copies everything). */
static int copy_sparse(int src, int dst, uint64_t size, char *buf, struct spans *p, uint64_t *kept)
{
    uint64_t off = 0;
    while (off < size) {
        uint64_t data_at, end;
        off_t data = lseek(src, (off_t)off, SEEK_DATA);
        if (data < 0 && errno != ENXIO)
            return errno == EINVAL && off == 0 ? EOPNOTSUPP : errno;
        /* ENXIO: a hole up to the end */
        data_at = data < 0 || (uint64_t)data > size ? size : (uint64_t)data;
        int err = copy_hole(dst, off, data_at, p, kept);
        if (err || data_at == size)
            return err;
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            return errno;
        end = (uint64_t)hole < size ? (uint64_t)hole : size;
        if (end <= data_at)
            return EIO; /* the file system contradicts itself */
        if ((err = copy_range(src, dst, data_at, end, buf)))
            return err;
        off = end;
    }
    return 0;
}
#endif

/* Copy the whole of src (size bytes) into the empty file dst; *kept is
 * how many bytes stayed holes. */
static int copy_file(int src, int dst, uint64_t size, struct spans *punched, enum copy_method *how,
                     uint64_t *kept)
{
    *kept = 0;
#if FMTOOL_HAVE_FICLONE
    if (ioctl(dst, FICLONE, src) == 0) {
        *how = COPY_REFLINK;
        return 0;
    }
    /* Any failure (EOPNOTSUPP, EXDEV, EINVAL, ...) means: copy instead. */
#endif
    char *buf = malloc(COPY_BUF);
    if (!buf)
        return ENOMEM;
    int err = ftruncate(dst, (off_t)size) == 0 ? 0 : errno;
    if (err)
        goto out;
#if FMTOOL_HAVE_SEEK_DATA
    *how = COPY_SPARSE;
    err = copy_sparse(src, dst, size, buf, punched, kept);
    if (err != EOPNOTSUPP)
        goto out;
    *kept = 0;
    punched->cur = 0;
#else
    (void)punched;
#endif
    *how = COPY_PLAIN;
    err = copy_range(src, dst, 0, size, buf);
out:
    free(buf);
    return err;
}

/* fsync the directory that holds path, so that a rename into it lasts. */
static void sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* fm_check() on an open arena; 0, or the exit code after the message. */
static int check_heap(const char *name, struct fm_info *fi, const char *what)
{
    int err = fm_check(fi);
    if (err == FM_ECORRUPT)
        tool_error(name, "%s: %s", what, fm_check_message(fi));
    else if (err)
        tool_error(name, "cannot check it: %s", fm_strerror(err));
    return err == 0 ? 0 : err == FM_ECORRUPT ? EXIT_CORRUPT : EXIT_TROUBLE;
}

/* The copy must open and check clean before it takes COPY's name: it
 * proves the copy, the source was checked already. */
static int verify_copy(const struct tool_args *a, const char *tmp)
{
    struct fm_info *fi;
    struct fm_options o = {.flags = FM_RDONLY};
    int err = fm_open(tmp, &o, &fi);
    if (err) {
        tool_error(a->copy, "the copy does not open: %s", fm_strerror(err));
        return EXIT_TROUBLE;
    }
    int rc = check_heap(a->copy, fi, "the copy is not clean");
    fm_close(fi);
    return rc == EXIT_CORRUPT ? EXIT_TROUBLE : rc;
}

int cmd_snapshot(const struct tool_args *a)
{
    struct fm_info *fi = NULL;
    struct stat sst, pst, dst_st;
    char tmp[4200];
    int src = -1, dst = -1, rc = EXIT_TROUBLE, err;
    bool claimed = false, have_tmp = false;
    enum copy_method how = COPY_PLAIN;
    uint64_t kept = 0;
    struct spans punched = {0};

    if (strlen(a->copy) > 4096) {
        tool_error(a->copy, "%s", strerror(ENAMETOOLONG));
        return EXIT_TROUBLE;
    }
    if ((src = open(a->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
        tool_error(a->file, "%s", strerror(errno));
        return EXIT_TROUBLE;
    }
    if (fstat(src, &sst) != 0) {
        tool_error(a->file, "%s", strerror(errno));
        goto out;
    }
    if (lstat(a->copy, &dst_st) == 0) {
        if (stat(a->copy, &dst_st) == 0 && dst_st.st_dev == sst.st_dev &&
            dst_st.st_ino == sst.st_ino) {
            tool_error(a->copy, "is the arena itself; not copying a file onto itself");
            goto out;
        }
        if (!a->force) {
            tool_error(a->copy, "exists; not overwriting it (use --force to replace it)");
            goto out;
        }
        if (S_ISDIR(dst_st.st_mode)) {
            tool_error(a->copy, "is a directory");
            goto out;
        }
    }

    /* The shared lock: no writer now, none until we are done. */
    if ((rc = tool_open(a, &fi)))
        goto out;
    rc = EXIT_TROUBLE;
    if (stat(a->file, &pst) != 0 || pst.st_dev != sst.st_dev || pst.st_ino != sst.st_ino) {
        tool_error(a->file, "was replaced while it was being opened; try again");
        goto out;
    }
    if (fstat(src, &sst) != 0) { /* the size as of the lock */
        tool_error(a->file, "%s", strerror(errno));
        goto out;
    }
    /* Only a clean heap is copied; its punched chunks say where holes may stay. */
    if ((rc = check_heap(a->file, fi, "corrupt, not copied")))
        goto out;
    rc = EXIT_TROUBLE;
    if ((err = tool_walk_chunks(fi, collect_punched, &punched))) {
        tool_error(a->file, "%s", err == ENOMEM ? strerror(err) : fm_strerror(err));
        goto out;
    }

    /* Without --force, claim the name now: another snapshot (or anything
     * else) that makes COPY first wins, and we stop before copying. */
    if (!a->force) {
        int fd = open(a->copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            tool_error(a->copy, "exists; not overwriting it (use --force to replace it)");
        else if (fd < 0)
            tool_error(a->copy, "%s", strerror(errno));
        if (fd < 0)
            goto out;
        close(fd);
        claimed = true;
    }
    snprintf(tmp, sizeof tmp, "%s.fmtool-XXXXXX", a->copy);
    if ((dst = mkstemp(tmp)) < 0) {
        tool_error(a->copy, "cannot create a temporary file beside it: %s", strerror(errno));
        goto out;
    }
    have_tmp = true;
    if (fchmod(dst, sst.st_mode & 07777) != 0) {
        tool_error(tmp, "%s", strerror(errno));
        goto out;
    }
    if ((err = copy_file(src, dst, (uint64_t)sst.st_size, &punched, &how, &kept))) {
        tool_error(a->copy, "copy failed: %s", strerror(err));
        goto out;
    }
    if (fsync(dst) != 0) {
        tool_error(a->copy, "%s", strerror(errno));
        goto out;
    }
    close(dst);
    dst = -1;
    if ((rc = verify_copy(a, tmp)))
        goto out;
    rc = EXIT_TROUBLE;
    if (rename(tmp, a->copy) != 0) {
        tool_error(a->copy, "cannot rename the copy into place: %s", strerror(errno));
        goto out;
    }
    have_tmp = claimed = false;
    sync_dir_of(a->copy);

    struct stat cst;
    char h1[32], h2[32], h3[32];
    if (stat(a->copy, &cst) != 0)
        cst.st_blocks = 0;
    printf("%s: snapshot of %s, %llu bytes (%s), checked clean\n", a->copy, a->file,
           (unsigned long long)sst.st_size, human_size((uint64_t)sst.st_size, h1));
    if (how == COPY_SPARSE)
        printf("%s: %s: %s left as holes in punched chunks; %s on disk\n", a->copy,
               method_name[how], human_size(kept, h2),
               human_size((uint64_t)cst.st_blocks * 512, h3));
    else
        printf("%s: %s; %s on disk\n", a->copy, method_name[how],
               human_size((uint64_t)cst.st_blocks * 512, h3));
    rc = EXIT_CLEAN;
out:
    if (dst >= 0)
        close(dst);
    if (have_tmp)
        unlink(tmp);
    if (claimed)
        unlink(a->copy); /* our empty placeholder */
    if (fi)
        fm_close(fi);
    free(punched.v);
    close(src);
    return rc;
}
