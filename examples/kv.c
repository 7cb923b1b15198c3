/*
 * kv.c -- a persistent key-value store: a chained hash table in an arena.
 *
 *   kv FILE put KEY VALUE   insert, or replace the value of KEY
 *   kv FILE get KEY         print the value (exit 1 if KEY is missing)
 *   kv FILE del KEY         remove KEY (exit 1 if it is missing)
 *   kv FILE list            print every "KEY<tab>VALUE"
 *   kv FILE stats           entries, buckets, heap figures and fm_check()
 *
 * Layout, every link an fm_off_t (FM_PTR):
 *
 *   fm_root():  struct kv_root -> table
 *   table:      struct kv_table { nbuckets, new_nbuckets, slot[nbuckets] }
 *   slot[i]:    chain of struct kv_entry { next, hash, key_len, val_len,
 *                                          key bytes, value bytes }
 *
 * The table doubles when it holds as many entries as buckets: fm_realloc_to()
 * grows the bucket array (moving it if it must, relinking root->table in the
 * same atomic step), then each chain is split between bucket i and i + n.
 *
 * Crash safety: a process killed at any instruction leaves a store in which
 * every operation either happened or did not, and nothing leaks.  The rules:
 *   - a new entry is allocated straight into root->pending (fm_malloc_to),
 *     filled in, and made visible by one 8-byte store of its offset into a
 *     bucket slot or a predecessor's next field: that store is the commit;
 *   - an entry being removed (deleted, or replaced by a new version) is first
 *     recorded in root->old, unlinked by one store, then freed with
 *     fm_free_from(&root->old), which frees it and clears the record at once;
 *   - an entry moving to its new bucket during doubling is recorded in
 *     root->moving; a doubling in progress is new_nbuckets != nbuckets.
 * kv_repair() reads those records at open and finishes or undoes the work.
 */
#include <fmalloc.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAGIC UINT64_C(0x31764b6d66) /* "fmKv1" */
#define KV_MIN_BUCKETS 8u

struct kv_entry {
    FM_PTR(struct kv_entry) next; /* next entry in the same bucket */
    uint64_t hash;                /* kv_hash() of the key */
    uint32_t key_len;             /* in bytes */
    uint32_t val_len;             /* in bytes */
    char data[];                  /* key_len key bytes, then val_len value bytes */
};

/*
 * nbuckets is a power of two; an entry lives in slot[hash & (nbuckets - 1)].
 * While doubling, new_nbuckets == 2 * nbuckets and slot[] has that many
 * entries (the upper half zeroed first); otherwise new_nbuckets == nbuckets.
 */
struct kv_table {
    uint64_t nbuckets;
    uint64_t new_nbuckets;
    FM_PTR(struct kv_entry) slot[];
};

/* Lives in fm_root(); zero-filled when the arena is created. */
struct kv_root {
    uint64_t magic;                 /* KV_MAGIC once initialised */
    FM_PTR(struct kv_table) table;  /* the bucket array */
    uint64_t count;                 /* entries in the table */
    FM_PTR(struct kv_entry) pending; /* entry being inserted, not yet (or just) linked */
    FM_PTR(struct kv_entry) old;    /* entry being removed, maybe still linked */
    FM_PTR(struct kv_entry) moving; /* entry moving to its new bucket while doubling */
};

static const char *prog = "kv";

