/*
 * map.c -- fmtool map: an SVG picture of an arena.
 *
 * One strip per region of the file: the superblock (identity, state, log),
 * the app root (zero and non-zero bytes) and the heap (allocated, free,
 * punched-out free and top chunks).  The heap strip is rows of ROW_PX pixels; one pixel stands
 * for `bpp` bytes, the smallest power of two (at least CH_ALIGN) that fits
 * the heap in MAX_ROWS rows, so a 1 GiB arena is 64 rows of 16 KiB pixels.
 * A pixel that covers several kinds of chunk blends their colours by how
 * many bytes of each it covers; when chunks are wide enough to see, a
 * darker pixel marks where each one starts.
 *
 * The heap is walked only after fm_check() passed, and the walk is bounded
 * all the same (util.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fmtool.h"
#include "heap.h"

#define ROW_PX      1024u /* pixels in a row */
#define MAX_ROWS    64u   /* rows the heap may take */
#define ROW_H       10    /* height of a row */
#define ROW_GAP     2     /* space between rows */
#define LEFT        120   /* left column: labels and row offsets */
#define MARGIN      14
#define WIDTH       (LEFT + (int)ROW_PX + MARGIN)
#define MARK_MIN_PX 4 /* chunks this many pixels wide get a start mark */

struct rgb {
    unsigned char r, g, b;
};

/* What a heap pixel shows. */
enum px_class { PX_ALLOCATED, PX_FREE, PX_PUNCHED, PX_TOP, PX_NCLASSES };

/* Colours of the heap's classes and of the other regions. */
static const struct rgb class_colour[PX_NCLASSES] = {
    {0xd6, 0x4b, 0x3c}, /* allocated: red */
    {0x4c, 0xaf, 0x50}, /* free: green */
    {0xbd, 0xbd, 0xbd}, /* free, punched out (pages may be holes): grey */
    {0xa8, 0xcf, 0xf0}, /* top: light blue */
};
static const struct rgb sb_identity = {0x4a, 0x3b, 0x7a}, sb_state = {0x85, 0x72, 0xc0},
                        sb_log = {0xc8, 0xbe, 0xe8}, root_data = {0xd9, 0xa4, 0x1e},
                        root_zero = {0xf5, 0xe9, 0xc4};

struct pixel {
    uint64_t bytes[PX_NCLASSES];
    bool start; /* a chunk at least MARK_MIN_PX wide starts here */
};

struct heap_map {
    struct pixel *px;
    uint64_t npx;                                    /* pixels the heap takes */
    uint64_t bpp;                                    /* bytes per pixel */
    uint64_t bytes[PX_NCLASSES], count[PX_NCLASSES]; /* what the walk saw */
};

static int map_chunk(const struct chunk *c, void *arg)
{
    struct heap_map *m = arg;
    enum px_class k = c->kind == CHUNK_ALLOCATED ? PX_ALLOCATED
                      : c->kind == CHUNK_TOP     ? PX_TOP
                      : c->punched               ? PX_PUNCHED
                                                 : PX_FREE;
    uint64_t start = c->off - FMT_HEAP_OFF, end = start + c->size;
    uint64_t first = start / m->bpp, last = (end - 1) / m->bpp;
    if (last >= m->npx)
        return FM_ECORRUPT;
    m->bytes[k] += c->size;
    m->count[k]++;
    if (c->size >= MARK_MIN_PX * m->bpp)
        m->px[first].start = true;
    for (uint64_t p = first; p <= last; p++) {
        uint64_t lo = p * m->bpp, hi = lo + m->bpp;
        m->px[p].bytes[k] += (end < hi ? end : hi) - (start > lo ? start : lo);
    }
    return 0;
}

/* The colour of a heap pixel: its classes' colours weighted by bytes, the
 * weights rounded to sixteenths (so that runs of similar pixels merge) but
 * never to zero for a kind that is present. */
