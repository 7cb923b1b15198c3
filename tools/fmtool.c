/*
 * fmtool.c -- the command line of fmtool, the arena inspector.
 *
 *   fmtool [-h | --help | -V | --version]
 *   fmtool help [COMMAND]
 *   fmtool COMMAND [OPTIONS] FILE [COPY]
 *
 * Options may come before or after the file names; "--" ends them.  Help
 * goes to stdout (exit 0); a usage error is one line and the usage on
 * stderr (exit 2).  docs/fmtool.md is the manual.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fmtool.h"

enum {
    OPT_JSON = 1u << 0,
    OPT_OUTPUT = 1u << 1,
    OPT_FORCE = 1u << 2,
};

struct command {
    const char *name;
    int (*run)(const struct tool_args *a);
    const char *operands; /* "FILE" or "FILE COPY" */
    unsigned options;     /* OPT_* it accepts */
    const char *summary;
    const char *help; /* the rest of `fmtool COMMAND --help` */
};

static const struct command commands[] = {
    {"info", cmd_info, "FILE", OPT_JSON,
     "identity and state of the superblock (does not open the arena)",
     "Reads the superblock with pread and validates its identity part (magic,\n"
     "version, checksum, page size, geometry) without opening the arena: works\n"
     "on a dirty arena and on one another process holds open, and never changes\n"
     "the file.  Prints the format version, arena id, creation time (UTC), page\n"
     "size, the regions, the file size recorded and real, clean or dirty, the\n"
     "generation, pending undo-log records, the top chunk, and whether the\n"
     "state part passes the header checks an open makes.\n"
     "\n"
     "Options:\n"
     "  --json      one JSON object on stdout\n"
     "  -h, --help  this help\n"
     "\n"
     "Exit: 0 printed; 2 not an arena, damaged identity, or unreadable.\n"},
    {"stats", cmd_stats, "FILE", OPT_JSON, "heap usage, a size-class histogram and fragmentation",
     "Opens the arena read-only (a dirty arena is recovered in a private view;\n"
     "the file is not changed) and prints fm_stats(): allocated and free bytes\n"
     "and counts, the largest free chunk, the top; then fragmentation\n"
     "(1 - largest free / free bytes), file size / allocated bytes, and a\n"
     "histogram of allocated and free chunks by size class [2^k, 2^(k+1))\n"
     "(chunk sizes, headers included; the top chunk is not in it).\n"
     "\n"
     "Options:\n"
     "  --json      one JSON object on stdout\n"
     "  -h, --help  this help\n"
     "\n"
     "Exit: 0 printed; 1 the heap is corrupt; 2 cannot open the arena.\n"},
    {"check", cmd_check, "FILE", OPT_JSON, "verify every heap invariant (fm_check)",
     "Opens the arena read-only and runs fm_check(): a full walk of chunks,\n"
     "bins and trees.  A dirty arena is checked as its next open would recover\n"
     "it (in a private view; the file is not changed).\n"
     "\n"
     "Options:\n"
     "  --json      one JSON object on stdout (also on failure)\n"
     "  -h, --help  this help\n"
     "\n"
     "Exit: 0 clean; 1 corrupt (the first violation is printed; also an\n"
     "unrecoverable dirty arena); 2 cannot open (not an arena, damaged header,\n"
     "locked by a writer, missing, ...).\n"},
    {"names", cmd_names, "FILE", OPT_JSON, "the name directory: every name, its offset and size",
     "Opens the arena read-only, checks it, and lists every name bound in its\n"
     "directory (fm_name_bind, fm_name_malloc, fm::find_or_construct), sorted:\n"
     "the usable size of the block the name points at (\"-\" when the offset is\n"
     "not the start of a block, e.g. the root region), the offset, the name.\n"
     "\n"
     "Options:\n"
     "  --json      one JSON object on stdout: {\"names\": [{\"name\", \"offset\",\n"
     "              \"size\" (null when not a block)}]}\n"
     "  -h, --help  this help\n"
     "\n"
     "Exit: 0 listed; 1 the heap or the directory is corrupt; 2 cannot open.\n"},
    {"map", cmd_map, "FILE", OPT_OUTPUT, "draw the heap as an SVG picture",
     "Draws the arena as SVG: a strip for the superblock, one for the app root,\n"
     "and rows for the heap with allocated, free, punched-out free and top\n"
     "chunks in their own colours, scaled so that the heap fits 64 rows of 1024\n"
     "pixels (a 1 GiB arena: 16 KiB per pixel; a pixel covering several kinds\n"
     "blends them), and a legend with the figures.  The heap is checked first;\n"
     "a corrupt heap is not drawn.\n"
     "\n"
     "Options:\n"
     "  -o, --output SVG  write the picture to SVG (default: stdout; - is stdout)\n"
     "  -h, --help        this help\n"
     "\n"
     "Exit: 0 drawn; 1 the heap is corrupt; 2 cannot open the arena or write SVG.\n"},
    {"snapshot", cmd_snapshot, "FILE COPY", OPT_FORCE,
     "a consistent, sparse copy of a closed arena",
     "Copies FILE to COPY while holding the arena's shared lock, so no writer\n"
     "is active (while one has it open read-write, snapshot fails: FM_ELOCKED).\n"
     "FILE's heap is checked first.  Holes stay holes: a reflink where the file\n"
     "system can share blocks; else the data ranges are copied (SEEK_DATA and\n"
     "SEEK_HOLE) and holes are kept where fmalloc allows them, in punched free\n"
     "chunks, while everywhere else the copy gets real blocks, as fmalloc\n"
     "guarantees for its own files; else a plain copy.  The copy is written\n"
     "beside COPY, must open and check clean, and is then renamed to COPY.  A\n"
     "dirty FILE gives a dirty COPY, recovered at its first open like FILE.\n"
     "\n"
     "Options:\n"
     "  -f, --force  replace COPY if it exists\n"
     "  -h, --help   this help\n"
     "\n"
     "Exit: 0 copied; 1 the heap is corrupt (no copy made); 2 cannot open, COPY\n"
     "exists, or the copy failed.\n"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: fmtool COMMAND [OPTIONS] FILE\n"
               "       fmtool help [COMMAND] | -h | --help | -V | --version\n\n"
               "Inspect an fmalloc arena file.  Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char left[32];
        snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].operands);
        fprintf(f, "  %-20s %s\n", left, commands[i].summary);
    }
    fprintf(f, "\n'fmtool COMMAND --help' explains one.  Exit status: 0 success, 1 the heap\n"
               "is corrupt, 2 usage error or the file cannot be opened as an arena.\n");
}

