/*
 * format_doc.c -- prints the on-disk layout as the code defines it, for
 * check_format_doc.sh to compare with the tables in docs/format.md.
 *
 * Unit test (internals: format.h for the superblock and the constants,
 * heap.h for the chunk fields and tree_index(), tcache.h for the largest
 * cached chunk, which bounds recovery's sweep).  One line per fact:
 *
 *   superblock NAME OFFSET SIZE COUNT   a field of struct fmt_superblock
 *   log_entry  NAME OFFSET SIZE COUNT   a field of struct fmt_log_entry
 *   journal    NAME OFFSET SIZE COUNT   a field of struct jnl_header (the
 *                                       FM_DURABLE journal, journal.h)
 *   jrecord    NAME OFFSET SIZE COUNT   a field of struct jnl_record (one
 *                                       commit in that journal)
 *   constant   NAME VALUE               a #define of the format
 *   chunk      NAME OFFSET SIZE         a chunk field (F_* in heap.h)
 *   treebin    I FROM BELOW SHIFT       tree bin I holds chunk sizes in
 *                                       [FROM, BELOW); BELOW is "none" for
 *                                       the last bin; SHIFT is tree_key_shift
 *   tag        C SALT BITS HEAD         the head word ch_tagged() makes for
 *                                       chunk offset C, salt SALT and
 *                                       size|flags BITS (the doc's worked
 *                                       examples, so the tag hash is pinned)
 *   marker     C SALT MARKER            the cached-block marker
 *                                       ch_cache_marker() makes for chunk
 *                                       offset C and salt SALT (pinned the
 *                                       same way)
 *
 * COUNT is the array length, or "-" for a scalar field.  VALUE is printed
 * the way the doc writes it (decimal, or 0x... for flag bits); the magic is
 * its bytes in hex, run together (the script drops the doc's spaces).
 *
 * Beyond printing, it fails (exit 1) if the struct has implicit padding
 * (the doc's table would then not account for every byte), or if the tree
 * bin ranges it prints disagree with tree_index() at any range boundary.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "format.h"
#include "heap.h"
#include "journal.h"
#include "tcache.h"

static int failures;
static size_t next_off; /* where the next field must start: no padding */

static void field(const char *table, const char *name, size_t off, size_t size, size_t count)
{
    if (count)
        printf("%s %s %zu %zu %zu\n", table, name, off, size, count);
    else
        printf("%s %s %zu %zu -\n", table, name, off, size);
    if (off != next_off) {
        fprintf(stderr, "format_doc: %s.%s starts at %zu, previous field ends at %zu (padding)\n",
                table, name, off, next_off);
        failures++;
    }
    next_off = off + size;
}

/* Field f of struct type T, printed as a row of `table`; an array's count
 * is its length. */
#define MEMBER(T, f) (((T *)0)->f)
#define STRUCT_FIELD(table, T, f) field(table, #f, offsetof(T, f), sizeof MEMBER(T, f), 0)
#define STRUCT_ARRAY(table, T, f)                                                  \
    field(table, #f, offsetof(T, f), sizeof MEMBER(T, f),                          \
          sizeof MEMBER(T, f) / sizeof MEMBER(T, f)[0])

#define SB_FIELD(f) STRUCT_FIELD("superblock", struct fmt_superblock, f)
#define SB_ARRAY(f) STRUCT_ARRAY("superblock", struct fmt_superblock, f)
#define LOG_FIELD(f) STRUCT_FIELD("log_entry", struct fmt_log_entry, f)
#define JNL_FIELD(f) STRUCT_FIELD("journal", struct jnl_header, f)
#define JNL_ARRAY(f) STRUCT_ARRAY("journal", struct jnl_header, f)
#define JREC_FIELD(f) STRUCT_FIELD("jrecord", struct jnl_record, f)
#define JREC_ARRAY(f) STRUCT_ARRAY("jrecord", struct jnl_record, f)

/* After a struct's last field: the fields must cover all of it. */
static void fields_end(const char *strct, size_t size)
{
    if (next_off != size) {
        fprintf(stderr, "format_doc: %s fields end at %zu, the struct has %zu bytes "
                        "(a field is missing here or there is tail padding)\n",
                strct, next_off, size);
        failures++;
    }
}

