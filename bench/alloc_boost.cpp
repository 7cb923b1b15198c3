/*
 * alloc_boost.cpp -- the Boost.Interprocess managed_mapped_file arm.
 *
 * One mapped file of a fixed size (a managed_mapped_file grows only while
 * closed), sized from the workload's capacity, with Boost's default
 * segment manager (rbtree_best_fit with a process-shared mutex, so it is
 * thread-safe).  realloc is what the segment manager offers: keep the
 * block if it is big enough, else try to expand it forward in place, else
 * allocate, copy and free.  A link is the offset from the segment's base.
 * Boost has no crash-atomic allocate-and-link, nor a durability step per
 * object; close() flushes the mapping (msync), as fm_close() does.
 */
#include <boost/interprocess/managed_mapped_file.hpp>
#include <boost/version.hpp>
#include <cstdio>
#include <cstring>
#include <new>
#include <unistd.h>

#include "bench.h"

namespace bip = boost::interprocess;

namespace
{

bip::managed_mapped_file *segment;

struct root_object {
    uint64_t words[8]; /* Boost aligns named objects to 8 bytes only */
};

int boost_open(const char *path, uint64_t capacity_bytes, bool create)
{
    try {
        if (create) {
            unlink(path);
            uint64_t size = capacity_bytes < (16ull << 20) ? (16ull << 20) : capacity_bytes;
            segment = new bip::managed_mapped_file(bip::create_only, path, size);
        } else {
            segment = new bip::managed_mapped_file(bip::open_only, path);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "managed_mapped_file(%s): %s\n", path, e.what());
        return 1;
    }
    return 0;
}

int boost_close()
{
    /* Durable at close, as fm_close() makes fmalloc's arena: msync. */
    bool ok = segment->flush();
    delete segment;
    segment = nullptr;
    return ok ? 0 : 1;
}

void *boost_malloc(size_t size)
{
    return segment->allocate(size, std::nothrow);
}

void boost_free(void *p)
{
    if (p)
        segment->deallocate(p);
}

void *boost_realloc(void *p, size_t size)
{
    if (!p)
        return boost_malloc(size);
    if (size == 0) {
        boost_free(p);
        return nullptr;
    }
    size_t old = segment->get_segment_manager()->size(p);
    if (size <= old)
        return p;
    bip::managed_mapped_file::size_type got = size;
    char *reuse = static_cast<char *>(p);
    char *q = segment->allocation_command<char>(bip::expand_fwd | bip::nothrow_allocation, size,
                                                got, reuse);
    if (q)
        return q; /* grown in place */
    q = static_cast<char *>(boost_malloc(size));
    if (!q)
        return nullptr;
    std::memcpy(q, p, old);
    segment->deallocate(p);
    return q;
}

void *boost_root()
{
    return segment->find_or_construct<root_object>("bench_root")()->words;
}

uint64_t boost_offset_of(const void *p)
{
    return p ? static_cast<uint64_t>(static_cast<const char *>(p) -
                                     static_cast<const char *>(segment->get_address()))
             : 0;
}

void *boost_pointer_at(uint64_t off)
{
    return off ? static_cast<char *>(segment->get_address()) + off : nullptr;
}

void *boost_alloc_to(uint64_t link[2], size_t size)
{
    void *p = boost_malloc(size);
    if (p)
        link[1] = boost_offset_of(p);
    return p;
}

void boost_persist(const void *, size_t) {}

int boost_stats(struct bench_heap_stats *st)
{
    st->blocks = -1; /* the segment manager does not count blocks */
    st->heap_bytes = static_cast<double>(segment->get_size() - segment->get_free_memory());
    return 0;
}

void *boost_mapping()
{
    return segment ? segment->get_address() : nullptr;
}

const char *boost_version()
{
    static char buf[64];
    std::snprintf(buf, sizeof buf, "Boost.Interprocess %d.%d.%d", BOOST_VERSION / 100000,
                  BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100);
    return buf;
}

bench_alloc make_boost_arm()
{
    bench_alloc a{};
    a.name = "boost";
    a.persistent = true;
    a.version = boost_version;
    a.open = boost_open;
    a.close = boost_close;
    a.malloc = boost_malloc;
    a.free = boost_free;
    a.realloc = boost_realloc;
    a.root = boost_root;
    a.offset_of = boost_offset_of;
    a.pointer_at = boost_pointer_at;
    a.alloc_to = boost_alloc_to;
    a.persist = boost_persist;
    a.stats = boost_stats;
    a.mapping = boost_mapping;
    return a;
}

} // namespace

extern "C" const bench_alloc bench_alloc_boost = make_boost_arm();
