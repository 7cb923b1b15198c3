/*
 * format.h -- the on-disk layout of an arena file, format version 2.
 *
 * Layer: format (no system calls).  This header is the single source of
 * truth for every byte of the file; docs/format.md mirrors it field for
 * field.  All integers are little-endian and fixed-width; there are no
 * pointers in the file, only offsets from its start.
 *
 *   0        4096              12288                                 file_size
 *   | super- | app root (8 KiB)  | heap: boundary-tag chunks ... | top chunk |
 *   | block  |                   |                                           |
 *
 * Invariants owned here:
 *   - identity part (bytes 0..127) is written once at creation and covered
 *     by sb_id_checksum (XXH3-64 of bytes 0..119);
 *   - state part (bytes 128..4095): when SB_DIRTY is clear, sb_state_checksum
 *     is the XXH3-64 of bytes 136..4095 and sb_log_count is 0;
 *   - heap_off <= top < file_size, file_size is a multiple of page_size.
 */
#ifndef FM_FORMAT_H
#define FM_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmalloc.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fmalloc's file format is little-endian; big-endian hosts are not supported yet"
#endif

#define FMT_MAGIC "\x89" "FMHEAP\n" /* 8 bytes; the high byte catches 7-bit mangling */
#define FMT_MAGIC_LEN 8
#define FMT_VERSION FM_FORMAT_VERSION
#define FMT_HEADER_SIZE 4096u
#define FMT_ROOT_OFF 4096u
#define FMT_ROOT_SIZE 8192u
#define FMT_HEAP_OFF 12288u
#define FMT_ID_CHECKED_LEN 120u   /* sb_id_checksum covers bytes [0, 120) */
#define FMT_STATE_CHECKED_OFF 136u /* sb_state_checksum covers [136, 4096) */
#define FMT_MIN_FILE (64u * 1024)  /* smallest arena file */

#define FMT_NSMALLBINS 32
#define FMT_NTREEBINS 32
#define FMT_LOG_CAP 209

/* sb_state_flags */
#define SB_DIRTY 0x1u /* open read-write, or its last writer did not close it */

/* One undo-log record: the word at `off` held `old` before this operation. */
struct fmt_log_entry {
    uint64_t off;
    uint64_t old;
};

/*
 * The superblock, 4096 bytes at offset 0.
 *
 * Heap state (sb_top ... sb_treebins) is owned by heap.c and changes only
 * through the undo log (log.h); see docs/design.md for which words each
 * operation writes.  A zero offset in a bin head means an empty bin.
 */
struct fmt_superblock {
    /* ---- identity: written once at creation ---- */
    char sb_magic[8];            /*   0 FMT_MAGIC */
    uint32_t sb_version;         /*   8 FMT_VERSION */
    uint32_t sb_header_size;     /*  12 4096 */
    uint32_t sb_page_size;       /*  16 page size of the creating machine */
    uint32_t sb_id_flags;        /*  20 reserved, 0 */
    uint64_t sb_root_off;        /*  24 4096 */
    uint64_t sb_root_size;       /*  32 8192 */
    uint64_t sb_heap_off;        /*  40 12288 */
    uint8_t sb_arena_id[16];     /*  48 random at creation */
    uint64_t sb_created_ns;      /*  64 creation time, ns since the Unix epoch */
    uint8_t sb_id_reserved[48];  /*  72 zero */
    uint64_t sb_id_checksum;     /* 120 XXH3-64 of bytes 0..119 */
    /* ---- state: changes at run time ---- */
    uint64_t sb_state_checksum;  /* 128 XXH3-64 of bytes 136..4095, valid when clean */
    uint64_t sb_file_size;       /* 136 end of the heap = size of the file */
    uint64_t sb_generation;      /* 144 read-write opens so far */
    uint32_t sb_state_flags;     /* 152 SB_DIRTY */
    uint32_t sb_state_pad;       /* 156 zero */
    uint64_t sb_top;             /* 160 offset of the top chunk */
    uint64_t sb_dv;              /* 168 designated victim chunk, 0 if none */
    uint32_t sb_smallmap;        /* 176 bit i: small bin i non-empty */
    uint32_t sb_treemap;         /* 180 bit i: tree bin i non-empty */
    uint64_t sb_names;           /* 184 name directory: its table block, 0 = none (names.c) */
    uint64_t sb_shared;          /* 192 shared-writer block's payload while FM_SHARED opens run, else 0 */
    uint64_t sb_state_reserved[3]; /* 200 zero */
    uint64_t sb_smallbins[FMT_NSMALLBINS]; /* 224 heads of free lists, chunk offsets */
    uint64_t sb_treebins[FMT_NTREEBINS];   /* 480 roots of size tries */
    uint64_t sb_log_count;       /* 736 valid records in sb_log; 0 = no operation in flight */
    uint64_t sb_log_pad;         /* 744 zero */
    struct fmt_log_entry sb_log[FMT_LOG_CAP]; /* 752 undo records, oldest first */
};