#define CONST_DEC(c) printf("constant %s %llu\n", #c, (unsigned long long)(c))
#define CONST_HEX(c) printf("constant %s 0x%llx\n", #c, (unsigned long long)(c))
#define CONST_HEX64(c) printf("constant %s 0x%016llx\n", #c, (unsigned long long)(c))
#define CHUNK(c) printf("chunk %s %u 8\n", #c, (unsigned)(c))

static void print_superblock(void)
{
    next_off = 0;
    SB_ARRAY(sb_magic);
    SB_FIELD(sb_version);
    SB_FIELD(sb_header_size);
    SB_FIELD(sb_page_size);
    SB_FIELD(sb_id_flags);
    SB_FIELD(sb_root_off);
    SB_FIELD(sb_root_size);
    SB_FIELD(sb_heap_off);
    SB_ARRAY(sb_arena_id);
    SB_FIELD(sb_created_ns);
    SB_ARRAY(sb_id_reserved);
    SB_FIELD(sb_id_checksum);
    SB_FIELD(sb_state_checksum);
    SB_FIELD(sb_file_size);
    SB_FIELD(sb_generation);
    SB_FIELD(sb_state_flags);
    SB_FIELD(sb_state_pad);
    SB_FIELD(sb_top);
    SB_FIELD(sb_dv);
    SB_FIELD(sb_smallmap);
    SB_FIELD(sb_treemap);
    SB_FIELD(sb_names);
    SB_FIELD(sb_shared);
    SB_ARRAY(sb_state_reserved);
    SB_ARRAY(sb_smallbins);
    SB_ARRAY(sb_treebins);
    SB_FIELD(sb_log_count);
    SB_FIELD(sb_log_pad);
    SB_ARRAY(sb_log);
    fields_end("superblock", sizeof(struct fmt_superblock));

    next_off = 0;
    LOG_FIELD(off);
    LOG_FIELD(old);
    fields_end("fmt_log_entry", sizeof(struct fmt_log_entry));
}

static void print_journal(void)
{
    next_off = 0;
    JNL_ARRAY(jh_magic);
    JNL_FIELD(jh_version);
    JNL_FIELD(jh_page_size);
    JNL_ARRAY(jh_arena_id);
    JNL_FIELD(jh_epoch);
    JNL_ARRAY(jh_reserved);
    JNL_FIELD(jh_checksum);
    fields_end("jnl_header", sizeof(struct jnl_header));
    next_off = 0;
    JREC_ARRAY(jr_magic);
    JREC_FIELD(jr_epoch);
    JREC_FIELD(jr_seq);
    JREC_FIELD(jr_file_size);
    JREC_FIELD(jr_npages);
    JREC_FIELD(jr_commit);
    JREC_FIELD(jr_reserved);
    JREC_FIELD(jr_checksum);
    fields_end("jnl_record", sizeof(struct jnl_record));
}

static void print_constants(void)
{
    const unsigned char *m = (const unsigned char *)FMT_MAGIC;
    printf("constant FMT_MAGIC");
    for (int i = 0; i < FMT_MAGIC_LEN; i++)
        printf("%s%02x", i ? "" : " ", m[i]);
    printf("\n");
    CONST_DEC(FMT_MAGIC_LEN);
    CONST_DEC(FMT_VERSION);
    CONST_DEC(FMT_HEADER_SIZE);
    CONST_DEC(FMT_ROOT_OFF);
    CONST_DEC(FMT_ROOT_SIZE);
    CONST_DEC(FMT_HEAP_OFF);
    CONST_DEC(FMT_ID_CHECKED_LEN);
    CONST_DEC(FMT_STATE_CHECKED_OFF);
    CONST_DEC(FMT_MIN_FILE);
    CONST_DEC(FMT_NSMALLBINS);
    CONST_DEC(FMT_NTREEBINS);
    CONST_DEC(FMT_LOG_CAP);
    CONST_HEX(SB_DIRTY);
    CONST_HEX(CH_PINUSE);
    CONST_HEX(CH_CINUSE);
    CONST_HEX(CH_FLAGS);
    CONST_HEX64(CH_SIZE_MASK);
    CONST_DEC(CH_TAG_SHIFT);
    CONST_DEC(CH_ALIGN);
    CONST_DEC(CH_MIN);
    CONST_DEC(CH_TREE_MIN);
    CONST_DEC(CH_OVERHEAD);
    CONST_DEC(CH_PAYLOAD);
    CONST_HEX(TREE_NODE_FLAG);
    CONST_HEX(CH_PUNCHED);
    CONST_DEC(CH_PUNCH_MIN);
    CONST_DEC(CH_PUNCH_KEEP);
    CONST_HEX64(FMT_NAMES_MAGIC);
    CONST_DEC(FMT_NAMES_TOMB);
    CONST_DEC(FMT_NAMES_MIN_SLOTS);
    CONST_HEX64(FMT_SHARED_MAGIC);
    CONST_HEX(FMT_SHARED_ABI_GLIBC);
    CONST_HEX(FMT_SHARED_ABI_OTHER);
    CONST_DEC(FMT_SHARED_MUTEX_MAX);
    CONST_DEC(FM_NAME_MAX);
    CONST_DEC(CH_MARKER_OFF);
    CONST_DEC(TC_MAX_CHUNK);
}

