/*
 * test_disk_full.c -- a full file system: errors, never SIGBUS, never a
 * changed file.  Run by disk_full.sh in a small tmpfs of its own; argv[1]
 * is that directory.
 *
 *  - creation that runs out of space leaves an existing empty file exactly
 *    as it was (size and mode), and leaves no new file behind;
 *  - an arena copied sparsely (cp --sparse=always: every zero page a hole)
 *    on a full disk is refused at open with ENOSPC or works; a store into
 *    a block it hands out never meets a hole (SIGBUS); once space is free
 *    it opens and every byte is there.
 */
#include <fmalloc.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char dir[512];

static const char *at(const char *name)
{
    static char buf[2][700];
    static int next;
    char *p = buf[next++ % 2];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* Write zeros to `name` until the file system is full. */
static void fill_disk(const char *name)
{
    static char zeros[1 << 16];
    int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    require_true(fd >= 0);
    while (write(fd, zeros, sizeof zeros) > 0)
        ;
    /* the last partial block */
    while (write(fd, zeros, 512) > 0)
        ;
    close(fd);
}

static void failed_creation(void)
{
    char empty[700];
    snprintf(empty, sizeof empty, "%s", at("empty.fm"));
    int fd = open(empty, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    require_true(fd >= 0);
    close(fd);
    struct fm_options big = {.initial_size = 64u << 20, .flags = FM_CREATE};
    struct fm_info *fi;
    expect_eq(fm_open(empty, &big, &fi), ENOSPC);
    struct stat st;
    require_eq(stat(empty, &st), 0);
    expect_eq(st.st_size, 0);
    expect_eq(st.st_mode & 0777, 0600);
    expect_eq(st.st_blocks, 0);

    const char *fresh = at("fresh.fm");
    expect_eq(fm_open(fresh, &big, &fi), ENOSPC);
    expect_true(access(fresh, F_OK) != 0);
    unlink(empty);
}

/* Copy with every all-zero page left a hole, as cp --sparse=always does. */
static void copy_sparse(const char *from, const char *to)
{
    static unsigned char page[4096], zero[4096];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    require_true(in >= 0 && out >= 0);
    off_t off = 0;
    ssize_t n;
    while ((n = pread(in, page, sizeof page, off)) > 0) {
        if (memcmp(page, zero, (size_t)n) != 0)
            require_true(pwrite(out, page, (size_t)n, off) == n);
        off += n;
    }
    require_eq(ftruncate(out, off), 0);
    close(in);
    close(out);
}

enum { KEPT = 300 * 1024 };

static void sparse_copy_on_full_disk(void)
{
    char orig[700], copy[700];
    snprintf(orig, sizeof orig, "%s", at("orig.fm"));
    snprintf(copy, sizeof copy, "%s", at("copy.fm"));
    struct fm_info *fi;
    require_eq(fm_open(orig, &(struct fm_options){.initial_size = 2u << 20, .flags = FM_CREATE},
                       &fi), 0);
    /* a block that is mostly zero pages: holes in the copy, inside a block */
    unsigned char *kept = fm_malloc_to(fi, (fm_off_t *)fm_root(fi), KEPT);
    require_true(kept != NULL);
    memset(kept, 0, KEPT);
    kept[0] = 1, kept[KEPT - 1] = 2;
    require_eq(fm_close(fi), 0);
    copy_sparse(orig, copy);
    unlink(orig);
    struct stat st;
    require_eq(stat(copy, &st), 0);
    printf("sparse copy: %lld bytes, %lld in blocks\n", (long long)st.st_size,
           (long long)st.st_blocks * 512);

    fill_disk("filler");
    int err = fm_open(copy, NULL, &fi);
    printf("open of the sparse copy on a full disk: %s\n", err ? fm_strerror(err) : "ok");
    expect_true(err == 0 || err == ENOSPC);
    if (err == 0) { /* every page it can write has its blocks: no SIGBUS */
        unsigned char *k = fm_pointer(fi, *(fm_off_t *)fm_root(fi));
        memset(k + 1, 7, KEPT - 2);
        void *p = fm_malloc(fi, 64 * 1024);
        if (p)
            memset(p, 9, 64 * 1024);
        fm_close(fi);
    }
    unlink(at("filler"));
    require_eq(fm_open(copy, NULL, &fi), 0);
    expect_eq(fm_check(fi), 0);
    const unsigned char *k = fm_pointer(fi, *(fm_off_t *)fm_root(fi));
    require_true(k != NULL);
    expect_true(k[0] == 1 && k[KEPT - 1] == 2);
    /* and now the whole block is writable */
    memset((unsigned char *)k + 1, 5, KEPT - 2);
    expect_eq(fm_close(fi), 0);
    unlink(copy);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (a small file system of its own)\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    failed_creation();
    sparse_copy_on_full_disk();
    return harness_done();
}
