/*
 * test_reopen_moved.c -- structures linked with FM_PTR survive being mapped
 * at another address.
 *
 * Builds a linked list and a chained hash table (bucket array, entries,
 * separately allocated values) in an arena, closes it, blocks the old base
 * address with an anonymous PROT_NONE mapping so the kernel must map the
 * arena elsewhere, reopens, checks that fi->mem moved, and reads every
 * structure back; then grows them at the new address and reads everything
 * once more after a third open.
 */
#include <fmalloc.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "arena_util.h"
#include "harness.h"

#define LIST_NODES 2000
#define TABLE_BUCKETS 64
#define TABLE_ENTRIES 1500
#define BLOCK_BYTES (64 * 1024)

struct node {
    uint64_t val;
    FM_PTR(struct node) next;
    FM_PTR(struct node) self; /* points at its own node */
};

struct entry;
/* A named FM_PTR type, so an array of them can itself be pointed to. */
typedef FM_PTR(struct entry) entry_ptr;

struct entry {
    entry_ptr next;
    uint64_t key;
    uint32_t val_len;
    FM_PTR(char) val; /* a separate block holding "value <key>" */
};

struct root {
    FM_PTR(struct node) head;
    FM_PTR(struct node) tail;
    uint64_t nodes;
    FM_PTR(entry_ptr) buckets; /* array of TABLE_BUCKETS chain heads */
    uint64_t entries;
};

static void list_append(struct fm_info *fi, struct root *r, uint64_t val)
{
    struct node *n = fm_malloc(fi, sizeof *n);
    require_true(n != NULL);
    n->val = val;
    FM_PTR_SET(fi, n->next, NULL);
    FM_PTR_SET(fi, n->self, n);
    struct node *tail = FM_PTR_GET(fi, r->tail);
    if (tail)
        FM_PTR_SET(fi, tail->next, n);
    else
        FM_PTR_SET(fi, r->head, n);
    FM_PTR_SET(fi, r->tail, n);
    r->nodes++;
}

static void table_put(struct fm_info *fi, struct root *r, uint64_t key)
{
    char buf[64];
    int len = snprintf(buf, sizeof buf, "value %" PRIu64, key);
    struct entry *e = fm_malloc(fi, sizeof *e);
    require_true(e != NULL);
    char *v = fm_malloc(fi, (size_t)len);
    require_true(v != NULL);
    memcpy(v, buf, (size_t)len);
    e->key = key;
    e->val_len = (uint32_t)len;
    FM_PTR_SET(fi, e->val, v);
    entry_ptr *slot = FM_PTR_GET(fi, r->buckets) + key % TABLE_BUCKETS;
    e->next = *slot; /* copying an FM_PTR keeps its meaning */
    FM_PTR_SET(fi, *slot, e);
    r->entries++;
}

/* Append nodes first_node.. and put keys k * 7919 for k in [first_k, first_k + keys). */
static void build(struct fm_info *fi, uint64_t first_node, uint64_t nodes, uint64_t first_k,
                  uint64_t keys)
{
    struct root *r = fm_root(fi);
    if (FM_PTR_ISNULL(r->buckets)) {
        void *b = fm_calloc(fi, TABLE_BUCKETS, sizeof(fm_off_t));
        require_true(b != NULL);
        FM_PTR_SET(fi, r->buckets, b);
    }
    for (uint64_t i = 0; i < nodes; i++)
        list_append(fi, r, first_node + i);
    for (uint64_t k = first_k; k < first_k + keys; k++)
        table_put(fi, r, k * 7919);
}

/* Read every structure back: nodes 0..nodes-1 in order, every key present. */
static void verify(struct fm_info *fi, uint64_t nodes, uint64_t keys)
{
    struct root *r = fm_root(fi);
    expect_eq(r->nodes, nodes);
    expect_eq(r->entries, keys);

    uint64_t i = 0;
    struct node *last = NULL;
    for (struct node *n = FM_PTR_GET(fi, r->head); n; n = FM_PTR_GET(fi, n->next)) {
        if (n->val != i || FM_PTR_GET(fi, n->self) != n) {
            expect_eq(n->val, i);
            expect_true(FM_PTR_GET(fi, n->self) == n);
            break;
        }
        require_true((char *)n > (char *)fi->mem);
        last = n;
        i++;
    }
    expect_eq(i, nodes);
    expect_true(FM_PTR_GET(fi, r->tail) == last);

    entry_ptr *buckets = FM_PTR_GET(fi, r->buckets);
    require_true(buckets != NULL);
    uint64_t seen = 0, bad = 0;
    for (unsigned b = 0; b < TABLE_BUCKETS; b++) {
        for (struct entry *e = FM_PTR_GET(fi, buckets[b]); e; e = FM_PTR_GET(fi, e->next)) {
            char want[64];
            int len = snprintf(want, sizeof want, "value %" PRIu64, e->key);
            const char *v = FM_PTR_GET(fi, e->val);
            if (e->key % TABLE_BUCKETS != b || !v || e->val_len != (uint32_t)len
                || memcmp(v, want, (size_t)len) != 0)
                bad++;
            seen++;
        }
    }
    expect_eq(bad, 0);
    expect_eq(seen, keys);
    /* And each key can be found through its bucket. */
    for (uint64_t k = 0; k < keys; k++) {
        uint64_t key = k * 7919;
        struct entry *e = FM_PTR_GET(fi, buckets[key % TABLE_BUCKETS]);
        while (e && e->key != key)
            e = FM_PTR_GET(fi, e->next);
        if (!e) {
            expect_true(e != NULL);
            break;
        }
    }
    int err = fm_check(fi);
    if (err)
        fprintf(stderr, "fm_check: %s\n", fm_check_message(fi));
    expect_eq(err, 0);
}

int main(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/moved.fm", harness_tmpdir());

    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    build(fi, 0, LIST_NODES, 0, TABLE_ENTRIES);
    verify(fi, LIST_NODES, TABLE_ENTRIES);
    void *old_base = fi->mem;
    expect_eq(fm_close(fi), 0);

    /* Occupy the old base so the next mapping must go somewhere else. */
    void *block = mmap(old_base, BLOCK_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    require_true(block != MAP_FAILED);
    if (block != old_base)
        fprintf(stderr, "blocker landed at %p, not at the old base %p (was the arena unmapped?)\n",
                block, old_base);
    require_true(block == old_base);

    fi = require_open(path, (struct fm_options){0});
    printf("old base %p, new base %p\n", old_base, fi->mem);
    expect_true(fi->mem != old_base);
    verify(fi, LIST_NODES, TABLE_ENTRIES);

    /* Grow both structures at the new address; read it all back again. */
    build(fi, LIST_NODES, 500, TABLE_ENTRIES, 300);
    verify(fi, LIST_NODES + 500, TABLE_ENTRIES + 300);
    expect_eq(fm_close(fi), 0);

    expect_eq(munmap(block, BLOCK_BYTES), 0);
    fi = require_open(path, (struct fm_options){0});
    printf("third base %p\n", fi->mem);
    verify(fi, LIST_NODES + 500, TABLE_ENTRIES + 300);
    expect_eq(fm_close(fi), 0);

    /* A read-only open sees the same structures. */
    fi = require_open(path, (struct fm_options){.flags = FM_RDONLY});
    verify(fi, LIST_NODES + 500, TABLE_ENTRIES + 300);
    expect_eq(fm_close(fi), 0);

    return harness_done();
}
