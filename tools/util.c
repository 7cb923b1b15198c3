/*
 * util.c -- what every fmtool command uses: error lines, JSON strings,
 * sizes for people, opening an arena read-only, and the bounded chunk walk.
 *
 * The walk reads the mapping of an arena opened with FM_RDONLY: chunks tile
 * [FMT_HEAP_OFF, sb_top) and the top chunk is [sb_top, sb_file_size)
 * (lib/format.h).  It trusts nothing it has not bounded first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmtool.h"
#include "heap.h"
#include "os.h"

/* ---- messages ---------------------------------------------------------------- */

void tool_error(const char *file, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout); /* keep the line after whatever was already printed */
    fputs("fmtool: ", stderr);
    if (file)
        fprintf(stderr, "%s: ", file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *tool_err_name(int err)
{
    static const struct {
        int code;
        const char *name;
    } names[] = {
        {FM_EBADMAGIC, "FM_EBADMAGIC"},
        {FM_EVERSION, "FM_EVERSION"},
        {FM_ECHECKSUM, "FM_ECHECKSUM"},
        {FM_ETRUNCATED, "FM_ETRUNCATED"},
        {FM_ECORRUPT, "FM_ECORRUPT"},
        {FM_ELOCKED, "FM_ELOCKED"},
        {FM_EPAGESIZE, "FM_EPAGESIZE"},
        {FM_EEMPTY, "FM_EEMPTY"},
        {FM_EGEOMETRY, "FM_EGEOMETRY"},
        {FM_EBADPTR, "FM_EBADPTR"},
        {FM_ENOTFILE, "FM_ENOTFILE"},
        {ENOENT, "ENOENT"},
        {EACCES, "EACCES"},
        {EPERM, "EPERM"},
        {EISDIR, "EISDIR"},
        {ENOMEM, "ENOMEM"},
        {EIO, "EIO"},
        {ENOSPC, "ENOSPC"},
        {EEXIST, "EEXIST"},
        {EROFS, "EROFS"},
        {EINVAL, "EINVAL"},
        {ENOTDIR, "ENOTDIR"},
        {EXDEV, "EXDEV"},
        {EBUSY, "EBUSY"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == err)
            return names[i].name;
    return NULL;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    int n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1fu;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0fu;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07u;
    else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool tool_utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (int n; *p; p += n)
        if (!(n = utf8_len(p)))
            return false;
    return true;
}

void json_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    while (*p) {
        int n = utf8_len(p);
        if (n == 0) { /* a file name need not be UTF-8; JSON must be */
            fputs("\\ufffd", out);
            p++;
        } else if (*p == '"' || *p == '\\') {
            fputc('\\', out);
            fputc(*p++, out);
        } else if (*p == '\n') {
            fputs("\\n", out), p++;
        } else if (*p == '\t') {
            fputs("\\t", out), p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p++);
        } else {
            fwrite(p, 1, (size_t)n, out);
            p += n;
        }
    }
    fputc('"', out);
}

void json_error(const char *file, int err, const char *reason)
{
    const char *name = tool_err_name(err);
    printf("{\n  \"file\": ");
    json_string(stdout, file ? file : "");
    printf(",\n  \"status\": \"%s\",\n  \"error\": {\n    \"code\": %d,\n    \"name\": ",
           err == FM_ECORRUPT ? "corrupt" : "error", err);
    if (name)
        json_string(stdout, name);
    else
        printf("null");
    printf(",\n    \"message\": ");
    json_string(stdout, fm_strerror(err));
    printf(",\n    \"reason\": ");
    if (reason && reason[0])
        json_string(stdout, reason);
    else
        printf("null");
    printf("\n  }\n}\n");
}

const char *human_size(uint64_t n, char buf[32])
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0])
        v /= 1024, u++;
    if (u == 0)
        snprintf(buf, 32, "%llu bytes", (unsigned long long)n);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

