/*
 * test_fm_ptr.cpp -- fm_ptr<T> from fmalloc.hpp (built as C++11).
 *
 * Layout guarantees (compile time); null without any arena; conversions to
 * and from T * through the current target; comparisons with fm_ptr, T *,
 * nullptr and NULL; explicit bool; -> and *; a memcpy'd copy keeps its
 * meaning (in the arena, on the stack, across a reopen); the same offset
 * resolved in another target; the explicit-arena forms; slot() with
 * fm_malloc_to()/fm_free_from().
 */
#include <fmalloc.hpp>

#include <cstdio>
#include <cerrno>
#include <cstring>
#include <type_traits>


#include "harness.h"

/* GCC 12 warns, falsely, when a local fm_ptr (a packed class) converts
   to T * implicitly (docs/api.md); this test does that on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Waddress-of-packed-member"
#endif

struct node {
    int val;
    fm_ptr<struct node> next;
};

/* A link aligned for fm_malloc_to()'s slot. */
struct anode {
    int val;
    alignas(8) fm_ptr<struct anode> next;
};
static_assert(sizeof(anode) == 16 && offsetof(anode, next) == 8, "alignas(8) aligns the link");

struct holder {
    fm_ptr<struct node> p;
    fm_ptr<const struct node> cp;
    fm_ptr<void> vp;
};

/* What the C side declares for the same layout. */
struct c_node {
    int val;
    FM_PTR(struct c_node) next;
};

static_assert(sizeof(fm_ptr<node>) == 8, "one fm_off_t");
static_assert(alignof(fm_ptr<node>) == 1, "packed, as the original fmalloc's");
static_assert(std::is_standard_layout<fm_ptr<node> >::value, "standard-layout");
static_assert(std::is_trivially_copyable<fm_ptr<node> >::value, "trivially copyable");
static_assert(std::is_trivially_destructible<fm_ptr<node> >::value, "trivially destructible");
static_assert(std::is_standard_layout<node>::value, "a struct of fm_ptrs stays standard-layout");
static_assert(std::is_trivially_copyable<node>::value, "... and trivially copyable");
/* Packed: no padding before an fm_ptr (FM_PTR in C is 8-byte aligned). */
static_assert(sizeof(node) == 12 && offsetof(node, next) == 4, "int + fm_ptr is 12 bytes");
static_assert(sizeof(c_node) == 16, "FM_PTR keeps its alignment");
/* (fm_ptr converts to bool implicitly too, through T *, as a raw pointer
   does; `if (p)` picks the explicit operator bool, which needs no arena.) */
static_assert(std::is_convertible<fm_ptr<node>, node *>::value, "converts to T *");
static_assert(std::is_convertible<fm_ptr<node>, void *>::value, "converts to void *");
static_assert(std::is_convertible<node *, fm_ptr<node> >::value, "converts from T *");
static_assert(std::is_convertible<std::nullptr_t, fm_ptr<node> >::value, "converts from nullptr");
static_assert(!std::is_convertible<int *, fm_ptr<node> >::value, "not constructed from another pointer type");
static_assert(!std::is_convertible<fm_ptr<int>, node *>::value, "not implicitly to another pointer type");
static_assert(std::is_constructible<char *, fm_ptr<node> >::value, "explicitly to any pointer type");
static_assert(std::is_constructible<std::uintptr_t, fm_ptr<node> >::value, "explicitly to an integer");
static_assert(!std::is_convertible<fm_ptr<node>, std::uintptr_t>::value, "not implicitly to an integer");
static_assert(std::is_assignable<fm_ptr<node> &, void *>::value, "assigned from void * (fmalloc())");
static_assert(std::is_convertible<fm_ptr<node>, fm_ptr<const node> >::value, "to const");
static_assert(std::is_convertible<fm_ptr<node>, fm_ptr<void> >::value, "to void");
static_assert(!std::is_convertible<fm_ptr<void>, fm_ptr<node> >::value, "not implicitly from void");
static_assert(std::is_constructible<fm_ptr<node>, fm_ptr<void> >::value, "explicitly from void");
static_assert(!std::is_convertible<fm_ptr<const node>, fm_ptr<node> >::value, "const stays const");

