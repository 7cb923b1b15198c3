/*
 * format.c -- building and validating the superblock.
 *
 * Layer: format.  Pure functions over a 4 KiB buffer: no system calls, no
 * trust in the buffer's contents.  Validation order is the order a user
 * would want the reasons in: not an arena at all, another version, damaged
 * header, then impossible geometry.
 */
#include "format.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

uint64_t fmt_id_checksum(const void *sb)
{
    return XXH3_64bits(sb, FMT_ID_CHECKED_LEN);
}

uint64_t fmt_state_checksum(const void *sb)
{
    return XXH3_64bits((const char *)sb + FMT_STATE_CHECKED_OFF,
                       FMT_HEADER_SIZE - FMT_STATE_CHECKED_OFF);
}

void fmt_init_superblock(void *buf, uint64_t file_size, uint64_t page_size,
                         const uint8_t id[16], uint64_t now_ns)
{
    struct fmt_superblock *sb = buf;
    memset(sb, 0, sizeof *sb);
    memcpy(sb->sb_magic, FMT_MAGIC, FMT_MAGIC_LEN);
    sb->sb_version = FMT_VERSION;
    sb->sb_header_size = FMT_HEADER_SIZE;
    sb->sb_page_size = (uint32_t)page_size;
    sb->sb_root_off = FMT_ROOT_OFF;
    sb->sb_root_size = FMT_ROOT_SIZE;
    sb->sb_heap_off = FMT_HEAP_OFF;
    memcpy(sb->sb_arena_id, id, 16);
    sb->sb_created_ns = now_ns;
    sb->sb_id_checksum = fmt_id_checksum(sb);

    sb->sb_file_size = file_size;
    sb->sb_top = FMT_HEAP_OFF; /* the whole heap is one top chunk */
    sb->sb_state_checksum = fmt_state_checksum(sb);
}

int fmt_check_identity(const void *buf, uint64_t page_size)
{
    const struct fmt_superblock *sb = buf;
    if (memcmp(sb->sb_magic, FMT_MAGIC, FMT_MAGIC_LEN) != 0)
        return FM_EBADMAGIC;
    if (sb->sb_version != FMT_VERSION)
        return FM_EVERSION;
    if (sb->sb_id_checksum != fmt_id_checksum(sb))
        return FM_ECHECKSUM;
    if (sb->sb_page_size != page_size)
        return FM_EPAGESIZE;
    if (sb->sb_header_size != FMT_HEADER_SIZE || sb->sb_root_off != FMT_ROOT_OFF ||
        sb->sb_root_size != FMT_ROOT_SIZE || sb->sb_heap_off != FMT_HEAP_OFF)
        return FM_EGEOMETRY;
    return 0;
}

/* A chunk offset recorded in the superblock: aligned and inside the heap. */
static int chunk_off_ok(uint64_t off, uint64_t file_size)
{
    return off >= FMT_HEAP_OFF && off % CH_ALIGN == 0 && off + CH_MIN <= file_size;
}

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), FM_ECORRUPT)

int fmt_check_state(const void *buf, uint64_t real_size, uint64_t page_size, char *why,
                    size_t why_len)
{
    const struct fmt_superblock *sb = buf;
    uint64_t fsize = sb->sb_file_size;
    bool dirty = sb->sb_state_flags & SB_DIRTY;

    if (!dirty && sb->sb_state_checksum != fmt_state_checksum(sb)) {
        snprintf(why, why_len, "state checksum mismatch in a cleanly closed arena");
        return FM_ECHECKSUM;
    }
    if (fsize < FMT_MIN_FILE || fsize % page_size != 0)
        return WHY("recorded file size %llu is impossible", (unsigned long long)fsize);
    if (real_size < fsize) {
        snprintf(why, why_len, "file has %llu bytes, header says %llu",
                 (unsigned long long)real_size, (unsigned long long)fsize);
        return FM_ETRUNCATED;
    }
    if (sb->sb_state_flags & ~SB_DIRTY)
        return WHY("unknown state flags 0x%x", (unsigned)sb->sb_state_flags);
    if (sb->sb_log_count > FMT_LOG_CAP)
        return WHY("log holds %llu records, at most %d fit",
                   (unsigned long long)sb->sb_log_count, FMT_LOG_CAP);
    if (!dirty && sb->sb_log_count != 0)
        return WHY("clean arena with an operation in its log");
    /* The log is checked before recovery; the heap fields only matter once
     * recovery has rolled it back, so a dirty arena checks them later. */
    if (dirty)
        return 0;
    return fmt_check_heap_fields(sb, why, why_len);
}