_Static_assert(sizeof(struct fmt_superblock) == FMT_HEADER_SIZE, "superblock is one 4 KiB page");
_Static_assert(offsetof(struct fmt_superblock, sb_version) == 8, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_page_size) == 16, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_root_off) == 24, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_heap_off) == 40, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_arena_id) == 48, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_created_ns) == 64, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_id_checksum) == FMT_ID_CHECKED_LEN, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_state_checksum) == 128, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_file_size) == FMT_STATE_CHECKED_OFF, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_state_flags) == 152, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_top) == 160, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_smallmap) == 176, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_names) == 184, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_shared) == 192, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_state_reserved) == 200, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_smallbins) == 224, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_treebins) == 480, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_log_count) == 736, "layout");
_Static_assert(offsetof(struct fmt_superblock, sb_log) == 752, "layout");
_Static_assert(FMT_ROOT_OFF + FMT_ROOT_SIZE == FMT_HEAP_OFF, "root region ends where the heap starts");

/*
 * The name directory (lib/names.c): a hash table with open addressing and
 * linear probing, kept in ordinary allocated blocks.  sb_names is the
 * offset (payload) of the table block; each slot holds 0 (never used),
 * FMT_NAMES_TOMB (its entry was unbound) or the payload offset of an entry
 * block.  Invariants (fm_check verifies them):
 *   - nt_nslots is a power of two >= FMT_NAMES_MIN_SLOTS and the block
 *     holds all of them; nt_count entries and nt_used - nt_count tombstones
 *     are in the slots; nt_used * 4 <= nt_nslots * 3;
 *   - each entry is an allocated block holding 1..FM_NAME_MAX name bytes
 *     (no control bytes) and a NUL; ne_hash == XXH3-64 of the name, and
 *     probing from ne_hash reaches the entry's slot before any empty slot;
 *     no two entries have the same name;
 *   - ne_target lies in the root region or the heap.
 */
#define FMT_NAMES_MAGIC 0x0053454d414e4d46ull /* "FMNAMES\0" read little-endian */
#define FMT_NAMES_TOMB 1u
#define FMT_NAMES_MIN_SLOTS 16u

struct fmt_names_table {
    uint64_t nt_magic;    /*  0 FMT_NAMES_MAGIC */
    uint64_t nt_nslots;   /*  8 slots, a power of two */
    uint64_t nt_count;    /* 16 bound names */
    uint64_t nt_used;     /* 24 slots not empty: names + tombstones */
    uint64_t nt_slots[];  /* 32 entry offsets */
};
_Static_assert(offsetof(struct fmt_names_table, nt_slots) == 32, "layout");

struct fmt_name_entry {
    uint64_t ne_target;   /*  0 the bound offset */
    uint64_t ne_hash;     /*  8 XXH3-64 of the name */
    uint64_t ne_len;      /* 16 name bytes, without the NUL */
    char ne_name[];       /* 24 the name and a NUL */
};
_Static_assert(offsetof(struct fmt_name_entry, ne_name) == 24, "layout");