static void test_without_arena()
{
    expect_true(fmalloc_target() == NULL);
    fm_ptr<node> a;
    fm_ptr<node> b = nullptr;
    fm_ptr<node> c = NULL;
    fm_ptr<node> d(nullptr);
    node *raw = a;
    expect_true(raw == nullptr);
    expect_true(!a);
    expect_true(a == nullptr && nullptr == a && a == NULL && NULL == a);
    expect_true(a == b && b == c && c == d);
    expect_true(!(a != nullptr));
    expect_eq(a.offset(), 0);
    expect_true(fm_ptr<node>::from_offset(0) == nullptr);
    /* Zero bytes are a null fm_ptr (the root region starts out zeroed). */
    fm_ptr<node> z;
    std::memset(static_cast<void *>(&z), 0, sizeof z);
    expect_true(!z && z.get() == nullptr);
}

static void test_conversions(struct fm_info *fi)
{
    node *n1 = static_cast<node *>(fmalloc(sizeof(node)));
    node *n2 = static_cast<node *>(fmalloc(sizeof(node)));
    require_true(n1 != NULL && n2 != NULL);
    n1->val = 1;
    n1->next = NULL;
    n2->val = 2;
    n2->next = nullptr;
    expect_true(!n1->next && !n2->next);

    n1->next = n2;
    expect_true(static_cast<bool>(n1->next));
    expect_eq(n1->next.offset(), fm_offset(fi, n2));
    node *back = n1->next;
    expect_true(back == n2);
    expect_true(n1->next.get() == n2 && n1->next.get(fi) == n2);
    expect_eq(n1->next->val, 2);
    expect_eq((*n1->next).val, 2);
    n1->next->val = 22;
    expect_eq(n2->val, 22);

    expect_true(n1->next == n2);
    expect_true(n2 == n1->next);
    expect_true(n1->next != n1);
    expect_true(n1 != n1->next);
    expect_true(n1->next != nullptr && nullptr != n1->next);
    expect_true(n1->next != NULL);
    expect_true(n2->next == nullptr && n2->next == NULL);
    const node *cn2 = n2;
    expect_true(n1->next == cn2);

    fm_ptr<node> p2 = n2, p1 = n1;
    expect_true(p2 == n1->next);
    expect_true(p1 != n1->next);
    expect_true(p2.offset() == n1->next.offset());

    /* Loops read like plain pointers. */
    int sum = 0;
    for (node *n = n1; n; n = n->next)
        sum += n->val;
    expect_eq(sum, 23);

    /* const and void pointees. */
    struct holder *h = static_cast<struct holder *>(fcalloc(1, sizeof(struct holder)));
    require_true(h != NULL);
    expect_true(!h->p && !h->cp && !h->vp);
    h->cp = n2;
    h->vp = n2;
    const node *c = h->cp;
    void *v = h->vp;
    expect_true(c == n2 && v == static_cast<void *>(n2));
    expect_eq(h->cp->val, 22);

    /* Explicit arena forms. */
    h->p.set(fi, n1);
    expect_true(h->p == n1);
    expect_true(fm_ptr<node>::from_offset(fm_offset(fi, n2)) == n2);

    /* Reassign and clear. */
    n1->next = n1;
    expect_true(n1->next == n1 && n1->next->next->next == n1);
    n1->next = 0;
    expect_true(!n1->next);
    ffree(h);
    ffree(n2);
    ffree(n1);
}