int tool_fail(const struct tool_args *a, int err, const char *why)
{
    /* fm_strerror(FM_ECORRUPT) speaks to programmers (which call says
     * where); a command line user gets the where itself. */
    const char *what = err == FM_ECORRUPT ? "corrupt: the heap is inconsistent and cannot be "
                                            "recovered"
                                          : fm_strerror(err);
    if (why && why[0])
        tool_error(a->file, "%s: %s", what, why);
    else
        tool_error(a->file, "%s", what);
    if (a->json)
        json_error(a->file, err, why);
    return err == FM_ECORRUPT ? EXIT_CORRUPT : EXIT_TROUBLE;
}

int tool_corrupt(const struct tool_args *a, const char *what, const char *msg)
{
    tool_error(a->file, "%s: %s", what, msg);
    if (a->json)
        json_error(a->file, FM_ECORRUPT, msg);
    return EXIT_CORRUPT;
}

/* ---- reports ------------------------------------------------------------------- */

#define LABEL_WIDTH 18

void rep_begin(struct report *r, FILE *out, bool json)
{
    r->out = out;
    r->json = json;
    r->members = 0;
    if (json)
        fputs("{", out);
}

void rep_end(struct report *r)
{
    if (r->json)
        fputs("\n}\n", r->out);
}

FILE *rep_key(struct report *r, const char *key)
{
    fputs(r->members++ ? ",\n  " : "\n  ", r->out);
    json_string(r->out, key);
    fputs(": ", r->out);
    return r->out;
}

static void rep_label(struct report *r, const char *label)
{
    fprintf(r->out, "%s:%*s", label, (int)(LABEL_WIDTH - strlen(label)), "");
}

void rep_u64(struct report *r, const char *key, const char *label, uint64_t v)
{
    if (r->json && key)
        fprintf(rep_key(r, key), "%llu", (unsigned long long)v);
    else if (!r->json && label) {
        rep_label(r, label);
        fprintf(r->out, "%llu\n", (unsigned long long)v);
    }
}

void rep_size(struct report *r, const char *key, const char *label, uint64_t v)
{
    char h[32];
    if (r->json || !label || v < 1024)
        rep_u64(r, key, label, v);
    else
        rep_text(r, label, "%llu (%s)", (unsigned long long)v, human_size(v, h));
}

void rep_str(struct report *r, const char *key, const char *label, const char *v)
{
    if (r->json && key)
        json_string(rep_key(r, key), v);
    else if (!r->json && label)
        rep_text(r, label, "%s", v);
}

void rep_bool(struct report *r, const char *key, const char *label, bool v)
{
    if (r->json && key)
        fputs(v ? "true" : "false", rep_key(r, key));
    else if (!r->json && label)
        rep_text(r, label, "%s", v ? "yes" : "no");
}

void rep_real(struct report *r, const char *key, const char *label, double v, bool valid,
              const char *note)
{
    if (r->json && key) {
        if (valid)
            fprintf(rep_key(r, key), "%.6g", v);
        else
            fputs("null", rep_key(r, key));
    } else if (!r->json && label) {
        if (valid)
            rep_text(r, label, "%.3f%s%s", v, note ? " " : "", note ? note : "");
        else
            rep_text(r, label, "n/a%s%s", note ? " " : "", note ? note : "");
    }
}

void rep_text(struct report *r, const char *label, const char *fmt, ...)
{
    va_list ap;
    if (r->json)
        return;
    rep_label(r, label);
    va_start(ap, fmt);
    vfprintf(r->out, fmt, ap);
    va_end(ap);
    fputc('\n', r->out);
}

const char *bytes_words(uint64_t n, char buf[64])
{
    char h[32];
    if (n < 1024)
        snprintf(buf, 64, "%llu bytes", (unsigned long long)n);
    else
        snprintf(buf, 64, "%llu bytes (%s)", (unsigned long long)n, human_size(n, h));
    return buf;
}

/* ---- opening ------------------------------------------------------------------- */


/* Recovery as fm_open does it, on a private copy-on-write mapping: nothing
 * reaches the file.  The reason the heap fails, or "" if it passes. */
