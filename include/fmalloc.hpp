/*
 * fmalloc.hpp -- fm_ptr<T>, a typed relative pointer for C++ (C++11 or later).
 *
 * An fm_ptr<T> is what FM_PTR(T) is in C: one fm_off_t, the offset of the
 * pointee from the start of the arena file, 0 for NULL.  It is resolved
 * through the calling thread's current target arena (fmalloc_target(), set
 * with fmalloc_init() or fmalloc_set_target()), so objects can hold fm_ptrs
 * in the mapped file and use them like plain pointers:
 *
 *     struct node { int val; fm_ptr<struct node> next; };
 *
 *     struct node *n = (struct node *)fmalloc(sizeof(struct node));
 *     n->val = 1;
 *     n->next = NULL;                // or nullptr
 *     head->next = n;                // stores n's offset
 *     for (struct node *p = head; p; p = p->next)
 *         printf("%d\n", p->val);
 *
 * Invariants (checked by static_assert below and by test/examples):
 *   - standard-layout and trivially copyable, sizeof == alignof == 8: an
 *     fm_ptr can live in the mapped file, and copying it (also with memcpy,
 *     also to another place in the arena) keeps its meaning, because the
 *     offset is relative to the file start, not to the fm_ptr itself.
 *   - a default-constructed fm_ptr is null; so is a zero-filled one (the
 *     app root region and fm_calloc()ed memory start out all null).
 *   - every conversion between T * and fm_ptr<T> uses the current target;
 *     a null pointer and a zero offset convert without looking at it.  A
 *     pointer outside the target, or an offset past its end, is a bug
 *     (asserted unless NDEBUG).
 *
 * To use several arenas in one thread, switch with fmalloc_set_target(), or
 * use the explicit forms get(fi) / set(fi, p) and the C API.
 *
 * GCC note: GCC ignores __attribute__((packed)) on a struct holding an
 * fm_ptr (with a warning), because fm_ptr has constructors; the struct keeps
 * its natural layout, and 8-byte links stay aligned (single-copy atomic).
 */
#ifndef FMALLOC_HPP
#define FMALLOC_HPP

#include <fmalloc.h>

#include <cassert>
#include <cstddef>
#include <type_traits>

/*
 * Source compatibility with programs written for the original fmalloc,
 * whose header brought in stdio/stdlib and PAGE_SIZE, with which they find
 * the app root region at (char *)fi->mem + PAGE_SIZE.  Our root region is
 * at offset 4096 on every machine, so the fallback PAGE_SIZE is 4096.
 * Define FM_NO_FMALLOC_COMPAT to get fm_ptr alone.
 */
#ifndef FM_NO_FMALLOC_COMPAT
#include <stdio.h>
#include <stdlib.h>
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096
#endif
#endif

template <class T>
class fm_ptr {
public:
    typedef T element_type;
    typedef typename std::add_lvalue_reference<T>::type reference;

    /** Null. */
    constexpr fm_ptr() noexcept : off_(0) {}
    /**
     * The offset of p in the current target; null for nullptr, NULL or 0
     * (deliberately one constructor: a second one taking std::nullptr_t
     * would make `p = NULL` ambiguous).  p must lie in the current target.
     */
    fm_ptr(T *p) noexcept : off_(offset_in(fmalloc_target(), p)) {}

    /** An fm_ptr holding a raw offset (0 is null). */
    static fm_ptr from_offset(fm_off_t off) noexcept
    {
        fm_ptr p;
        p.off_ = off;
        return p;
    }

    /** The offset from the start of the file; 0 for null. */
    fm_off_t offset() const noexcept { return off_; }
    /**
     * The stored offset as an fm_malloc_to()/fm_free_from()/fm_realloc_to()
     * slot, for crash-safe linking: fm_malloc_to(fi, n->next.slot(), size).
     */
    fm_off_t *slot() noexcept { return &off_; }

    /** The pointer in the current target (nullptr for null). */
    T *get() const noexcept { return pointer_in(fmalloc_target(), off_); }
    /** The pointer in arena fi, whatever the current target is. */
    T *get(struct fm_info *fi) const noexcept { return pointer_in(fi, off_); }
    /** Store the offset of p in arena fi. */
    void set(struct fm_info *fi, T *p) noexcept { off_ = offset_in(fi, p); }

    operator T *() const noexcept { return get(); }
    T *operator->() const noexcept { return get(); }
    reference operator*() const noexcept { return *get(); }
    explicit operator bool() const noexcept { return off_ != 0; }

    /*
     * Comparisons: by offset between fm_ptrs (no arena needed), by address
     * with raw pointers.  A raw-pointer parameter also takes nullptr, NULL
     * and 0.  Parameters are by value so they can be packed members.
     */
    friend bool operator==(fm_ptr a, fm_ptr b) noexcept { return a.off_ == b.off_; }
    friend bool operator!=(fm_ptr a, fm_ptr b) noexcept { return a.off_ != b.off_; }
    friend bool operator==(fm_ptr a, T *b) noexcept { return a.get() == b; }
    friend bool operator!=(fm_ptr a, T *b) noexcept { return a.get() != b; }
    friend bool operator==(T *a, fm_ptr b) noexcept { return a == b.get(); }
    friend bool operator!=(T *a, fm_ptr b) noexcept { return a != b.get(); }

private:
    /*
     * fm_offset() gives 0 for a pointer outside fi and fm_pointer() NULL for
     * an offset past its end (or no arena at all): with no current target,
     * or the wrong one, a link would silently become null.  Asserted, so
     * debug builds stop at the mistake.
     */
    static fm_off_t offset_in(struct fm_info *fi, T *p) noexcept
    {
        if (!p)
            return 0;
        fm_off_t off = fm_offset(fi, const_cast<const void *>(static_cast<const volatile void *>(p)));
        assert(off != 0 && "fm_ptr: pointer is not in the current target arena");
        return off;
    }
    static T *pointer_in(struct fm_info *fi, fm_off_t off) noexcept
    {
        if (!off)
            return nullptr;
        T *p = static_cast<T *>(fm_pointer(fi, off));
        assert(p != nullptr && "fm_ptr: offset is not in the current target arena");
        return p;
    }

    fm_off_t off_; /* offset from the start of the file; 0 is null */
};

static_assert(sizeof(fm_ptr<int>) == sizeof(fm_off_t), "fm_ptr is one offset");
static_assert(alignof(fm_ptr<int>) == alignof(fm_off_t), "fm_ptr is aligned like an offset");
static_assert(std::is_standard_layout<fm_ptr<int> >::value, "fm_ptr is standard-layout");

#endif /* FMALLOC_HPP */