/* What code written for the original fmalloc does with an fm_ptr. */
static void test_upstream_forms(struct fm_info *fi)
{
    struct arr {
        fm_ptr<int> p;
        fm_ptr<node> n;
        fm_ptr<char> c;
    };
    arr *a = static_cast<arr *>(fcalloc(1, sizeof(arr)));
    require_true(a != NULL);
    a->p = fmalloc(10 * sizeof(int)); /* void * assigns */
    require_true(a->p != NULL);
    for (int i = 0; i < 10; i++)
        a->p[i] = i * i;
    int *raw = a->p;

    /* Arithmetic counts elements, like an int *. */
    fm_ptr<int> q = a->p + 3;
    expect_true(q == raw + 3);
    expect_eq(*q, 9);
    expect_eq(q - a->p, 3);
    expect_eq(*(2 + a->p), 4);
    expect_eq(*(q - 1), 4);
    q += 2;
    expect_eq(*q, 25);
    q -= 1;
    expect_eq(*q, 16);
    expect_eq(*q++, 16);
    expect_eq(*q, 25);
    expect_eq(*--q, 16);
    expect_eq(*(q--), 16);
    expect_eq(*q, 9);
    expect_eq(q.offset(), a->p.offset() + 3 * sizeof(int));
    expect_eq(q[1], 16);

    /* Every comparison, between fm_ptrs and with raw pointers. */
    expect_true(a->p < q && a->p <= q && q > a->p && q >= a->p && q != a->p);
    expect_true(raw < q && q > raw && raw + 3 == q && q <= raw + 3 && q >= raw + 3);
    expect_true(!(q < raw + 3) && !(raw + 3 > q));
    fm_ptr<const int> cq = q;
    expect_true(cq == q && q == cq && cq >= a->p);
    fm_ptr<void> vq = q;
    expect_true(vq == q && (vq + 4) == q + 1);
    fm_ptr<int> back(vq);
    expect_true(back == q);
    expect_true(q != 0 && q != NULL && q != nullptr);

    /* To any pointer type and to integers: the address. */
    char *c = (char *)q;
    expect_true(c == reinterpret_cast<char *>(raw + 3));
    expect_eq((std::uintptr_t)q, reinterpret_cast<std::uintptr_t>(raw + 3));
    expect_eq((unsigned long)q, reinterpret_cast<unsigned long>(raw + 3));
    expect_eq((long)a->n, 0);
    a->c = (char *)raw; /* another pointer type, cast */
    expect_true(a->c == reinterpret_cast<char *>(raw));
    a->n = raw; /* any pointer assigns, as upstream allowed */
    expect_eq(a->n.offset(), a->p.offset());
    a->n = (std::uintptr_t)raw; /* an address held in an integer */
    expect_eq(a->n.offset(), a->p.offset());
    a->n = 0;
    expect_true(!a->n);
    a->n = NULL;
    expect_true(!a->n);
    expect_eq(fm_offset(fi, raw), a->p.offset());

    ffree(a->p);
    ffree(a);
}

/* Copies made byte-for-byte point at the same object. */
static void test_memcpy(struct fm_info *fi)
{
    node *target = static_cast<node *>(fmalloc(sizeof(node)));
    node *src = static_cast<node *>(fmalloc(sizeof(node)));
    node *dst = static_cast<node *>(fmalloc(sizeof(node)));
    require_true(target && src && dst);
    target->val = 7;
    target->next = nullptr;
    src->val = 5;
    src->next = target;

    std::memcpy(static_cast<void *>(dst), src, sizeof *src); /* elsewhere in the arena */
    expect_true(dst->next == target);
    expect_eq(dst->next->val, 7);

    node on_stack; /* outside the arena: still base-relative */
    std::memcpy(static_cast<void *>(&on_stack), src, sizeof on_stack);
    expect_true(on_stack.next == target);

    fm_ptr<node> copy = src->next; /* plain copy */
    expect_true(copy == target && copy == src->next);
    copy = dst->next;
    expect_true(copy == target);

    /* Keep it in the root for the reopen test. */
    fm_ptr<node> *root = static_cast<fm_ptr<node> *>(fm_root(fi));
    root[0] = src;
    root[1] = dst;
}

