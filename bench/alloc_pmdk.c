/*
 * alloc_pmdk.c -- the PMDK libpmemobj arm.
 *
 * One pool file of a fixed size (pmemobj pools do not grow), sized from
 * the workload's capacity.  The worker runs with PMEM_IS_PMEM_FORCE=1, so
 * libpmem treats the file as persistent memory and flushes with cache-line
 * flush instructions instead of msync, as on a DAX file system.
 * malloc/free/realloc are pmemobj_alloc/pmemobj_free/pmemobj_realloc with
 * the PMEMoid in (volatile) harness memory; alloc_to is pmemobj_alloc with
 * the PMEMoid inside the pool, PMDK's crash-atomic allocate-and-link.
 * A link is the PMEMoid's offset, which is also the offset from the pool's
 * base address.
 */
#include <libpmemobj.h>
#include <stdio.h>
#include <unistd.h>

#include "bench.h"

#define PMB_LAYOUT   "fmalloc-bench"
#define PMB_MIN_POOL (16ull << 20)

static PMEMobjpool *pmb_pool;

static int pmb_open(const char *path, uint64_t capacity_bytes, bool create)
{
    if (create) {
        unlink(path);
        uint64_t size = capacity_bytes < PMB_MIN_POOL ? PMB_MIN_POOL : capacity_bytes;
        pmb_pool = pmemobj_create(path, PMB_LAYOUT, (size_t)size, 0600);
    } else {
        pmb_pool = pmemobj_open(path, PMB_LAYOUT);
    }
    if (!pmb_pool) {
        fprintf(stderr, "pmemobj_%s(%s): %s\n", create ? "create" : "open", path,
                pmemobj_errormsg());
        return 1;
    }
    return 0;
}

static int pmb_close(void)
{
    pmemobj_close(pmb_pool);
    pmb_pool = NULL;
    return 0;
}

static void *pmb_malloc(size_t size)
{
    PMEMoid oid;
    if (pmemobj_alloc(pmb_pool, &oid, size, 0, NULL, NULL))
        return NULL;
    return pmemobj_direct(oid);
}

static void pmb_free(void *p)
{
    if (!p)
        return;
    PMEMoid oid = pmemobj_oid(p);
    pmemobj_free(&oid);
}

static void *pmb_realloc(void *p, size_t size)
{
    PMEMoid oid = p ? pmemobj_oid(p) : OID_NULL;
    if (pmemobj_realloc(pmb_pool, &oid, size, 0))
        return NULL;
    return pmemobj_direct(oid);
}

static void *pmb_root(void)
{
    return pmemobj_direct(pmemobj_root(pmb_pool, 64));
}

static uint64_t pmb_offset_of(const void *p)
{
    return p ? pmemobj_oid(p).off : 0;
}

static void *pmb_pointer_at(uint64_t off)
{
    return off ? (char *)pmb_pool + off : NULL;
}

static void *pmb_alloc_to(uint64_t link[2], size_t size)
{
    _Static_assert(sizeof(PMEMoid) == 2 * sizeof(uint64_t), "PMEMoid is {pool id, offset}");
    PMEMoid *oid = (PMEMoid *)(void *)link;
    if (pmemobj_alloc(pmb_pool, oid, size, 0, NULL, NULL))
        return NULL;
    return pmemobj_direct(*oid);
}

static void pmb_persist(const void *p, size_t n)
{
    pmemobj_persist(pmb_pool, p, n);
}

static int pmb_stats(struct bench_heap_stats *st)
{
    double blocks = 0, bytes = 0;
    for (PMEMoid o = pmemobj_first(pmb_pool); !OID_IS_NULL(o); o = pmemobj_next(o)) {
        blocks++;
        bytes += (double)pmemobj_alloc_usable_size(o);
    }
    st->blocks = blocks;
    st->heap_bytes = bytes; /* usable bytes: PMDK does not report its headers */
    return 0;
}

static void *pmb_mapping(void)
{
    return pmb_pool;
}

static const char *pmb_version(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "libpmemobj (API %d.%d)", PMEMOBJ_MAJOR_VERSION,
             PMEMOBJ_MINOR_VERSION);
    return buf;
}

BENCH_PERSISTENT_ARM(pmdk, pmb);
