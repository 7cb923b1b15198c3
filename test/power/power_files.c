/*
 * power_files.c -- images of every file at one cut, under the directory
 * model power_files.h states.
 *
 * Invariant of struct image_set: for every path, ops[p] counts its CREATE
 * and UNLINK records among [0, next), op_rec[p] lists them in order, and
 * durable_ops[p] is how many of them preceded the path's last DIRSYNC
 * there; every file's replay is at `next`.
 */
#include "power_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int set_path_of(const struct image_set *s, int f)
{
    for (int p = 0; p < s->npaths; p++)
        if (strcmp(s->r->paths[s->first[p]], s->r->paths[f]) == 0)
            return p;
    return -1;
}

void set_init(struct image_set *s, const struct record *r)
{
    memset(s, 0, sizeof *s);
    s->r = r;
    for (int f = 0; f < r->nfiles; f++) {
        replay_init(&s->rp[f], r, f);
        if (set_path_of(s, f) < 0)
            s->first[s->npaths++] = f;
    }
}

static void op_add(struct image_set *s, int p, size_t i)
{
    if (s->ops[p] == s->op_cap[p]) {
        s->op_cap[p] = s->op_cap[p] ? 2 * s->op_cap[p] : 16;
        s->op_rec[p] = realloc(s->op_rec[p], s->op_cap[p] * sizeof *s->op_rec[p]);
        if (!s->op_rec[p]) {
            fprintf(stderr, "power_files: out of memory\n");
            abort();
        }
    }
    s->op_rec[p][s->ops[p]++] = i;
}

void set_replay_to(struct image_set *s, size_t end)
{
    const struct record *r = s->r;
    for (int f = 0; f < r->nfiles; f++)
        replay_to(&s->rp[f], end);
    for (; s->next < end && s->next < r->n; s->next++) {
        const struct rec *e = &r->recs[s->next];
        if (e->kind == REC_CREATE || e->kind == REC_UNLINK)
            op_add(s, set_path_of(s, e->file), s->next);
        else if (e->kind == REC_DIRSYNC) {
            int p = set_path_of(s, e->file);
            s->durable_ops[p] = s->ops[p];
        }
    }
}

void set_build(struct image_set *s, uint64_t *rng, struct crash_odds *odds)
{
    for (int p = 0; p < s->npaths; p++) {
        size_t pending = s->ops[p] - s->durable_ops[p];
        size_t landed = s->durable_ops[p] + (size_t)(sim_random(rng) % (pending + 1));
        int f = -1;
        for (size_t i = 0; i < landed; i++) {
            const struct rec *e = &s->r->recs[s->op_rec[p][i]];
            f = e->kind == REC_CREATE ? e->file : -1;
        }
        s->chosen[p] = f;
        struct crash_odds o;
        if (f >= 0)
            image_build(&s->rp[f], rng, &s->disk[p], p == 0 ? odds : &o);
        else if (p == 0)
            *odds = (struct crash_odds){0};
    }
}

static const char *last_part(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The image replaces the previous one in place (no O_TRUNC: on tmpfs,
 * freeing and zeroing every page again would cost more than the copy). */
static void write_file(const char *path, const struct disk *d)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || pwrite(fd, d->buf, (size_t)d->size, 0) != (ssize_t)d->size ||
        ftruncate(fd, (off_t)d->size) != 0 || close(fd) != 0) {
        perror(path);
        exit(1);
    }
}

void set_write(const struct image_set *s, const char *dir)
{
    for (int p = 0; p < s->npaths; p++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, last_part(s->r->paths[s->first[p]]));
        if (s->chosen[p] >= 0)
            write_file(path, &s->disk[p]);
        else if (unlink(path) != 0 && errno != ENOENT) {
            perror(path);
            exit(1);
        }
    }
}

void set_free(struct image_set *s)
{
    for (int f = 0; f < s->r->nfiles; f++)
        replay_free(&s->rp[f]);
    for (int p = 0; p < REC_MAX_FILES; p++) {
        disk_free(&s->disk[p]);
        free(s->op_rec[p]);
    }
    memset(s, 0, sizeof *s);
}
