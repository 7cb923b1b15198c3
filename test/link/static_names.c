/*
 * static_names.c -- a program that links libfmalloc.a statically and has
 * functions named like the library's internals (os_open, heap_free,
 * tree_insert, tc_init).  With an archive that lets internals out as
 * globals, the link fails ("multiple definition of `os_open'"), or worse,
 * the library calls the program's functions.  With the localized archive
 * (scripts/localize_archive.sh) both sets coexist: the program's are
 * called by the program, the library's by the library.
 */
#include <fmalloc.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The application's own functions, deliberately named like internals of
 * the os, heap and tcache layers. */
int os_open(const char *path);
int heap_free(int x);
int tree_insert(int x);
int tc_init(void);

static int app_calls;

int os_open(const char *path)
{
    app_calls++;
    return (int)strlen(path);
}

int heap_free(int x)
{
    app_calls++;
    return x + 1;
}

int tree_insert(int x)
{
    app_calls++;
    return x * 2;
}

int tc_init(void)
{
    app_calls++;
    return 42;
}

int main(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/static.fm", harness_tmpdir());

    /* The library's open must reach its own os_open and tc_init. */
    struct fm_options opt = {.flags = FM_CREATE};
    struct fm_info *fi = NULL;
    require_eq(fm_open(path, &opt, &fi), 0);
    expect_eq(app_calls, 0);
    void *p = fm_malloc(fi, 100);
    require_true(p != NULL);
    memset(p, 0xab, 100);
    fm_free(fi, p);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);

    /* And the program's names reach the program's functions. */
    expect_eq(os_open("abc"), 3);
    expect_eq(heap_free(1), 2);
    expect_eq(tree_insert(4), 8);
    expect_eq(tc_init(), 42);
    expect_eq(app_calls, 4);

    unlink(path);
    rmdir(harness_tmpdir());
    return harness_done();
}