static struct rgb pixel_colour(const struct pixel *p)
{
    uint64_t total = 0, q[PX_NCLASSES], qsum = 0;
    unsigned r = 0, g = 0, b = 0, kinds = 0;
    for (int k = 0; k < PX_NCLASSES; k++)
        total += p->bytes[k];
    if (!total)
        return (struct rgb){0xff, 0xff, 0xff};
    for (int k = 0; k < PX_NCLASSES; k++) {
        q[k] = (p->bytes[k] * 16 + total / 2) / total;
        if (p->bytes[k] && !q[k])
            q[k] = 1;
        kinds += p->bytes[k] != 0;
        qsum += q[k];
        r += (unsigned)q[k] * class_colour[k].r;
        g += (unsigned)q[k] * class_colour[k].g;
        b += (unsigned)q[k] * class_colour[k].b;
    }
    struct rgb c = {(unsigned char)(r / qsum), (unsigned char)(g / qsum),
                    (unsigned char)(b / qsum)};
    if (p->start && kinds == 1) {
        c.r = (unsigned char)(c.r * 3 / 4);
        c.g = (unsigned char)(c.g * 3 / 4);
        c.b = (unsigned char)(c.b * 3 / 4);
    }
    return c;
}

static bool same(struct rgb a, struct rgb b)
{
    return a.r == b.r && a.g == b.g && a.b == b.b;
}

static void rect(FILE *f, int x, int y, int w, int h, struct rgb c)
{
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>\n", x,
            y, w, h, c.r, c.g, c.b);
}

/* Text content, XML-escaped; control characters (not allowed in XML 1.0)
 * become '?'.  The caller passes valid UTF-8 (tool_utf8_ok). */
static void xml_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '&')
            fputs("&amp;", f);
        else if (*p == '<')
            fputs("&lt;", f);
        else if (*p == '>')
            fputs("&gt;", f);
        else if (*p == '"')
            fputs("&quot;", f);
        else
            fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
    }
}

static void text(FILE *f, int x, int y, const char *attrs, const char *s)
{
    fprintf(f, "<text x=\"%d\" y=\"%d\"%s%s>", x, y, attrs[0] ? " " : "", attrs);
    xml_text(f, s);
    fputs("</text>\n", f);
}

/* One bar of ROW_PX pixels whose colours colour_of(i) gives, run-length merged. */
static void bar(FILE *f, int y, unsigned npx, struct rgb (*colour_of)(unsigned i, const void *),
                const void *arg)
{
    unsigned run = 0;
    struct rgb c = colour_of(0, arg);
    for (unsigned i = 1; i <= npx; i++) {
        struct rgb n = i < npx ? colour_of(i, arg) : c;
        if (i == npx || !same(n, c)) {
            rect(f, LEFT + (int)run, y, (int)(i - run), ROW_H, c);
            run = i;
            c = n;
        }
    }
}

static struct rgb superblock_colour(unsigned i, const void *arg)
{
    unsigned off = i * (FMT_HEADER_SIZE / ROW_PX);
    (void)arg;
    return off < 128                                             ? sb_identity
           : off < offsetof(struct fmt_superblock, sb_log_count) ? sb_state
                                                                 : sb_log;
}

static struct rgb root_colour(unsigned i, const void *arg)
{
    const unsigned char *root = arg;
    const unsigned per = FMT_ROOT_SIZE / ROW_PX;
    for (unsigned j = 0; j < per; j++)
        if (root[i * per + j])
            return root_data;
    return root_zero;
}

struct row {
    const struct heap_map *m;
    uint64_t first; /* pixel index of the row's start */
};

static struct rgb heap_colour(unsigned i, const void *arg)
{
    const struct row *r = arg;
    return pixel_colour(&r->m->px[r->first + i]);
}

static void swatch(FILE *f, int y, struct rgb c, const char *s)
{
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"#%02x%02x%02x\" "
            "stroke=\"#555555\" stroke-width=\"0.5\"/>\n",
            LEFT, y - 10, c.r, c.g, c.b);
    text(f, LEFT + 20, y, "", s);
}

