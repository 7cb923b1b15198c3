/*
 * test_openclose.c -- end the process at every step of open and close.
 *
 * The invariant (lib/arena.c, "the clean flag"): at no instant may the
 * file say "clean" over a state checksum that does not match, because a
 * clean arena with a bad checksum is refused for good.  So for every
 * crash point k of a whole session -- open (marking dirty), work, close
 * (checksum, then the clean flag) -- and of a failed open (the dirty mark
 * taken back), a child runs the session on a fresh copy and exits at k;
 * the copy must then open, pass fm_check and still hold the block the
 * template linked, byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmalloc.h"
#include "harness.h"
#include "log.h"
#include "os.h"

static char work_path[600], tmpl_path[600];

enum { KEPT_LEN = 5000 };

static fm_off_t *slot(struct fm_info *fi, int i)
{
    return (fm_off_t *)fm_root(fi) + i;
}

static void make_template(void)
{
    unlink(tmpl_path);
    struct fm_options o = {.initial_size = 1 << 20, .flags = FM_CREATE};
    struct fm_info *fi;
    require_eq(fm_open(tmpl_path, &o, &fi), 0);
    unsigned char *kept = fm_malloc_to(fi, slot(fi, 0), KEPT_LEN);
    require_true(kept != NULL);
    for (int i = 0; i < KEPT_LEN; i++)
        kept[i] = (unsigned char)(i * 13 + 1);
    require_eq(fm_close(fi), 0);
}

/* A whole session: open, a little work, close. */
static int session(unsigned flags)
{
    struct fm_options o = {.flags = flags};
    struct fm_info *fi;
    int err = fm_open(work_path, &o, &fi);
    if (err)
        return err;
    void *p = fm_malloc_to(fi, slot(fi, 1), 200);
    fm_free(fi, fm_malloc(fi, 3000));
    fm_free_from(fi, slot(fi, 1));
    (void)p;
    return fm_close(fi);
}

static int session_sync(void) { return session(0); }
static int session_nosync(void) { return session(FM_NOSYNC); }

/* An open whose msync of the dirty mark fails: it must take the mark back. */
static int failed_open(void)
{
    os_fault_set(OS_FAULT_MSYNC, EIO, 0);
    struct fm_info *fi;
    int err = fm_open(work_path, &(struct fm_options){0}, &fi);
    if (err == 0)
        fm_close(fi);
    return err == EIO ? 0 : -1;
}

/* The copy opens, checks, and holds the template's block. */
static bool copy_is_good(const char *name, long k)
{
    struct fm_info *fi;
    int err = fm_open(work_path, &(struct fm_options){.flags = FM_NOSYNC}, &fi);
    if (err) {
        fprintf(stderr, "%s: step %ld: open refused: %s (%s)\n", name, k, fm_strerror(err),
                fm_last_error_detail());
        return false;
    }
    bool ok = fm_check(fi) == 0;
    if (!ok)
        fprintf(stderr, "%s: step %ld: check: %s\n", name, k, fm_check_message(fi));
    const unsigned char *kept = fm_pointer(fi, *slot(fi, 0));
    for (int i = 0; ok && i < KEPT_LEN; i++)
        ok = kept && kept[i] == (unsigned char)(i * 13 + 1);
    if (!ok)
        fprintf(stderr, "%s: step %ld: the kept block is damaged\n", name, k);
    fm_close(fi);
    return ok;
}

static void walk(const char *name, int (*run)(void))
{
    harness_copy_file(tmpl_path, work_path);
    fm__cp_arm(0);
    require_eq(run(), 0);
    long steps = fm__cp_disarm();
    expect_true(steps > 0);

    long bad = 0;
    for (long k = 1; k <= steps + 1; k++) {
        harness_copy_file(tmpl_path, work_path);
        pid_t pid = fork();
        require_true(pid >= 0);
        if (pid == 0) {
            fm__cp_arm(k);
            _exit(run() == 0 ? 0 : 3);
        }
        int status;
        require_true(waitpid(pid, &status, 0) == pid);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (code != (k <= steps ? FM_CP_EXIT : 0)) {
            fprintf(stderr, "%s: step %ld: child exit %d\n", name, k, code);
            bad++;
        } else if (!copy_is_good(name, k)) {
            bad++;
        }
    }
    expect_eq(bad, 0);
    printf("%-40s %4ld steps, %ld copies refused or damaged\n", name, steps, bad);
}

int main(void)
{
    const char *dir = harness_tmpdir();
    snprintf(work_path, sizeof work_path, "%s/work.fm", dir);
    snprintf(tmpl_path, sizeof tmpl_path, "%s/template.fm", dir);
    make_template();

    walk("open, work, close (synced)", session_sync);
    walk("open, work, close (FM_NOSYNC)", session_nosync);
    walk("open whose dirty mark fails to sync", failed_open);
    return harness_done();
}
