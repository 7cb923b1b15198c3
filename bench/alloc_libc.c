/*
 * alloc_libc.c -- the volatile arms: glibc malloc, jemalloc, mimalloc.
 *
 * All three are the process's own malloc/free/realloc.  The worker runs
 * the jemalloc and mimalloc arms with LD_PRELOAD=libjemalloc.so.2 or
 * libmimalloc.so.2 (it re-executes itself with that set, see worker.c), so
 * the calls below reach the peer exactly as they would in a program that
 * links it; open() refuses to run if the preload did not take.
 * A link is simply the block's address.
 */
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static _Alignas(64) unsigned char libc_root[64];

static int libc_open_glibc(const char *path, uint64_t capacity_bytes, bool create)
{
    if (dlsym(RTLD_DEFAULT, "mallctl") || dlsym(RTLD_DEFAULT, "mi_malloc")) {
        fprintf(stderr, "glibc arm: another malloc is preloaded\n");
        return 1;
    }
    return 0;
}

static int libc_open_jemalloc(const char *path, uint64_t capacity_bytes, bool create)
{
    if (!dlsym(RTLD_DEFAULT, "mallctl")) {
        fprintf(stderr, "jemalloc arm: libjemalloc.so.2 is not preloaded\n");
        return 1;
    }
    return 0;
}

static int libc_open_mimalloc(const char *path, uint64_t capacity_bytes, bool create)
{
    if (!dlsym(RTLD_DEFAULT, "mi_malloc")) {
        fprintf(stderr, "mimalloc arm: libmimalloc.so.2 is not preloaded\n");
        return 1;
    }
    return 0;
}

static int libc_close(void)
{
    return 0;
}

static void *libc_malloc(size_t size)
{
    return malloc(size);
}

static void libc_free(void *p)
{
    free(p);
}

static void *libc_realloc(void *p, size_t size)
{
    return realloc(p, size);
}

static void *libc_root_area(void)
{
    return libc_root;
}

static uint64_t libc_offset_of(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static void *libc_pointer_at(uint64_t off)
{
    return (void *)(uintptr_t)off;
}

static void *libc_alloc_to(uint64_t link[2], size_t size)
{
    void *p = malloc(size);
    if (p)
        link[1] = (uint64_t)(uintptr_t)p;
    return p;
}

static void libc_persist(const void *p, size_t n) {}

static void *libc_mapping(void)
{
    return NULL;
}

static const char *libc_version_glibc(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "glibc %s", gnu_get_libc_version());
    return buf;
}

static const char *libc_version_jemalloc(void)
{
    static char buf[96] = "jemalloc ?";
    int (*ctl)(const char *, void *, size_t *, void *, size_t);
    *(void **)&ctl = dlsym(RTLD_DEFAULT, "mallctl");
    const char *v;
    size_t len = sizeof v;
    if (ctl && ctl("version", &v, &len, NULL, 0) == 0) {
        /* "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c": keep 5.3.0 */
        snprintf(buf, sizeof buf, "jemalloc %.*s", (int)strcspn(v, "-"), v);
    }
    return buf;
}

static const char *libc_version_mimalloc(void)
{
    static char buf[64] = "mimalloc ?";
    int (*ver)(void);
    *(void **)&ver = dlsym(RTLD_DEFAULT, "mi_version");
    if (ver) {
        int v = ver();
        snprintf(buf, sizeof buf, "mimalloc %d.%d.%d", v / 100, v / 10 % 10, v % 10);
    }
    return buf;
}

#define LIBC_ARM(NAME)                                                                             \
    const struct bench_alloc bench_alloc_##NAME = {                                                \
        .name = #NAME,                                                                             \
        .persistent = false,                                                                       \
        .version = libc_version_##NAME,                                                            \
        .open = libc_open_##NAME,                                                                  \
        .close = libc_close,                                                                       \
        .malloc = libc_malloc,                                                                     \
        .free = libc_free,                                                                         \
        .realloc = libc_realloc,                                                                   \
        .root = libc_root_area,                                                                    \
        .offset_of = libc_offset_of,                                                               \
        .pointer_at = libc_pointer_at,                                                             \
        .alloc_to = libc_alloc_to,                                                                 \
        .persist = libc_persist,                                                                   \
        .stats = NULL,                                                                             \
        .mapping = libc_mapping,                                                                   \
    }

LIBC_ARM(glibc);
LIBC_ARM(jemalloc);
LIBC_ARM(mimalloc);
