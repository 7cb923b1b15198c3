/*
 * test_fm_ptr_layout.cpp -- the file layout of structs holding fm_ptr,
 * pinned at compile time.  Built by meson with the project's C++ compiler
 * and, by cross_compiler.sh, with g++ and clang++ under the original
 * fmalloc's flags (-O3 -Werror -Wall -Wextra -std=c++11): every compiler
 * must give the numbers the original fmalloc's packed fm_ptr gives, or
 * files written by one build read back wrong under another.
 *
 * Also: FM_PTR(T) from the C header is typed in C++ (FM_PTR_GET returns T *).
 */
#include <fmalloc.hpp>

#include <cstddef>
#include <cstdio>

/* The list node of the original fmalloc's example. */
struct node {
    int val;
    fm_ptr<struct node> next;
} __attribute__((packed));
static_assert(sizeof(node) == 12, "packed list node: 12 bytes");
static_assert(offsetof(node, next) == 4, "packed list node: next at 4");

/* Its root object at fi->mem + PAGE_SIZE. */
struct app_super {
    fm_ptr<struct node> head;
};
static_assert(sizeof(app_super) == 8 && alignof(app_super) == 1, "root: one fm_ptr");

/* Not packed: fm_ptr has alignment 1, so no padding before it either. */
struct loose {
    char tag;
    fm_ptr<loose> next;
    short s;
    fm_ptr<char> name;
};
static_assert(sizeof(loose) == 20, "unpacked: 1 + 8 + 2 + 8, plus 1 byte before s");
static_assert(offsetof(loose, next) == 1 && offsetof(loose, s) == 10 && offsetof(loose, name) == 12,
              "unpacked: fm_ptr follows without padding");

/* A tree node, packed, with an array of links. */
struct tnode {
    unsigned long key;
    unsigned char height;
    fm_ptr<struct tnode> child[2];
    fm_ptr<void> value;
} __attribute__((packed));
static_assert(sizeof(tnode) == 33 && offsetof(tnode, child) == 9 && offsetof(tnode, value) == 25,
              "packed tree node");

/* Opting in to alignment keeps 8-byte links aligned (fm_malloc_to slots). */
struct aligned_node {
    int val;
    alignas(8) fm_ptr<aligned_node> next;
};
static_assert(sizeof(aligned_node) == 16 && offsetof(aligned_node, next) == 8, "alignas(8)");

/* FM_PTR from the C header, in C++: FM_PTR_GET is typed. */
struct c_node {
    long val;
    FM_PTR(struct c_node) next;
};
static_assert(sizeof(c_node) == 16, "FM_PTR is 8-byte aligned, as in C");

c_node *c_next(struct fm_info *fi, c_node *n);
c_node *c_next(struct fm_info *fi, c_node *n)
{
    c_node *m = FM_PTR_GET(fi, n->next); /* no cast: T *, not void * */
    FM_PTR_SET(fi, n->next, m);
    FM_PTR_SET(fi, n->next, NULL);
    return m;
}

int main()
{
    /* Nothing to run: the static_asserts are the test.  Print the layout
       so a failing cross-compiler run shows both compilers' numbers. */
    std::printf("node %zu/%zu loose %zu tnode %zu\n", sizeof(node), offsetof(node, next),
                sizeof(loose), sizeof(tnode));
    return 0;
}