/* The worked examples of format.md: the salt of its example arena, its
 * first chunk (an in-use 112-byte chunk) and its top (1036176 bytes at
 * 12400); and the cached-block markers of 112-byte chunks at 12288 and
 * 12400 in that arena. */
#define EXAMPLE_SALT 0x82c2995872ebf6d9ull

static void print_tags(void)
{
    static const struct {
        uint64_t c, salt, bits;
    } ex[] = {
        {12288, EXAMPLE_SALT, 112 | CH_PINUSE | CH_CINUSE},
        {12400, EXAMPLE_SALT, 1036176 | CH_PINUSE},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        printf("tag %llu 0x%016llx 0x%llx 0x%016llx\n", (unsigned long long)ex[i].c,
               (unsigned long long)ex[i].salt, (unsigned long long)ex[i].bits,
               (unsigned long long)ch_tagged(ex[i].c, ex[i].salt, ex[i].bits));
}

static void print_markers(void)
{
    static const uint64_t chunks[] = {12288, 12400};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        printf("marker %llu 0x%016llx 0x%016llx\n", (unsigned long long)chunks[i],
               (unsigned long long)EXAMPLE_SALT,
               (unsigned long long)ch_cache_marker(chunks[i], EXAMPLE_SALT));
}

static void print_chunk_fields(void)
{
    CHUNK(F_PREVFOOT);
    CHUNK(F_HEAD);
    CHUNK(F_FD);
    CHUNK(F_BK);
    CHUNK(F_CHILD0);
    CHUNK(F_CHILD1);
    CHUNK(F_PARENT);
    CHUNK(F_INDEX);
}

/* Tree bin i: sizes [512 << i/2, 768 << i/2) for even i, [768 << i/2,
 * 1024 << i/2) for odd i; the last bin has no upper end.  Checked against
 * tree_index() on both sides of every boundary. */
static void print_tree_bins(void)
{
    for (unsigned i = 0; i < FMT_NTREEBINS; i++) {
        uint64_t from = (uint64_t)(i % 2 ? 768 : 512) << (i / 2);
        uint64_t below = (uint64_t)(i % 2 ? 1024 : 768) << (i / 2);
        bool last = i == FMT_NTREEBINS - 1;
        if (tree_index(from) != i || (i > 0 && tree_index(from - CH_ALIGN) != i - 1) ||
            (!last && tree_index(below - CH_ALIGN) != i) ||
            (!last && tree_index(below) != i + 1)) {
            fprintf(stderr, "format_doc: tree bin %u is not [%llu, %llu) by tree_index()\n", i,
                    (unsigned long long)from, (unsigned long long)below);
            failures++;
        }
        if (last)
            printf("treebin %u %llu none %u\n", i, (unsigned long long)from, tree_key_shift(i));
        else
            printf("treebin %u %llu %llu %u\n", i, (unsigned long long)from,
                   (unsigned long long)below, tree_key_shift(i));
    }
    /* The last bin takes every larger size, up to the largest chunk. */
    if (tree_index(UINT64_MAX & ~(uint64_t)CH_FLAGS) != FMT_NTREEBINS - 1) {
        fprintf(stderr, "format_doc: tree_index() out of range at the extremes\n");
        failures++;
    }
}

int main(void)
{
    print_superblock();
    print_journal();
    print_constants();
    print_chunk_fields();
    print_tree_bins();
    print_tags();
    print_markers();
    return failures ? 1 : 0;
}
