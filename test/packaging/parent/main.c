/* main.c -- the parent project's program: one allocation in an arena. */
#include <fmalloc.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "parent.fm";
    struct fm_options opt = {.flags = FM_CREATE};
    struct fm_info *fi;
    unlink(path);
    int err = fm_open(path, &opt, &fi);
    if (err) {
        fprintf(stderr, "%s: %s\n", path, fm_strerror(err));
        return 1;
    }
    char *s = fm_malloc(fi, 16);
    if (!s)
        return 1;
    snprintf(s, 16, "fmalloc %s", fm_version(NULL, NULL, NULL, NULL));
    puts(s);
    fm_free(fi, s);
    return fm_close(fi) != 0;
}