/*
 * The shared-writer block (lib/shared.c): while processes have the arena
 * open with FM_SHARED, sb_shared is the payload offset of an ordinary
 * allocated block holding the arena lock they all take.  The first opener
 * of a fresh set allocates it (or takes over one a dead set left); the last
 * closer frees it, so a clean arena has sb_shared == 0 and reads exactly as
 * one no shared opener ever used.  Its words are not undo-logged: only the
 * lock's holder writes them, and a fresh set initialises them again.
 *   - sh_abi names the lock's layout: FMT_SHARED_ABI_* of the C library
 *     with the size of its pthread_mutex_t in the low 16 bits; an opener
 *     built on another refuses the arena (ENOTSUP) rather than misread it;
 *   - sh_mutex is a process-shared, robust pthread mutex: when its holder
 *     dies, the next locker rolls back the dead holder's logged operation;
 *   - sh_holder says which open last held it: its pid << 24 | the open's
 *     number in that process (an open that finds another's there rereads
 *     what it keeps of the heap).
 */
#define FMT_SHARED_MAGIC 0x4445524148534d46ull /* "FMSHARED" read little-endian */
#define FMT_SHARED_ABI_GLIBC (1u << 16)
#define FMT_SHARED_ABI_OTHER (2u << 16)
#define FMT_SHARED_MUTEX_MAX 64u

struct fmt_shared {
    uint64_t sh_magic;    /*  0 FMT_SHARED_MAGIC */
    uint32_t sh_abi;      /*  8 lock layout: C library << 16 | sizeof(pthread_mutex_t) */
    uint32_t sh_pad;      /* 12 zero */
    uint64_t sh_repairs;  /* 16 dead holders rolled back since the set began */
    uint64_t sh_holder;   /* 24 last holder: pid << 24 | its open's number */
    uint64_t sh_reserved[4]; /* 32 zero */
    unsigned char sh_mutex[FMT_SHARED_MUTEX_MAX]; /* 64 the lock */
};
_Static_assert(offsetof(struct fmt_shared, sh_mutex) == 64, "layout");
_Static_assert(sizeof(struct fmt_shared) == 128, "layout");

/*
 * Heap chunks (boundary tags), all offsets and sizes multiples of 16:
 *
 *   chunk c:  c+0   prev_foot  size of the previous chunk if it is free
 *                              (else the last word of its payload)
 *             c+8   head       tag << 48 | size | CH_PINUSE | CH_CINUSE
 *             c+16  payload    (what fm_malloc returns), when in use;
 *                   when free: fd, bk (free list), and for tree chunks
 *                   child[0], child[1], parent, bin index (see heap.h)
 *   next chunk at c + size; a free chunk's size is repeated in the next
 *   chunk's prev_foot.  An in-use chunk's payload runs to c + size + 8.
 */
#define CH_PINUSE 0x1u /* previous chunk is in use */
#define CH_CINUSE 0x2u /* this chunk is in use */
#define CH_PUNCHED 0x4u /* free chunk or top whose pages may be holes (never on in-use chunks) */
#define CH_FLAGS 0xfull
#define CH_ALIGN 16u
#define CH_MIN 32u      /* smallest chunk: prev_foot, head, fd, bk */
#define CH_TREE_MIN 512u /* chunks of this size and more live in tree bins */
#define CH_OVERHEAD 8u  /* bytes an in-use chunk costs beyond its payload */
#define CH_PUNCH_MIN (1ull << 20) /* free chunks this big give their pages back */
#define CH_PUNCH_KEEP 64u /* bytes at a punched chunk's start that stay real: head and links */
#define CH_PAYLOAD 16u  /* payload offset from the chunk */
#define CH_SIZE_MASK 0x0000fffffffffff0ull /* bits 4..47 of head: the size */
#define CH_TAG_SHIFT 48

/*
 * The top 16 bits of every chunk head are a tag: a hash of the chunk's own
 * offset, the arena's salt (the first 8 bytes of sb_arena_id, read
 * little-endian) and the head's other 48 bits (size and flags).  A header
 * copied to another place, or from another arena, fails the tag, so freeing
 * a pointer into the middle of a block is caught even when the bytes in
 * front of it look like a header; and a head whose size or flags were
 * damaged fails it too, so a head that passes can be trusted on its own
 * (the thread caches' free path reads nothing else).
 */