static void explain_recovery(int fd, uint64_t real, uint64_t page, char *why, size_t why_len)
{
    uint64_t map_size = (real + page - 1) / page * page;
    void *priv = mmap(NULL, (size_t)map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (priv == MAP_FAILED)
        return;
    log_rollback(priv);
    struct heap_totals tot;
    if (heap_check(priv, map_size, &tot, why, why_len) == 0)
        why[0] = 0;
    else
        strncat(why, " (after rolling back the interrupted operation)", why_len - strlen(why) - 1);
    munmap(priv, (size_t)map_size);
}

void tool_explain_open_error(const char *path, int err, char *why, size_t why_len)
{
    unsigned char hdr[FMT_HEADER_SIZE];
    struct stat st;
    why[0] = 0;
    if (err != FM_ECORRUPT && err != FM_ECHECKSUM && err != FM_ETRUNCATED)
        return; /* the code says it all */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return;
    /* A shared lock, as a reader's open takes: no writer changes the file
     * while we look.  If a writer holds it, there is nothing to explain. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)FMT_HEADER_SIZE ||
        flock(fd, LOCK_SH | LOCK_NB) != 0 || os_pread(fd, hdr, sizeof hdr, 0) != 0)
        goto out;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), real = (uint64_t)st.st_size;
    const struct fmt_superblock *sb = (const void *)hdr;
    if (fmt_check_identity(hdr, page) != 0)
        goto out;
    if (fmt_check_state(hdr, real, page, why, why_len) != 0)
        goto out;
    why[0] = 0;
    if (!(sb->sb_state_flags & SB_DIRTY))
        goto out;
    if (fmt_check_log(hdr, (real + page - 1) / page * page, why, why_len) != 0)
        goto out;
    why[0] = 0;
    explain_recovery(fd, real, page, why, why_len);
out:
    close(fd);
}

int tool_open(const struct tool_args *a, struct fm_info **fi)
{
    struct fm_options o = {.flags = FM_RDONLY};
    char why[300];
    int err = fm_open(a->file, &o, fi);
    if (err == 0)
        return 0;
    tool_explain_open_error(a->file, err, why, sizeof why);
    return tool_fail(a, err, why);
}

int tool_open_checked(const struct tool_args *a, const char *corrupt_what, struct fm_info **fi)
{
    int rc = tool_open(a, fi);
    if (rc)
        return rc;
    int err = fm_check(*fi);
    if (err == 0)
        return 0;
    rc = err == FM_ECORRUPT ? tool_corrupt(a, corrupt_what, fm_check_message(*fi))
                            : tool_fail(a, err, "cannot check the heap");
    fm_close(*fi);
    return rc;
}

/* ---- the chunk walk -------------------------------------------------------------- */

int tool_walk_chunks(const struct fm_info *fi, chunk_fn fn, void *arg)
{
    const char *base = fi->mem;
    const struct fmt_superblock *sb = (const void *)base;
    uint64_t fsize = sb->sb_file_size, top = sb->sb_top, head;
    if (fsize < FMT_MIN_FILE || top < FMT_HEAP_OFF || top % CH_ALIGN || top > fsize ||
        fsize - top < CH_MIN)
        return FM_ECORRUPT;
    struct chunk_iter it;
    chunk_iter_init(&it, base, top);
    for (enum chunk_step step; (step = chunk_next(&it)) != CHUNK_END;) {
        if (step == CHUNK_BAD)
            return FM_ECORRUPT;
        struct chunk c = {it.c, it.size, (it.head & CH_CINUSE) ? CHUNK_ALLOCATED : CHUNK_FREE,
                          (it.head & CH_PUNCHED) != 0};
        int r = fn(&c, arg);
        if (r)
            return r;
    }
    memcpy(&head, base + top + F_HEAD, sizeof head);
    struct chunk t = {top, fsize - top, CHUNK_TOP, (head & CH_PUNCHED) != 0};
    return fn(&t, arg);
}

int tool_reserve(void **items, size_t *cap, size_t n, size_t item_size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? 2 * *cap : 64;
    void *nv = realloc(*items, ncap * item_size);
    if (!nv)
        return ENOMEM;
    *items = nv;
    *cap = ncap;
    return 0;
}
