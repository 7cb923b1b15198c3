/*
 * containers.cpp -- bench_containers: the same Boost container kept in a
 * file by fmalloc (fm::allocator, found with fm::find_or_construct) and by
 * Boost.Interprocess (managed_mapped_file, find_or_construct).
 *
 *   bench_containers [--entries N] [--runs R] [--dir DIR] [--seed S]
 *
 * Per run and arm, each phase in a new process:
 *   build    create the file, construct a boost::container::map<uint64_t,
 *            uint64_t> by name, insert N entries (keys from a seeded
 *            xorshift), close (both sync the file at close)
 *   reopen   open the file, find the map by name, read its size: the time
 *            to the first use, which must not grow with N
 *   lookup   then look up all N keys (every node is touched once)
 * The figure is the median over the runs; Markdown on stdout, with the
 * ratio Boost / fmalloc (> 1: fmalloc is faster).
 */
#include <fmalloc.hpp>

#include <boost/container/map.hpp>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/managed_mapped_file.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace bip = boost::interprocess;

typedef std::pair<const uint64_t, uint64_t> entry;
typedef boost::container::map<uint64_t, uint64_t, std::less<uint64_t>, fm::allocator<entry> > fm_map;
typedef bip::allocator<entry, bip::managed_mapped_file::segment_manager> bip_alloc;
typedef boost::container::map<uint64_t, uint64_t, std::less<uint64_t>, bip_alloc> bip_map;

static const char *const map_name = "bench map";

static double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static uint64_t next_key(uint64_t &x)
{
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

enum phase { BUILD, REOPEN_LOOKUP };
struct times {
    double build, reopen, lookup;
    int ok;
};

/* The map just found after a reopen (opened at t0): its first use ends the
 * reopen time; then every key is looked up.  t.ok if all were there. */
template <class Map>
static void use_reopened(const Map *m, double t0, uint64_t n, uint64_t seed, times &t)
{
    volatile uint64_t size = m ? m->size() : 0;
    t.reopen = now_s() - t0;
    double t1 = now_s();
    uint64_t x = seed, found = 0;
    for (uint64_t i = 0; m && i < n; i++)
        found += m->count(next_key(x));
    t.lookup = now_s() - t1;
    t.ok = size == n && found == n;
}

/* ---- the fmalloc arm ----------------------------------------------------------- */

static times run_fmalloc(phase ph, const std::string &path, uint64_t n, uint64_t seed)
{
    times t = {0, 0, 0, 0};
    double t0 = now_s();
    struct fm_options opt;
    std::memset(&opt, 0, sizeof opt);
    opt.flags = ph == BUILD ? FM_CREATE : 0;
    struct fm_info *fi;
    if (fm_open(path.c_str(), &opt, &fi))
        return t;
    fmalloc_set_target(fi);
    if (ph == BUILD) {
        fm_map *m = fm::find_or_construct<fm_map>(map_name);
        uint64_t x = seed;
        for (uint64_t i = 0; i < n; i++)
            m->emplace(next_key(x), i);
        t.ok = fm_close(fi) == 0;
        t.build = now_s() - t0;
        return t;
    }
    use_reopened(fm::find<fm_map>(map_name), t0, n, seed, t);
    t.ok = t.ok && fm_close(fi) == 0;
    return t;
}

/* ---- the Boost.Interprocess arm -------------------------------------------------- */

static times run_boost(phase ph, const std::string &path, uint64_t n, uint64_t seed)
{
    times t = {0, 0, 0, 0};
    try {
        double t0 = now_s();
        if (ph == BUILD) {
            /* A managed_mapped_file does not grow while open: sized up front
               (about 2.5 times what the nodes need). */
            bip::managed_mapped_file seg(bip::create_only, path.c_str(), (1u << 20) + n * 160);
            bip_map *m = seg.find_or_construct<bip_map>(map_name)(seg.get_segment_manager());
            uint64_t x = seed;
            for (uint64_t i = 0; i < n; i++)
                m->emplace(next_key(x), i);
            seg.flush();
            t.build = 0; /* measured after the destructor unmaps */
            t.ok = 1;
        } else {
            bip::managed_mapped_file seg(bip::open_only, path.c_str());
            use_reopened(seg.find<bip_map>(map_name).first, t0, n, seed, t);
        }
        if (ph == BUILD)
            t.build = now_s() - t0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "boost: %s\n", e.what());
        t.ok = 0;
    }
    return t;
}

/* ---- driver ------------------------------------------------------------------------ */

/* Runs one phase of one arm in a child process; its times through a pipe. */
static times in_child(bool fm, phase ph, const std::string &path, uint64_t n, uint64_t seed)
{
    int fds[2];
    times t = {0, 0, 0, 0};
    if (pipe(fds))
        return t;
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        times r = fm ? run_fmalloc(ph, path, n, seed) : run_boost(ph, path, n, seed);
        _exit(write(fds[1], &r, sizeof r) == sizeof r ? 0 : 1);
    }
    close(fds[1]);
    if (pid < 0 || read(fds[0], &t, sizeof t) != sizeof t)
        t.ok = 0;
    close(fds[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return t;
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

int main(int argc, char **argv)
{
    uint64_t n = 1000000, seed = 88172645463325252ull;
    int runs = 3;
    std::string dir = "/dev/shm";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--entries"))
            n = std::strtoull(argv[i + 1], NULL, 0);
        else if (!std::strcmp(argv[i], "--runs"))
            runs = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!std::strcmp(argv[i], "--seed"))
            seed = std::strtoull(argv[i + 1], NULL, 0);
    }
    if (n == 0 || runs < 1 || seed == 0) {
        std::fprintf(stderr, "usage: bench_containers [--entries N>0] [--runs R>0] [--dir DIR] [--seed S!=0]\n");
        return 2;
    }
    std::vector<double> v[2][3];
    bool failed = false;
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < 2; k++) {
            bool fm = (r + k) % 2 == 0; /* alternate which arm goes first */
            std::string path = dir + "/fmbench-containers-" + std::to_string(getpid()) +
                               (fm ? "-fmalloc" : "-boost");
            times b = in_child(fm, BUILD, path, n, seed + r);
            times o = in_child(fm, REOPEN_LOOKUP, path, n, seed + r);
            unlink(path.c_str());
            if (!b.ok || !o.ok) {
                std::fprintf(stderr, "bench_containers: %s run %d FAILED\n", fm ? "fmalloc" : "boost", r);
                failed = true;
            }
            v[fm ? 0 : 1][0].push_back(b.build);
            v[fm ? 0 : 1][1].push_back(o.reopen);
            v[fm ? 0 : 1][2].push_back(o.lookup);
        }
    }
    static const char *const what[3] = {"build (insert N, close)", "reopen (open, find by name)",
                                        "lookup all N after reopen"};
    std::printf("| %llu-entry boost::container::map<uint64_t, uint64_t>, median of %d | fmalloc | "
                "Boost.Interprocess | Boost / fmalloc |\n| --- | ---: | ---: | ---: |\n",
                (unsigned long long)n, runs);
    for (int i = 0; i < 3; i++) {
        double f = median(v[0][i]), b = median(v[1][i]);
        std::printf("| %s | %.3f ms | %.3f ms | %.2fx |\n", what[i], f * 1e3, b * 1e3, f > 0 ? b / f : 0);
    }
    return failed ? 1 : 0;
}
