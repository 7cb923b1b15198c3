// consumer.cpp -- the C++ side of an installed fmalloc: <fmalloc.hpp>'s
// fm_ptr<T> through the fmalloc-compatible target, linked via pkg-config.
//
//   consumer_cpp FILE   build a 3-node list on the first run; every run
//                       checks it and prints "sum=6"
#include <fmalloc.hpp>

#include <cstdio>

struct node {
    int val;
    fm_ptr<node> next;
};

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    bool created = false;
    struct fm_info *fi = fmalloc_init(argv[1], &created);
    if (!fi) {
        std::fprintf(stderr, "%s: %s\n", argv[1], fm_last_error_detail());
        return 1;
    }
    fm_off_t *root = static_cast<fm_off_t *>(fm_root(fi));
    if (created) {
        node *prev = nullptr;
        for (int i = 3; i >= 1; i--) {
            node *n = static_cast<node *>(fmalloc(sizeof(node)));
            if (!n)
                return 1;
            n->val = i;
            n->next = prev;
            prev = n;
        }
        *root = fm_offset(fi, prev);
    }
    int sum = 0;
    for (node *p = static_cast<node *>(fm_pointer(fi, *root)); p; p = p->next)
        sum += p->val;
    std::printf("sum=%d\n", sum);
    return (fm_close(fi) == 0 && sum == 6) ? 0 : 1;
}
