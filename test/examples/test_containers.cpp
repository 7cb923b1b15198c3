/*
 * test_containers.cpp -- containers kept in an arena through fm::allocator:
 * boost::container::vector, map and string, boost::unordered_map, and the
 * libstdc++ containers that store the allocator's pointer type
 * (std::vector, std::basic_string, std::deque).
 *
 * Three processes (forked before any arena is open): the first builds every
 * container in a fresh arena and closes it; the second blocks the first's
 * base address so the arena must map elsewhere, reads everything back and
 * changes it; the third reads the changes back, runs fm_check, and
 * destroys one by name (fm::find_or_construct / find / destroy).
 *
 * libstdc++'s std::list, std::map/set and std::unordered_map keep raw
 * pointers in their nodes whatever the allocator's pointer type: they
 * compile with fm::allocator but do not survive a remap (docs/api.md).
 */
#include <fmalloc.hpp>

#include <boost/container/map.hpp>
#include <boost/container/string.hpp>
#include <boost/container/vector.hpp>
#include <boost/unordered_map.hpp>

#include <deque>
#include <string>
#include <vector>

#include <cerrno>
#include <cstdint>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

template <class T>
using A = fm::allocator<T>;
typedef boost::container::basic_string<char, std::char_traits<char>, A<char> > pstring;
typedef boost::container::vector<long, A<long> > pvector;
typedef boost::container::map<pstring, pvector, std::less<pstring>,
                              A<std::pair<const pstring, pvector> > >
    pmap;
typedef boost::unordered_map<pstring, std::size_t, boost::hash<pstring>, std::equal_to<pstring>,
                             A<std::pair<const pstring, std::size_t> > >
    pumap;
typedef std::vector<long, A<long> > svector;
typedef std::basic_string<char, std::char_traits<char>, A<char> > sstring;
typedef std::deque<int, A<int> > sdeque;

/* In the app root region. */
struct root {
    fm_ptr<pvector> vec;
    fm_ptr<pmap> map;
    fm_ptr<pumap> umap;
    fm_ptr<pstring> str;
    fm_ptr<svector> svec;
    fm_ptr<sstring> sstr;
    fm_ptr<sdeque> sdq;
};

enum { VEC_N = 100000, MAP_N = 3000, UMAP_N = 20000, DEQ_N = 50000 };

/* A container of type T constructed in the arena. */
template <class T>
static T *make()
{
    void *p = fmalloc(sizeof(T));
    require_true(p != NULL);
    return new (p) T();
}

/* A key long enough to leave the short-string buffer now and then. */
static pstring key(const char *prefix, long i)
{
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s-%ld%s", prefix, i,
                  i % 3 ? "" : "-with-a-tail-longer-than-any-short-string-buffer");
    return pstring(buf);
}

static void build(struct fm_info *fi)
{
    root *r = static_cast<root *>(fm_root(fi));
    r->vec = make<pvector>();
    for (long i = 0; i < VEC_N; i++)
        r->vec->push_back(i * 3);
    r->map = fm::find_or_construct<pmap>("map"); /* named as well */
    expect_true(r->map->empty());
    for (long i = 0; i < MAP_N; i++) {
        pvector &v = (*r->map)[key("m", i)];
        for (long j = 0; j <= i % 7; j++)
            v.push_back(i + j);
    }
    r->umap = fm::find_or_construct<pumap>("umap", 64); /* (bucket count) */
    for (long i = 0; i < UMAP_N; i++)
        r->umap->emplace(key("u", i), static_cast<std::size_t>(i));
    r->str = make<pstring>();
    for (int i = 0; i < 1000; i++)
        r->str->append("0123456789");
    r->svec = make<svector>();
    for (long i = 0; i < VEC_N; i++)
        r->svec->push_back(-i);
    r->sstr = make<sstring>();
    r->sstr->assign(5000, 'x');
    r->sdq = make<sdeque>();
    for (int i = 0; i < DEQ_N; i++)
        r->sdq->push_back(i);
}