static void write_svg(FILE *f, const char *name, const struct fm_info *fi,
                      const struct fm_stats *st, const struct heap_map *m)
{
    const unsigned char *base = fi->mem;
    const struct fmt_superblock *sb = (const void *)base;
    char s[512], h[32], h2[32], w[64], idhex[33];
    uint64_t rows = (m->npx + ROW_PX - 1) / ROW_PX;
    /* The layout below, added up: title lines, two one-row strips, the
     * heap rows, the legend's ten lines. */
    int height = MARGIN + 12 + 18 + 22 + 2 * (4 + ROW_H + 22) + 4 + (int)rows * (ROW_H + ROW_GAP) +
                 16 + 9 * 18 + MARGIN;
    int y = MARGIN + 12;

    for (int i = 0; i < 16; i++)
        snprintf(idhex + 2 * i, 3, "%02x", sb->sb_arena_id[i]);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"monospace\" font-size=\"11\">\n",
            WIDTH, height, WIDTH, height);
    snprintf(s, sizeof s, "fmtool map: %s", name);
    fputs("<title>", f);
    xml_text(f, s);
    fputs("</title>\n", f);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", WIDTH, height);
    text(f, MARGIN, y, "font-size=\"14\" font-weight=\"bold\"", s);
    y += 18;
    snprintf(s, sizeof s, "arena id %s, generation %llu, file size %llu bytes (%s)%s", idhex,
             (unsigned long long)st->generation, (unsigned long long)st->file_size,
             human_size(st->file_size, h),
             st->recovered ? ", recovered view of a dirty arena" : "");
    text(f, MARGIN, y, "", s);
    y += 22;

    fputs("<g shape-rendering=\"crispEdges\" stroke=\"none\">\n", f);
    /* superblock */
    snprintf(s, sizeof s, "[0, %u), %u bytes: identity, state, undo log; 1 px = %u bytes",
             FMT_HEADER_SIZE, FMT_HEADER_SIZE, FMT_HEADER_SIZE / ROW_PX);
    text(f, MARGIN, y + ROW_H - 1, "font-weight=\"bold\"", "superblock");
    text(f, LEFT, y, "", s);
    y += 4;
    bar(f, y, ROW_PX, superblock_colour, NULL);
    y += ROW_H + 8 + 14;
    /* root */
    snprintf(s, sizeof s, "[%u, %u), %u bytes: the application's root; 1 px = %u bytes",
             FMT_ROOT_OFF, FMT_ROOT_OFF + FMT_ROOT_SIZE, FMT_ROOT_SIZE, FMT_ROOT_SIZE / ROW_PX);
    text(f, MARGIN, y + ROW_H - 1, "font-weight=\"bold\"", "root");
    text(f, LEFT, y, "", s);
    y += 4;
    bar(f, y, ROW_PX, root_colour, base + FMT_ROOT_OFF);
    y += ROW_H + 8 + 14;
    /* heap */
    snprintf(s, sizeof s, "[%u, %llu), %llu bytes (%s); 1 px = %llu bytes, 1 row = %llu bytes (%s)",
             FMT_HEAP_OFF, (unsigned long long)st->file_size, (unsigned long long)st->heap_size,
             human_size(st->heap_size, h), (unsigned long long)m->bpp,
             (unsigned long long)(m->bpp * ROW_PX), human_size(m->bpp * ROW_PX, h2));
    text(f, MARGIN, y + ROW_H - 1, "font-weight=\"bold\"", "heap");
    text(f, LEFT, y, "", s);
    y += 4;
    unsigned label_every = rows > 32 ? 4 : rows > 16 ? 2 : 1;
    for (uint64_t row = 0; row < rows; row++) {
        struct row r = {m, row * ROW_PX};
        uint64_t n = m->npx - r.first < ROW_PX ? m->npx - r.first : ROW_PX;
        bar(f, y, (unsigned)n, heap_colour, &r);
        if (row % label_every == 0) {
            snprintf(s, sizeof s, "%#llx", (unsigned long long)(FMT_HEAP_OFF + r.first * m->bpp));
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"9\">", LEFT - 6,
                    y + ROW_H - 1);
            xml_text(f, s);
            fputs("</text>\n", f);
        }
        y += ROW_H + ROW_GAP;
    }
    fputs("</g>\n", f);

    /* legend */
    y += 16;
    uint64_t free_bytes = st->free_bytes - st->top_size;
    uint64_t free_count = st->free_blocks ? st->free_blocks - 1 : 0;
    text(f, MARGIN, y, "font-weight=\"bold\"", "legend");
    snprintf(s, sizeof s, "allocated: %s in %llu blocks", bytes_words(st->allocated_bytes, w),
             (unsigned long long)st->allocated_count);
    swatch(f, y, class_colour[PX_ALLOCATED], s);
    y += 18;
    snprintf(s, sizeof s, "free: %s in %llu chunks, not counting the top",
             bytes_words(free_bytes, w), (unsigned long long)free_count);
    swatch(f, y, class_colour[PX_FREE], s);
    y += 18;
    snprintf(s, sizeof s,
             "punched: %s in %llu of those free chunks: their pages went back to the file "
             "system",
             bytes_words(st->punched_bytes, w), (unsigned long long)m->count[PX_PUNCHED]);
    swatch(f, y, class_colour[PX_PUNCHED], s);
    y += 18;
    snprintf(s, sizeof s, "top: %s, the wilderness at the end of the heap",
             bytes_words(st->top_size, w));
    swatch(f, y, class_colour[PX_TOP], s);
    y += 18;
    snprintf(s, sizeof s, "file size: %s; largest free chunk %llu bytes",
             bytes_words(st->file_size, w), (unsigned long long)st->largest_free);
    text(f, LEFT + 20, y, "", s);
    y += 18;
    text(f, LEFT + 20, y, "",
         "a pixel covering several kinds blends their colours; a darker pixel starts a chunk");
    y += 18;
    swatch(f, y, sb_identity, "superblock identity (written once, checksummed)");
    y += 18;
    swatch(f, y, sb_state, "superblock state (heap bins, top, flags)");
    y += 18;
    swatch(f, y, sb_log, "superblock undo log");
    y += 18;
    swatch(f, y, root_data, "root: bytes in use (non-zero)");
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"#%02x%02x%02x\" "
            "stroke=\"#555555\" stroke-width=\"0.5\"/>\n",
            LEFT + 300, y - 10, root_zero.r, root_zero.g, root_zero.b);
    text(f, LEFT + 320, y, "", "root: zero bytes");
    fputs("</svg>\n", f);
}