/* The offset is resolved in whichever arena is the current target. */
static void test_targets(struct fm_info *fa, struct fm_info *fb)
{
    fmalloc_set_target(fa);
    node *na = static_cast<node *>(fmalloc(sizeof(node)));
    require_true(na != NULL);
    na->val = 100;
    na->next = nullptr;
    fm_ptr<node> p = na;
    fm_off_t off = p.offset();

    fmalloc_set_target(fb);
    node *nb = static_cast<node *>(fm_pointer(fb, off)); /* both arenas are 1 MiB */
    require_true(nb != NULL);
    expect_true(nb != na);
    expect_true(p.get() == nb);
    expect_true(p.get(fa) == na);
    fmalloc_set_target(fa);
    expect_true(p == na);
    ffree(na);
}

/* slot(): crash-safe linking of an fm_ptr field. */
static void test_slot(struct fm_info *fi)
{
    node *u = static_cast<node *>(fcalloc(1, sizeof(node)));
    require_true(u != NULL);
    errno = 0;
    expect_true(fm_malloc_to(fi, u->next.slot(), 8) == NULL); /* at offset 4: refused */
    expect_eq(errno, EINVAL);
    ffree(u);

    anode *n = static_cast<anode *>(fcalloc(1, sizeof(anode)));
    require_true(n != NULL);
    anode *m = static_cast<anode *>(fm_malloc_to(fi, n->next.slot(), sizeof(anode)));
    require_true(m != NULL);
    expect_true(n->next == m);
    m->val = 9;
    m->next = nullptr;
    expect_eq(n->next->val, 9);
    fm_free_from(fi, n->next.slot());
    expect_true(!n->next);
    ffree(n);
}

/* A pointer outside the arena (a stack object) round-trips in this
   process: containers on the stack link into themselves. */
static void test_outside_pointer(struct fm_info *fi)
{
    int outside = 5;
    fm_ptr<int> p = &outside;
    expect_true(p);
    expect_true(p.get() == &outside && p.get(fi) == &outside);
    expect_eq(*p, 5);
    expect_true(p == &outside);
    fm_ptr<int> q = p + 0;
    expect_true(q == p);
}

int main()
{
    test_without_arena();

    const char *dir = harness_tmpdir();
    char path_a[600], path_b[600];
    std::snprintf(path_a, sizeof path_a, "%s/a.fm", dir);
    std::snprintf(path_b, sizeof path_b, "%s/b.fm", dir);

    bool init = false;
    struct fm_info *fa = fmalloc_init(path_a, &init);
    require_true(fa != NULL);
    expect_true(init);
    expect_true(fmalloc_target() == fa);
    test_conversions(fa);
    test_upstream_forms(fa);
    test_memcpy(fa);
    test_slot(fa);
    test_outside_pointer(fa);

    struct fm_info *fb = fmalloc_init(path_b, &init);
    require_true(fb != NULL);
    test_targets(fa, fb);

    /* Reopen a (at whatever address): the root's fm_ptrs still resolve. */
    expect_eq(fm_check(fa), 0);
    void *old_base = fa->mem;
    expect_eq(fm_close(fa), 0);
    fa = fmalloc_init(path_a, &init);
    require_true(fa != NULL);
    expect_true(!init);
    std::printf("base %p -> %p\n", old_base, fa->mem);
    fm_ptr<node> *root = static_cast<fm_ptr<node> *>(fm_root(fa));
    expect_true(root[0] && root[1]);
    expect_true(root[0]->next == root[1]->next);
    expect_eq(root[0]->val, 5);
    expect_eq(root[0]->next->val, 7);
    expect_eq(root[1]->next->val, 7);
    expect_eq(fm_check(fa), 0);

    expect_eq(fm_close(fa), 0);
    expect_eq(fm_close(fb), 0);
    return harness_done();
}