/* Everything build() made, plus what modify() added when `modified`. */
static void verify(struct fm_info *fi, bool modified)
{
    root *r = static_cast<root *>(fm_root(fi));
    require_true(r->vec && r->map && r->umap && r->str && r->svec && r->sstr && r->sdq);
    expect_true(fm::find<pmap>("map") == r->map);
    expect_true(fm::find_or_construct<pumap>("umap") == r->umap);

    long n = modified ? VEC_N + 1000 : VEC_N;
    expect_eq(r->vec->size(), n);
    long bad = 0;
    for (long i = 0; i < n; i++)
        bad += (*r->vec)[i] != i * 3;
    expect_eq(bad, 0);

    expect_eq(r->map->size(), modified ? MAP_N - MAP_N / 2 + 100 : MAP_N);
    bad = 0;
    for (long i = 0; i < MAP_N; i++) {
        pmap::iterator it = r->map->find(key("m", i));
        bool gone = modified && i % 2 == 0;
        if (gone) {
            bad += it != r->map->end();
            continue;
        }
        if (it == r->map->end()) {
            bad++;
            continue;
        }
        bad += it->second.size() != static_cast<std::size_t>(i % 7 + 1 + (modified ? 1 : 0));
        bad += it->second[0] != i;
    }
    expect_eq(bad, 0);
    if (modified)
        expect_true(r->map->count(key("new", 99)) == 1);
    /* In order, as a map is. */
    bad = 0;
    for (pmap::iterator it = r->map->begin(), prev = it++; it != r->map->end(); prev = it++)
        bad += !(prev->first < it->first);
    expect_eq(bad, 0);

    expect_eq(r->umap->size(), UMAP_N);
    bad = 0;
    for (long i = 0; i < UMAP_N; i++) {
        pumap::iterator it = r->umap->find(key("u", i));
        bad += it == r->umap->end() || it->second != static_cast<std::size_t>(modified ? i * 2 : i);
    }
    expect_eq(bad, 0);

    expect_eq(r->str->size(), modified ? 10000 + 5 : 10000);
    expect_true(r->str->compare(0, 10, "0123456789") == 0);
    if (modified)
        expect_true(r->str->substr(10000) == "tail!");

    expect_eq(r->svec->size(), VEC_N);
    bad = 0;
    for (long i = 0; i < VEC_N; i++)
        bad += (*r->svec)[i] != (modified ? i : -i);
    expect_eq(bad, 0);
    expect_eq(r->sstr->size(), modified ? 5001 : 5000);
    expect_true(r->sstr->find_first_not_of('x') == (modified ? 5000u : sstring::npos));
    expect_eq(r->sdq->size(), modified ? DEQ_N + 2 : DEQ_N);
    if (modified)
        expect_true(r->sdq->front() == -1 && r->sdq->back() == DEQ_N);
    long sum = 0;
    for (sdeque::iterator it = r->sdq->begin(); it != r->sdq->end(); ++it)
        sum += *it;
    expect_eq(sum, static_cast<long>(DEQ_N) * (DEQ_N - 1) / 2 + (modified ? DEQ_N - 1 : 0));
}

static void modify(struct fm_info *fi)
{
    root *r = static_cast<root *>(fm_root(fi));
    for (long i = VEC_N; i < VEC_N + 1000; i++)
        r->vec->push_back(i * 3); /* reallocates at the new address */
    for (long i = 0; i < MAP_N; i++) {
        if (i % 2 == 0)
            r->map->erase(key("m", i));
        else
            (*r->map)[key("m", i)].push_back(-1);
    }
    for (long i = 0; i < 100; i++)
        (*r->map)[key("new", i)].push_back(i);
    for (pumap::iterator it = r->umap->begin(); it != r->umap->end(); ++it)
        it->second *= 2;
    r->umap->rehash(UMAP_N * 2); /* a new bucket array */
    r->str->append("tail!");
    for (std::size_t i = 0; i < r->svec->size(); i++)
        (*r->svec)[i] = static_cast<long>(i);
    r->sstr->push_back('y');
    r->sdq->push_front(-1);
    r->sdq->push_back(DEQ_N);
}