/* FNV-1a, then a final mix so that the low bits (the bucket) use every byte. */
static uint64_t kv_hash(const char *key, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

static size_t table_bytes(uint64_t nbuckets)
{
    return sizeof(struct kv_table) + (size_t)nbuckets * sizeof(fm_off_t);
}

static struct kv_entry *entry_at(struct fm_info *fi, fm_off_t off)
{
    return fm_pointer(fi, off);
}

/* The slot that links the entry at `off`, or NULL if no chain reaches it. */
static fm_off_t *kv_linking_slot(struct fm_info *fi, struct kv_table *t, fm_off_t off)
{
    struct kv_entry *e = entry_at(fi, off);
    fm_off_t *s = &t->slot[e->hash & (t->nbuckets - 1)].off;
    while (*s && *s != off)
        s = &entry_at(fi, *s)->next.off;
    return *s ? s : NULL;
}

/* The entry holding key (and in *slot_out the slot linking it), or NULL. */
static struct kv_entry *kv_find(struct fm_info *fi, struct kv_table *t, const char *key,
                                size_t key_len, uint64_t hash, fm_off_t **slot_out)
{
    fm_off_t *s = &t->slot[hash & (t->nbuckets - 1)].off;
    for (struct kv_entry *e; (e = entry_at(fi, *s)) != NULL; s = &e->next.off) {
        if (e->hash == hash && e->key_len == key_len && memcmp(e->data, key, key_len) == 0) {
            if (slot_out)
                *slot_out = s;
            return e;
        }
    }
    return NULL;
}

/* Move every entry of buckets [0, nbuckets) that belongs higher up. */
static void kv_split_all(struct fm_info *fi, struct kv_root *root, struct kv_table *t)
{
    uint64_t mask = t->new_nbuckets - 1;
    for (uint64_t i = 0; i < t->nbuckets; i++) {
        fm_off_t *s = &t->slot[i].off;
        while (*s) {
            struct kv_entry *e = entry_at(fi, *s);
            uint64_t j = e->hash & mask;
            if (j == i) {
                s = &e->next.off;
                continue;
            }
            root->moving.off = *s;            /* remember it while it is in no chain */
            *s = e->next.off;                 /* out of bucket i */
            e->next.off = t->slot[j].off;
            t->slot[j].off = root->moving.off; /* head of bucket j */
            root->moving.off = 0;
        }
    }
}

/* Double the table.  0, or an errno value (the table is unchanged). */
static int kv_grow(struct fm_info *fi, struct kv_root *root)
{
    struct kv_table *t = FM_PTR_GET(fi, root->table);
    uint64_t n = t->nbuckets;
    if (n > SIZE_MAX / 2 / sizeof(fm_off_t) - 1)
        return ENOMEM;
    /* Atomic: root->table links the old or the new (maybe moved) array. */
    t = fm_realloc_to(fi, &root->table.off, table_bytes(2 * n));
    if (!t)
        return errno;
    memset(&t->slot[n], 0, (size_t)n * sizeof(fm_off_t));
    t->new_nbuckets = 2 * n; /* doubling in progress: the upper half is valid */
    kv_split_all(fi, root, t);
    t->nbuckets = 2 * n;     /* the commit */
    return 0;
}

/* A table that is safe to index, or NULL. */
static struct kv_table *kv_table(struct fm_info *fi, struct kv_root *root)
{
    struct kv_table *t = FM_PTR_GET(fi, root->table);
    if (!t)
        return NULL;
    uint64_t n = t->nbuckets;
    if (n < KV_MIN_BUCKETS || (n & (n - 1)) || (t->new_nbuckets != n && t->new_nbuckets != 2 * n)
        || n > SIZE_MAX / 2 / sizeof(fm_off_t) - 1
        || fm_usable_size(fi, t) < table_bytes(t->new_nbuckets))
        return NULL;
    return t;
}

/*
 * Finish or undo whatever a crash interrupted (see the file comment), then
 * recount.  Cheap when there is nothing to do.
 */
static void kv_repair(struct fm_info *fi, struct kv_root *root, struct kv_table *t)
{
    bool repaired = false;
    if (t->new_nbuckets != t->nbuckets) {
        if (root->moving.off) {
            fm_off_t off = root->moving.off;
            struct kv_entry *e = entry_at(fi, off);
            fm_off_t *head = &t->slot[e->hash & (t->new_nbuckets - 1)].off;
            if (*head != off && !kv_linking_slot(fi, t, off)) {
                /* Unlinked from its old bucket, not yet in its new one. */
                e->next.off = *head;
                *head = off;
            }
            root->moving.off = 0;
        }
        kv_split_all(fi, root, t);
        t->nbuckets = t->new_nbuckets;
        repaired = true;
    }
    if (root->pending.off) {
        if (kv_linking_slot(fi, t, root->pending.off))
            root->pending.off = 0;               /* committed: keep it */
        else
            fm_free_from(fi, &root->pending.off); /* never visible: drop it */
        repaired = true;
    }
    if (root->old.off) {
        if (kv_linking_slot(fi, t, root->old.off))
            root->old.off = 0;                   /* not removed after all */
        else
            fm_free_from(fi, &root->old.off);    /* removed: finish freeing */
        repaired = true;
    }
    if (repaired) {
        uint64_t count = 0;
        for (uint64_t i = 0; i < t->nbuckets; i++)
            for (struct kv_entry *e = FM_PTR_GET(fi, t->slot[i]); e; e = FM_PTR_GET(fi, e->next))
                count++;
        root->count = count;
    }
}

/* Set up an empty table in a fresh arena.  0, or an errno value. */
static int kv_create(struct fm_info *fi, struct kv_root *root)
{
    if (root->table.off)                  /* a first run that crashed */
        fm_free_from(fi, &root->table.off);
    struct kv_table *t = fm_malloc_to(fi, &root->table.off, table_bytes(KV_MIN_BUCKETS));
    if (!t)
        return errno;
    memset(t, 0, table_bytes(KV_MIN_BUCKETS));
    t->nbuckets = t->new_nbuckets = KV_MIN_BUCKETS;
    root->count = 0;
    root->magic = KV_MAGIC; /* the commit */
    return 0;
}

/* A new entry in root->pending, filled in but not linked; NULL with errno. */
static struct kv_entry *kv_new_entry(struct fm_info *fi, struct kv_root *root, const char *key,
                                     size_t key_len, uint64_t hash, const char *val,
                                     size_t val_len)
{
    if (key_len > UINT32_MAX || val_len > UINT32_MAX) {
        errno = E2BIG;
        return NULL;
    }
    struct kv_entry *e = fm_malloc_to(fi, &root->pending.off, sizeof *e + key_len + val_len);
    if (!e)
        return NULL;
    e->next.off = 0;
    e->hash = hash;
    e->key_len = (uint32_t)key_len;
    e->val_len = (uint32_t)val_len;
    memcpy(e->data, key, key_len);
    memcpy(e->data + key_len, val, val_len);
    return e;
}

/* Insert or replace.  0, or an errno value (the store is unchanged). */
static int kv_put(struct fm_info *fi, struct kv_root *root, const char *key, const char *val)
{
    size_t key_len = strlen(key), val_len = strlen(val);
    uint64_t hash = kv_hash(key, key_len);
    struct kv_table *t = FM_PTR_GET(fi, root->table);
    fm_off_t *s;
    struct kv_entry *cur = kv_find(fi, t, key, key_len, hash, &s);

    if (cur) {
        /* Copy on write: the old version stays intact until the new one is in. */
        struct kv_entry *e = kv_new_entry(fi, root, key, key_len, hash, val, val_len);
        if (!e)
            return errno;
        e->next.off = cur->next.off;
        root->old.off = *s;
        *s = root->pending.off; /* the commit */
        root->pending.off = 0;
        fm_free_from(fi, &root->old.off);
        return 0;
    }

    if (root->count >= t->nbuckets) {
        int err = kv_grow(fi, root);
        if (err)
            return err;
        t = FM_PTR_GET(fi, root->table);
    }
    struct kv_entry *e = kv_new_entry(fi, root, key, key_len, hash, val, val_len);
    if (!e)
        return errno;
    fm_off_t *head = &t->slot[hash & (t->nbuckets - 1)].off;
    e->next.off = *head;
    *head = root->pending.off; /* the commit */
    root->count++;
    root->pending.off = 0;
    return 0;
}

/* Remove key.  true if it was there. */
static bool kv_del(struct fm_info *fi, struct kv_root *root, const char *key)
{
    size_t key_len = strlen(key);
    fm_off_t *s;
    struct kv_entry *e = kv_find(fi, FM_PTR_GET(fi, root->table), key, key_len,
                                 kv_hash(key, key_len), &s);
    if (!e)
        return false;
    root->old.off = *s;
    *s = e->next.off; /* the commit */
    root->count--;
    fm_free_from(fi, &root->old.off);
    return true;
}

static int kv_stats(struct fm_info *fi, struct kv_root *root, struct kv_table *t)
{
    struct fm_stats st;
    int err = fm_stats(fi, &st);
    if (err) {
        fprintf(stderr, "%s: fm_stats: %s\n", prog, fm_strerror(err));
        return 1;
    }
    uint64_t longest = 0, used = 0;
    for (uint64_t i = 0; i < t->nbuckets; i++) {
        uint64_t len = 0;
        for (struct kv_entry *e = FM_PTR_GET(fi, t->slot[i]); e; e = FM_PTR_GET(fi, e->next))
            len++;
        used += len != 0;
        longest = len > longest ? len : longest;
    }
    printf("entries: %" PRIu64 "\n", root->count);
    printf("buckets: %" PRIu64 " (%" PRIu64 " in use, longest chain %" PRIu64 ")\n", t->nbuckets,
           used, longest);
    printf("file size: %" PRIu64 " bytes\n", st.file_size);
    printf("allocated: %" PRIu64 " bytes in %" PRIu64 " blocks\n", st.allocated_bytes,
           st.allocated_count);
    printf("free: %" PRIu64 " bytes in %" PRIu64 " blocks (largest %" PRIu64 ", top %" PRIu64
           ")\n",
           st.free_bytes, st.free_blocks, st.largest_free, st.top_size);
    err = fm_check(fi);
    if (err) {
        printf("check: FAILED: %s (%s)\n", fm_strerror(err), fm_check_message(fi));
        return 1;
    }
    printf("check: ok\n");
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: %s FILE put KEY VALUE\n"
            "       %s FILE get KEY | del KEY | list | stats\n",
            prog, prog);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *path = argv[1], *cmd = argv[2];
    int nargs = argc - 3;
    if (!((strcmp(cmd, "put") == 0 && nargs == 2)
          || ((strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) && nargs == 1)
          || ((strcmp(cmd, "list") == 0 || strcmp(cmd, "stats") == 0) && nargs == 0)))
        return usage();

    /* Only put creates the file; the other commands need it to exist. */
    struct fm_options opt = {0};
    opt.flags = strcmp(cmd, "put") == 0 ? FM_CREATE : 0;
    struct fm_info *fi;
    int err = fm_open(path, &opt, &fi);
    if (err) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, fm_strerror(err));
        return 1;
    }

    int status = 0;
    struct kv_root *root = fm_root(fi);
    _Static_assert(sizeof(struct kv_root) <= 8192, "the root fits the root region");
    struct kv_table *t = NULL;
    if (root->magic == 0) {
        err = kv_create(fi, root);
        if (err) {
            fprintf(stderr, "%s: %s: cannot create the table: %s\n", prog, path, fm_strerror(err));
            status = 1;
        }
    } else if (root->magic != KV_MAGIC) {
        fprintf(stderr, "%s: %s: the arena holds something other than a kv store\n", prog, path);
        status = 1;
    }
    if (!status && !(t = kv_table(fi, root))) {
        fprintf(stderr, "%s: %s: the bucket array is damaged\n", prog, path);
        status = 1;
    }
    if (!status)
        kv_repair(fi, root, t);

    if (status) {
        /* nothing more */
    } else if (strcmp(cmd, "put") == 0) {
        err = kv_put(fi, root, argv[3], argv[4]);
        if (err) {
            fprintf(stderr, "%s: %s: cannot put '%s': %s\n", prog, path, argv[3], fm_strerror(err));
            status = 1;
        }
    } else if (strcmp(cmd, "get") == 0) {
        size_t len = strlen(argv[3]);
        struct kv_entry *e = kv_find(fi, t, argv[3], len, kv_hash(argv[3], len), NULL);
        if (e) {
            fwrite(e->data + e->key_len, 1, e->val_len, stdout);
            putchar('\n');
        } else {
            fprintf(stderr, "%s: %s: key '%s' not found\n", prog, path, argv[3]);
            status = 1;
        }
    } else if (strcmp(cmd, "del") == 0) {
        if (!kv_del(fi, root, argv[3])) {
            fprintf(stderr, "%s: %s: key '%s' not found\n", prog, path, argv[3]);
            status = 1;
        }
    } else if (strcmp(cmd, "list") == 0) {
        for (uint64_t i = 0; i < t->nbuckets; i++)
            for (struct kv_entry *e = FM_PTR_GET(fi, t->slot[i]); e; e = FM_PTR_GET(fi, e->next)) {
                fwrite(e->data, 1, e->key_len, stdout);
                putchar('\t');
                fwrite(e->data + e->key_len, 1, e->val_len, stdout);
                putchar('\n');
            }
    } else {
        status = kv_stats(fi, root, t);
    }

    err = fm_close(fi);
    if (err && !status) {
        fprintf(stderr, "%s: %s: cannot close: %s\n", prog, path, fm_strerror(err));
        status = 1;
    }
    return status;
}