int cmd_map(const struct tool_args *a)
{
    struct fm_info *fi;
    struct fm_stats st;
    struct heap_map m = {0};
    bool to_stdout = !a->output || strcmp(a->output, "-") == 0;
    int rc = tool_open_checked(a, "corrupt, not mapping it", &fi);
    if (rc)
        return rc;
    int err = fm_stats(fi, &st);
    if (err)
        goto fail;
    m.bpp = CH_ALIGN;
    while ((st.heap_size + m.bpp - 1) / m.bpp > (uint64_t)ROW_PX * MAX_ROWS)
        m.bpp *= 2;
    m.npx = (st.heap_size + m.bpp - 1) / m.bpp;
    m.px = calloc(m.npx, sizeof *m.px);
    if (!m.px) {
        err = ENOMEM;
        goto fail;
    }
    if ((err = tool_walk_chunks(fi, map_chunk, &m)))
        goto fail;

    FILE *f = to_stdout ? stdout : fopen(a->output, "w");
    if (!f) {
        tool_error(a->output, "cannot write the map: %s", strerror(errno));
        rc = EXIT_TROUBLE;
        goto out;
    }
    write_svg(f, tool_utf8_ok(a->file) ? a->file : "(file name not UTF-8)", fi, &st, &m);
    int werr = ferror(f) ? EIO : 0;
    if (!to_stdout && fclose(f) != 0 && !werr)
        werr = errno;
    else if (to_stdout && fflush(stdout) != 0 && !werr)
        werr = errno;
    if (werr) {
        tool_error(to_stdout ? "(stdout)" : a->output, "cannot write the map: %s", strerror(werr));
        if (!to_stdout)
            remove(a->output);
        rc = EXIT_TROUBLE;
        goto out;
    }
    if (!to_stdout) {
        char h[32];
        printf("%s: %llu rows, 1 px = %llu bytes; %llu allocated, %llu free (%llu punched) "
               "chunks, top %llu bytes (%s)\n",
               a->output, (unsigned long long)((m.npx + ROW_PX - 1) / ROW_PX),
               (unsigned long long)m.bpp, (unsigned long long)m.count[PX_ALLOCATED],
               (unsigned long long)(m.count[PX_FREE] + m.count[PX_PUNCHED]),
               (unsigned long long)m.count[PX_PUNCHED], (unsigned long long)m.bytes[PX_TOP],
               human_size(m.bytes[PX_TOP], h));
    }
    rc = EXIT_CLEAN;
    goto out;
fail:
    rc = err == FM_ECORRUPT ? tool_corrupt(a, "corrupt", fm_check_message(fi))
                            : tool_fail(a, err, NULL);
out:
    free(m.px);
    fm_close(fi);
    return rc;
}