static struct fm_info *open_target(const char *path, bool expect_init)
{
    bool init = false;
    struct fm_info *fi = fmalloc_init(path, &init);
    if (!fi)
        std::fprintf(stderr, "fmalloc_init(%s): %s\n", path, fm_last_error_detail());
    require_true(fi != NULL);
    expect_true(init == expect_init);
    return fi;
}

/* Does fn throw fm::error with this code? */
template <class F>
static bool throws_code(int code, F fn)
{
    try {
        fn();
    } catch (const fm::error &e) {
        return e.code() == code;
    }
    return false;
}

/* Runs fn in a child process; its failures count in the parent. */
template <class F>
static void in_child(F fn)
{
    std::fflush(stdout);
    pid_t pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        int rc = fn();
        std::fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    require_true(waitpid(pid, &status, 0) == pid);
    expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main()
{
    const char *dir = harness_tmpdir();
    static char path[600];
    std::snprintf(path, sizeof path, "%s/containers.fm", dir);
    int fds[2];
    require_true(pipe(fds) == 0);

    in_child([&]() {
        struct fm_info *fi = open_target(path, true);
        build(fi);
        verify(fi, false);
        void *base = fi->mem;
        expect_eq(fm_close(fi), 0);
        expect_eq(write(fds[1], &base, sizeof base), sizeof base);
        return harness_done();
    });
    close(fds[1]); /* a child that failed early wrote nothing: read gets 0 */
    void *old_base = NULL;
    require_true(read(fds[0], &old_base, sizeof old_base) == sizeof old_base);

    in_child([&]() {
        /* The old base is taken: the arena must map elsewhere. */
        void *block = mmap(old_base, 1 << 20, PROT_NONE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        require_true(block == old_base);
        struct fm_info *fi = open_target(path, false);
        std::printf("built at %p, reopened at %p\n", old_base, fi->mem);
        expect_true(fi->mem != old_base);
        verify(fi, false);
        modify(fi);
        verify(fi, true);
        expect_eq(fm_check(fi), 0);
        expect_eq(fm_close(fi), 0);
        return harness_done();
    });

    in_child([&]() {
        struct fm_info *fi = open_target(path, false);
        verify(fi, true);
        expect_eq(fm_check(fi), 0);

        /* destroy<T>: unbinds, runs ~T (freeing the map's nodes), frees. */
        struct fm_stats before, after;
        expect_eq(fm_trim(fi, SIZE_MAX), 0);
        expect_eq(fm_stats(fi, &before), 0);
        expect_true(fm::destroy<pmap>("map"));
        expect_true(fm::find<pmap>("map") == nullptr);
        expect_true(!fm::destroy<pmap>("map"));
        expect_eq(fm_trim(fi, SIZE_MAX), 0);
        expect_eq(fm_stats(fi, &after), 0);
        std::printf("destroy<pmap>: %llu blocks freed\n",
                    (unsigned long long)(before.allocated_count - after.allocated_count));
        expect_true(before.allocated_count - after.allocated_count > MAP_N);
        static_cast<root *>(fm_root(fi))->map = nullptr;

        /* A name made for something smaller, and bad names, throw. */
        expect_true(fm_name_malloc(fi, "small", 8) != NULL);
        expect_true(throws_code(EINVAL, []() { fm::find<pumap>("small"); }));
        expect_true(throws_code(EINVAL, []() { fm::find_or_construct<pvector>(""); }));
        expect_eq(fm_check(fi), 0);
        expect_eq(fm_close(fi), 0);

        /* Read-only: found by name and read; constructing is EROFS. */
        struct fm_options ro;
        std::memset(&ro, 0, sizeof ro);
        ro.flags = FM_RDONLY;
        require_eq(fm_open(path, &ro, &fi), 0);
        fmalloc_set_target(fi);
        pumap *u = fm::find<pumap>("umap");
        expect_true(u != nullptr && u->size() == UMAP_N);
        expect_true(throws_code(EROFS, []() { fm::find_or_construct<pvector>("new"); }));
        expect_eq(fm_close(fi), 0);
        return harness_done();
    });
    return harness_done();
}
