/*
 * list.c -- a persistent singly linked list, the first fmalloc example.
 *
 *   list FILE               first run: create FILE and append 10 nodes (0..9);
 *                           later runs: print every value, one per line
 *   list FILE --append N    append N more nodes (values continue the count)
 *
 * The app root region (fm_root) holds the list's head and tail offsets and
 * its length; every link is an FM_PTR, so the file can be mapped anywhere.
 *
 * Crash safety (a kill at any instruction leaves a valid list, no leak):
 * a new node is allocated straight into root->pending with fm_malloc_to(),
 * so it is owned by the file from the first instant; it is filled in, then
 * linked by one 8-byte store (the tail's next, or head), and only then are
 * tail, count and pending updated.  list_repair() finishes or undoes an
 * append that a crash interrupted.
 */
#include <fmalloc.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAGIC UINT64_C(0x3174734c6d66) /* "fmLst1" */
#define LIST_INITIAL_NODES 10

struct node {
    int64_t val;
    FM_PTR(struct node) next;
};

/* Lives in fm_root(); zero-filled when the arena is created. */
struct list_root {
    uint64_t magic;               /* LIST_MAGIC once initialised */
    FM_PTR(struct node) head;     /* first node, 0 when empty */
    FM_PTR(struct node) tail;     /* last node; may lag one append after a crash */
    uint64_t count;               /* nodes reachable from head */
    FM_PTR(struct node) pending;  /* node being appended, 0 otherwise */
};

static const char *prog = "list";

static int fail(const char *path, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s: %s\n", prog, path, what, fm_strerror(err));
    return 1;
}

/* The true last node, following next from the (possibly stale) tail. */
static struct node *list_last(struct fm_info *fi, struct list_root *root)
{
    struct node *n = FM_PTR_GET(fi, root->tail);
    if (!n)
        n = FM_PTR_GET(fi, root->head);
    while (n && !FM_PTR_ISNULL(n->next))
        n = FM_PTR_GET(fi, n->next);
    return n;
}

/*
 * Bring the root back in line after a crash in list_append():
 *   pending set, not yet linked  -> free it (the append did not happen)
 *   pending set and linked       -> keep it (the append happened)
 * then recompute tail and count from the links.  Cheap when nothing is pending.
 */
static void list_repair(struct fm_info *fi, struct list_root *root)
{
    if (FM_PTR_ISNULL(root->pending))
        return;
    struct node *last = list_last(fi, root);
    if (last && fm_offset(fi, last) == root->pending.off)
        root->pending.off = 0;
    else
        fm_free_from(fi, &root->pending.off);
    uint64_t count = 0;
    for (struct node *n = FM_PTR_GET(fi, root->head); n; n = FM_PTR_GET(fi, n->next))
        count++;
    FM_PTR_SET(fi, root->tail, last);
    root->count = count;
}

/* Append one node holding val.  0, or an errno value. */
static int list_append(struct fm_info *fi, struct list_root *root, int64_t val)
{
    struct node *n = fm_malloc_to(fi, &root->pending.off, sizeof *n);
    if (!n)
        return errno;
    n->val = val;
    FM_PTR_SET(fi, n->next, NULL);

    struct node *tail = FM_PTR_GET(fi, root->tail);
    if (tail)
        FM_PTR_SET(fi, tail->next, n); /* the commit point */
    else
        FM_PTR_SET(fi, root->head, n); /* the commit point */
    FM_PTR_SET(fi, root->tail, n);
    root->count++;
    root->pending.off = 0;
    return 0;
}

static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 100000000)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long append = -1;
    if (argc == 4 && strcmp(argv[2], "--append") == 0) {
        if (parse_count(argv[3], &append) != 0) {
            fprintf(stderr, "%s: --append needs a count, not '%s'\n", prog, argv[3]);
            return 2;
        }
    } else if (argc != 2) {
        fprintf(stderr, "usage: %s FILE [--append N]\n", prog);
        return 2;
    }
    const char *path = argv[1];

    struct fm_options opt = {0};
    opt.flags = FM_CREATE;
    struct fm_info *fi;
    int err = fm_open(path, &opt, &fi);
    if (err)
        return fail(path, "cannot open", err);

    struct list_root *root = fm_root(fi);
    _Static_assert(sizeof(struct list_root) <= 8192, "the root fits the root region");
    int status = 0;

    if (root->magic != LIST_MAGIC && root->magic != 0) {
        fprintf(stderr, "%s: %s: the arena holds something other than a list\n", prog, path);
        fm_close(fi);
        return 1;
    }
    if (root->magic == 0) {
        /* New arena (or a first run that crashed before finishing). */
        list_repair(fi, root);
        for (int64_t v = (int64_t)root->count; v < LIST_INITIAL_NODES && !status; v++) {
            err = list_append(fi, root, v);
            if (err)
                status = fail(path, "cannot append", err);
        }
        if (!status) {
            root->magic = LIST_MAGIC;
            printf("created %s with %d nodes (0..%d)\n", path, LIST_INITIAL_NODES,
                   LIST_INITIAL_NODES - 1);
        }
    } else {
        list_repair(fi, root);
        if (append < 0) {
            uint64_t seen = 0;
            for (struct node *n = FM_PTR_GET(fi, root->head); n; n = FM_PTR_GET(fi, n->next)) {
                printf("%" PRId64 "\n", n->val);
                seen++;
            }
            if (seen != root->count) {
                fprintf(stderr, "%s: %s: %" PRIu64 " nodes linked but the count says %" PRIu64 "\n",
                        prog, path, seen, root->count);
                status = 1;
            }
        }
    }

    if (append > 0 && !status) {
        for (long i = 0; i < append && !status; i++) {
            err = list_append(fi, root, (int64_t)root->count);
            if (err)
                status = fail(path, "cannot append", err);
        }
        if (!status)
            printf("appended %ld nodes, %" PRIu64 " in total\n", append, root->count);
    }

    err = fm_close(fi);
    if (err && !status)
        status = fail(path, "cannot close", err);
    return status;
}
