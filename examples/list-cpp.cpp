/*
 * list-cpp.cpp -- the persistent list in the style of the original fmalloc's
 * C++ demo: fmalloc_init() + fmalloc() + fm_ptr<T>, which reads and writes
 * like a plain pointer.
 *
 *   list-cpp FILE    first run: create FILE and write 10 nodes (0..9);
 *                    later runs: print them
 *
 * Programs written for the original fmalloc build against fmalloc.hpp
 * unchanged apart from the include line.
 */
#include <fmalloc.hpp>

#include <stdio.h>

struct node {
    int val;
    fm_ptr<struct node> next;
};

/* Kept in the 8 KiB app root region at offset 4096 (also fm_root(fi)). */
struct app_data {
    fm_ptr<struct node> head;
};

static void append(struct app_data *ad, int val)
{
    struct node *n = (struct node *)fmalloc(sizeof(struct node));
    if (!n) {
        fprintf(stderr, "list-cpp: fmalloc: %s\n", fm_strerror(fm_last_error()));
        exit(1);
    }
    n->val = val;
    n->next = NULL;

    if (!ad->head) {
        ad->head = n;
        return;
    }
    struct node *last = ad->head;
    while (last->next)
        last = last->next;
    last->next = n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: list-cpp FILE\n");
        return 2;
    }

    bool init = false;
    struct fm_info *fi = fmalloc_init(argv[1], &init);
    if (!fi) {
        fprintf(stderr, "list-cpp: %s: %s\n", argv[1], fm_strerror(fm_last_error()));
        return 1;
    }
    fmalloc_set_target(fi);

    struct app_data *ad = (struct app_data *)((unsigned long)fi->mem + 4096);

    if (init) {
        for (int i = 0; i < 10; i++)
            append(ad, i);
        printf("wrote 10 nodes\n");
    } else {
        for (struct node *n = ad->head; n; n = n->next)
            printf("%d\n", n->val);
    }

    int err = fm_close(fi);
    if (err) {
        fprintf(stderr, "list-cpp: %s: %s\n", argv[1], fm_strerror(err));
        return 1;
    }
    return 0;
}