int fmt_check_heap_fields(const void *buf, char *why, size_t why_len)
{
    const struct fmt_superblock *sb = buf;
    uint64_t fsize = sb->sb_file_size;
    if (fsize < FMT_MIN_FILE || fsize % CH_ALIGN)
        return WHY("recorded file size %llu is impossible", (unsigned long long)fsize);
    if (!chunk_off_ok(sb->sb_top, fsize))
        return WHY("top chunk offset %llu out of range", (unsigned long long)sb->sb_top);
    if (sb->sb_dv && !chunk_off_ok(sb->sb_dv, fsize))
        return WHY("designated victim offset %llu out of range", (unsigned long long)sb->sb_dv);
    for (int i = 0; i < FMT_NSMALLBINS; i++) {
        uint64_t h = sb->sb_smallbins[i];
        if ((h != 0) != !!(sb->sb_smallmap & (1u << i)) || (h && !chunk_off_ok(h, fsize)))
            return WHY("small bin %d head %llu inconsistent", i, (unsigned long long)h);
    }
    for (int i = 0; i < FMT_NTREEBINS; i++) {
        uint64_t h = sb->sb_treebins[i];
        if ((h != 0) != !!(sb->sb_treemap & (1u << i)) || (h && !chunk_off_ok(h, fsize)))
            return WHY("tree bin %d root %llu inconsistent", i, (unsigned long long)h);
    }
    return 0;
}

int fmt_check_log(const void *buf, uint64_t mapped_size, char *why, size_t why_len)
{
    const struct fmt_superblock *sb = buf;
    if (sb->sb_log_count > FMT_LOG_CAP)
        return WHY("log holds %llu records, at most %d fit",
                   (unsigned long long)sb->sb_log_count, FMT_LOG_CAP);
    for (uint64_t i = 0; i < sb->sb_log_count; i++) {
        uint64_t off = sb->sb_log[i].off;
        /* The log may restore the heap's state words and words in the root
         * region or heap -- never the identity part, the generation, the
         * flags or the log itself. */
        bool in_state = off == offsetof(struct fmt_superblock, sb_file_size) ||
                        (off >= offsetof(struct fmt_superblock, sb_top) &&
                         off < offsetof(struct fmt_superblock, sb_log_count));
        bool in_heap = off >= FMT_ROOT_OFF && off <= mapped_size - 8;
        if (off % 8 != 0 || !(in_state || in_heap))
            return WHY("log record %llu names offset %llu, outside what it may restore",
                       (unsigned long long)i, (unsigned long long)off);
    }
    return 0;
}

bool fmt_all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

int fmt_classify_header(const unsigned char hdr[FMT_HEADER_SIZE], size_t n, uint64_t page_size)
{
    if (n < FMT_HEADER_SIZE)
        return memcmp(hdr, FMT_MAGIC, n < FMT_MAGIC_LEN ? n : FMT_MAGIC_LEN) == 0
                   ? FM_ETRUNCATED
                   : FM_EBADMAGIC;
    return fmt_check_identity(hdr, page_size);
}

bool fmt_is_pristine(const void *buf)
{
    const struct fmt_superblock *sb = buf;
    if (sb->sb_generation != 0 || sb->sb_state_flags != 0 || sb->sb_top != FMT_HEAP_OFF ||
        sb->sb_dv != 0 || sb->sb_smallmap != 0 || sb->sb_treemap != 0 || sb->sb_log_count != 0)
        return false;
    for (int i = 0; i < FMT_NSMALLBINS; i++)
        if (sb->sb_smallbins[i] || sb->sb_treebins[i])
            return false;
    return sb->sb_state_checksum == fmt_state_checksum(sb);
}