static void command_usage_line(FILE *f, const struct command *c)
{
    fprintf(f, "usage: fmtool %s%s%s%s %s\n", c->name, c->options & OPT_JSON ? " [--json]" : "",
            c->options & OPT_OUTPUT ? " [-o SVG]" : "", c->options & OPT_FORCE ? " [--force]" : "",
            c->operands);
}

static void command_help(const struct command *c)
{
    command_usage_line(stdout, c);
    printf("\n%c%s.\n\n%s", toupper((unsigned char)c->summary[0]), c->summary + 1, c->help);
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* A usage error: one line, then the command's usage line, on stderr. */
TOOL_PRINTF(2, 3) static int usage_error(const struct command *c, const char *fmt, ...)
{
    va_list ap;
    fputs("fmtool: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c) {
        command_usage_line(stderr, c);
        fprintf(stderr, "('fmtool %s --help' for more)\n", c->name);
    } else {
        usage(stderr);
    }
    return EXIT_TROUBLE;
}

/* Parse argv[0..argc) (after the command name) into *a.  -1 when help was
 * printed, else 0 or the exit code of a usage error. */
static int parse(const struct command *c, int argc, char **argv, struct tool_args *a)
{
    const char *operand[2];
    int n = 0, want = strchr(c->operands, ' ') ? 2 : 1;
    bool options_done = false;
    memset(a, 0, sizeof *a);
    a->cmd = c->name;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (options_done || s[0] != '-' || s[1] == 0) {
            if (n == want)
                return usage_error(c, "%s: unexpected argument '%s'", c->name, s);
            operand[n++] = s;
        } else if (strcmp(s, "--") == 0) {
            options_done = true;
        } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            command_help(c);
            return -1;
        } else if ((c->options & OPT_JSON) && strcmp(s, "--json") == 0) {
            a->json = true;
        } else if ((c->options & OPT_FORCE) &&
                   (strcmp(s, "-f") == 0 || strcmp(s, "--force") == 0)) {
            a->force = true;
        } else if ((c->options & OPT_OUTPUT) &&
                   (strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0)) {
            if (i + 1 == argc)
                return usage_error(c, "%s: %s needs a file name", c->name, s);
            a->output = argv[++i];
        } else if ((c->options & OPT_OUTPUT) && strncmp(s, "--output=", 9) == 0) {
            a->output = s + 9;
        } else if ((c->options & OPT_OUTPUT) && strncmp(s, "-o", 2) == 0) {
            a->output = s + 2;
        } else {
            return usage_error(c, "%s: unknown option '%s'", c->name, s);
        }
    }
    if (n < want)
        return usage_error(c, "%s: missing %s", c->name, n == 0 ? "FILE" : "COPY");
    if ((c->options & OPT_OUTPUT) && a->output && !a->output[0])
        return usage_error(c, "%s: empty output file name", c->name);
    a->file = operand[0];
    a->copy = want == 2 ? operand[1] : NULL;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error(NULL, "no command given");
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return EXIT_CLEAN;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        int format;
        const char *version = fm_version(NULL, NULL, NULL, &format);
        printf("fmtool (fmalloc %s, file format %d)\n", version, format);
        return EXIT_CLEAN;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return EXIT_CLEAN;
        }
        const struct command *c = find_command(argv[2]);
        if (!c)
            return usage_error(NULL, "help: unknown command '%s'", argv[2]);
        if (argc > 3)
            return usage_error(NULL, "help: one command at a time");
        command_help(c);
        return EXIT_CLEAN;
    }
    const struct command *c = find_command(cmd);
    if (!c)
        return usage_error(NULL, "unknown command '%s'", cmd);
    struct tool_args a;
    int rc = parse(c, argc - 2, argv + 2, &a);
    if (rc)
        return rc < 0 ? EXIT_CLEAN : rc;
    return c->run(&a);
}
