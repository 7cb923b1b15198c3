/*
 * consumer.c -- a program as a user writes it against an installed
 * fmalloc: the public header and the library, nothing from the tree.
 *
 *   consumer FILE   create or open FILE, push a block on a list kept in
 *                   the root region, print "runs=N version=V format=F"
 *
 * Exit 0 when the list holds one block per run so far, the heap checks
 * clean and fm_version() agrees with the header it was compiled with.
 */
#include <fmalloc.h>
#include <stdio.h>
#include <string.h>

struct item {
    long run;
    FM_PTR(struct item) next;
};

struct root {
    FM_PTR(struct item) head;
    long runs;
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: consumer FILE\n");
        return 2;
    }
    int major, minor, patch, format;
    const char *v = fm_version(&major, &minor, &patch, &format);
    if (strcmp(v, FM_VERSION_STRING) != 0 || major != FM_VERSION_MAJOR ||
        minor != FM_VERSION_MINOR || patch != FM_VERSION_PATCH || format != FM_FORMAT_VERSION) {
        fprintf(stderr, "library %s (format %d) but header %s\n", v, format, FM_VERSION_STRING);
        return 1;
    }
    struct fm_options opt = {.flags = FM_CREATE};
    struct fm_info *fi;
    int err = fm_open(argv[1], &opt, &fi);
    if (err) {
        fprintf(stderr, "%s: %s\n", argv[1], fm_strerror(err));
        return 1;
    }
    struct root *r = fm_root(fi);
    fm_off_t old_head = r->head.off;
    struct item *it = fm_calloc_to(fi, &r->head.off, 1, sizeof *it); /* push in front */
    if (!it) {
        perror("fm_calloc_to");
        return 1;
    }
    it->next.off = old_head;
    it->run = r->runs++;
    long n = 0;
    for (struct item *p = FM_PTR_GET(fi, r->head); p; p = FM_PTR_GET(fi, p->next))
        n++;
    printf("runs=%ld version=%s format=%d\n", r->runs, v, format);
    int bad = n != r->runs || fm_check(fi) != 0;
    return (fm_close(fi) != 0 || bad) ? 1 : 0;
}
