/*
 * names.c -- fmtool names: the arena's name directory, with sizes.
 *
 * Opens the arena read-only, checks it (a damaged directory is reported as
 * corrupt, exit 1), collects every name with fm_name_iterate (which holds
 * the arena's lock, so sizes are looked up after it returns) and prints
 * one line per name, sorted by name: the size of the block it names (or
 * "-" when the offset is not the start of a block, such as the root
 * region), the offset, and the name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fmtool.h"

struct name_row {
    char *name;
    fm_off_t off;
    size_t size;
};

struct name_list {
    struct name_row *rows;
    size_t n, cap;
};

static int collect(const char *name, fm_off_t off, void *arg)
{
    struct name_list *l = arg;
    void *rows = l->rows;
    if (tool_reserve(&rows, &l->cap, l->n, sizeof *l->rows))
        return ENOMEM;
    l->rows = rows;
    char *copy = strdup(name);
    if (!copy)
        return ENOMEM;
    l->rows[l->n++] = (struct name_row){copy, off, 0};
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct name_row *)a)->name, ((const struct name_row *)b)->name);
}

static void print_names(const struct tool_args *a, const struct name_list *l)
{
    if (!a->json) {
        for (size_t i = 0; i < l->n; i++) {
            const struct name_row *r = &l->rows[i];
            if (r->size)
                printf("%12zu %14llu  %s\n", r->size, (unsigned long long)r->off, r->name);
            else
                printf("%12s %14llu  %s\n", "-", (unsigned long long)r->off, r->name);
        }
        return;
    }
    struct report rep;
    rep_begin(&rep, stdout, true);
    rep_str(&rep, "file", NULL, a->file);
    rep_u64(&rep, "count", NULL, l->n);
    FILE *f = rep_key(&rep, "names");
    fputs("[", f);
    for (size_t i = 0; i < l->n; i++) {
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        json_string(f, l->rows[i].name);
        fprintf(f, ", \"offset\": %llu, \"size\": ", (unsigned long long)l->rows[i].off);
        if (l->rows[i].size)
            fprintf(f, "%zu}", l->rows[i].size);
        else
            fputs("null}", f);
    }
    fputs(l->n ? "\n  ]" : "]", f);
    rep_end(&rep);
}

int cmd_names(const struct tool_args *a)
{
    struct fm_info *fi;
    int rc = tool_open(a, &fi);
    if (rc)
        return rc;
    int err = fm_check(fi);
    if (err == FM_ECORRUPT) {
        rc = tool_corrupt(a, "corrupt", fm_check_message(fi));
        fm_close(fi);
        return rc;
    }
    struct name_list l = {NULL, 0, 0};
    if (!err)
        err = fm_name_iterate(fi, collect, &l);
    if (!err) {
        for (size_t i = 0; i < l.n; i++)
            l.rows[i].size = fm_usable_size(fi, fm_pointer(fi, l.rows[i].off));
        qsort(l.rows, l.n, sizeof *l.rows, by_name);
        print_names(a, &l);
    } else {
        rc = tool_fail(a, err, NULL);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.rows[i].name);
    free(l.rows);
    fm_close(fi);
    return rc;
}