#define CH_LOW_MASK 0x0000ffffffffffffull /* head bits the tag covers: size and flags */
static inline uint64_t ch_tag(uint64_t c, uint64_t head, uint64_t salt)
{
    uint64_t x = ((c ^ salt) * 0x9e3779b97f4a7c15ull) ^ (head & CH_LOW_MASK);
    return (x * 0xbf58476d1ce4e5b9ull) >> CH_TAG_SHIFT;
}

static inline uint64_t ch_tagged(uint64_t c, uint64_t salt, uint64_t size_and_flags)
{
    uint64_t low = size_and_flags & CH_LOW_MASK;
    return low | ch_tag(c, low, salt) << CH_TAG_SHIFT;
}

static inline bool ch_head_ok(uint64_t c, uint64_t head, uint64_t salt)
{
    return head >> CH_TAG_SHIFT == ch_tag(c, head, salt);
}

/*
 * A block held by a thread cache (lib/tcache.h) is a chunk in use whose
 * payload word 1 (chunk + 24) holds this marker.  Odd, so it is never a
 * free-list link (16-aligned).  Recovery frees every in-use chunk holding
 * its marker; a clean arena holds none.
 */
static inline uint64_t ch_cache_marker(uint64_t c, uint64_t salt)
{
    return ((c ^ ~salt) * 0xd6e8feb86659fd93ull) | 1;
}
#define CH_MARKER_OFF 24u /* from the chunk: payload word 1 */
#define CH_CACHE_MAX 1040u /* thread caches hold chunks up to this size */

static inline uint64_t fmt_salt(const void *sb)
{
    uint64_t s;
    __builtin_memcpy(&s, (const char *)sb + 48, sizeof s); /* sb_arena_id */
    return s;
}

/* Byte-level helpers shared by format.c and the tools. */
uint64_t fmt_id_checksum(const void *sb);
uint64_t fmt_state_checksum(const void *sb);
/* Fill a new superblock (identity and an empty heap) into buf[4096]. */
void fmt_init_superblock(void *buf, uint64_t file_size, uint64_t page_size,
                         const uint8_t id[16], uint64_t now_ns);
/* Validate the identity part: 0 or FM_EBADMAGIC/EVERSION/ECHECKSUM/EPAGESIZE/EGEOMETRY. */
int fmt_check_identity(const void *sb, uint64_t page_size);
/* Are the n bytes at p all zero (a file nobody has written)? */
bool fmt_all_zero(const void *p, size_t n);
/* What a file's first n bytes (hdr, zero past n) are, once known not to
 * be all zero: FM_ETRUNCATED (a beginning of the magic, then the file
 * ends), FM_EBADMAGIC, else fmt_check_identity's verdict.  fm_open and
 * fmtool info judge a header through this one function. */
int fmt_classify_header(const unsigned char hdr[FMT_HEADER_SIZE], size_t n, uint64_t page_size);
/* Validate the state part against the real file size (cheap: no heap walk).
 * 0, FM_ETRUNCATED, FM_ECHECKSUM (clean but state damaged), FM_ECORRUPT. */
int fmt_check_state(const void *sb, uint64_t real_size, uint64_t page_size, char *why,
                    size_t why_len);
/* The heap fields of the state part point into the heap (bins agree with
 * their bitmaps).  0 or FM_ECORRUPT with a reason in why. */
int fmt_check_heap_fields(const void *sb, char *why, size_t why_len);
/* A superblock exactly as creation writes it: never opened, one top chunk
 * (tells an interrupted creation from a used arena that lost its magic). */
bool fmt_is_pristine(const void *sb);
/* Every undo record names a word the log may restore, inside [0, mapped_size).
 * 0 or FM_ECORRUPT. */
int fmt_check_log(const void *sb, uint64_t mapped_size, char *why, size_t why_len);

#endif
