/*
 * fmalloc.hpp -- fm_ptr<T>, a typed relative pointer for C++ (C++11 or
 * later), and fm::allocator<T>, which keeps standard-style containers in an
 * arena.
 *
 * An fm_ptr<T> holds one fm_off_t, the offset of the pointee from the start
 * of the arena file, 0 for NULL.  It is resolved through the calling
 * thread's current target arena (fmalloc_target(), set with fmalloc_init()
 * or fmalloc_set_target()), so objects can hold fm_ptrs in the mapped file
 * and use them like plain pointers:
 *
 *     struct node { int val; fm_ptr<struct node> next; } __attribute__((packed));
 *
 *     struct node *n = (struct node *)fmalloc(sizeof(struct node));
 *     n->val = 1;
 *     n->next = NULL;                // or nullptr
 *     head->next = n;                // stores n's offset
 *     for (struct node *p = head; p; p = p->next)
 *         printf("%d\n", p->val);
 *
 * Layout (the same on every compiler, and the same as the original
 * yasukata/fmalloc's fm_ptr, so files written by programs built against
 * either header read back under the other):
 *   - sizeof == 8, alignof == 1: the class is packed.  A packed struct
 *     holding an fm_ptr is packed (GCC refuses to pack a struct around an
 *     unpacked class with constructors, Clang does not: an unpacked fm_ptr
 *     gave two layouts), and in an unpacked struct an fm_ptr follows the
 *     previous field without padding: struct { int v; fm_ptr<X> p; } is 12
 *     bytes with p at 4.  A link that must be 8-byte aligned (for atomic
 *     loads, or for fm_malloc_to(), whose slot must be aligned) says so:
 *     alignas(8) fm_ptr<X> p;  The C macro FM_PTR(T) is 8-byte aligned.
 *   - standard-layout, trivially copyable and trivially destructible:
 *     copying an fm_ptr (also with memcpy, also to another place in the
 *     arena) keeps its meaning, because the offset is relative to the file
 *     start, not to the fm_ptr itself.
 *   - a default-constructed fm_ptr is null; so is a zero-filled one (the
 *     app root region and fm_calloc()ed memory start out all null).
 *
 * Conversions: every conversion between a raw pointer and an fm_ptr goes
 * through the current target: the offset is the address minus the target's
 * base.  A null pointer and a zero offset convert without looking at it.
 * A pointer outside the target (on the stack, say) converts back to itself
 * in the same process, but it means nothing in the file: only pointers
 * into the arena belong in it.  To use several arenas in one
 * thread, switch with fmalloc_set_target(), or use the explicit forms
 * get(fi) / set(fi, p) and the C API.
 *
 * Arithmetic counts elements, as on a T * (p + 1 is the next T); the
 * original fmalloc added bytes.  docs/api.md lists every difference.
 */
#ifndef FMALLOC_HPP
#define FMALLOC_HPP

#include <fmalloc.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

/*
 * Source compatibility with programs written for the original fmalloc,
 * whose header brought in <stdio.h>, <stdlib.h> (through stdio), <string.h>,
 * <vector> and PAGE_SIZE, with which they find the app root region at
 * (char *)fi->mem + PAGE_SIZE.  Our root region is at offset 4096 on every
 * machine, so the fallback PAGE_SIZE is 4096.  Define FM_NO_FMALLOC_COMPAT
 * to get fm_ptr alone, and conversions that take only T * and void *.
 */
#ifndef FM_NO_FMALLOC_COMPAT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096
#endif

/*
 * The original fmalloc_init() exits the process when the file cannot be
 * opened; ours returns NULL with the reason in fm_last_error().  Programs
 * that never check (and would crash at fi->mem) can ask for the exit:
 * define FM_FMALLOC_INIT_EXITS before including this header.
 */
#ifdef FM_FMALLOC_INIT_EXITS
static inline struct fm_info *fm_fmalloc_init_or_exit_(const char *filepath, bool *init)
{
    struct fm_info *fi = (fmalloc_init)(filepath, init);
    if (!fi) {
        fprintf(stderr, "fmalloc_init: %s: %s\n", filepath, fm_last_error_detail());
        exit(1);
    }
    return fi;
}
#define fmalloc_init(filepath, init) fm_fmalloc_init_or_exit_((filepath), (init))
#endif
#endif /* FM_NO_FMALLOC_COMPAT */

namespace fm {
namespace detail {

template <class U>
struct dependent_false : std::false_type {};

/*
 * The offset of p from fi's base; 0 for null.  Any address has one (the
 * difference wraps modulo 2^64), as in the original fmalloc: an fm_ptr to
 * an object outside the arena -- a container or a string on the stack,
 * whose links point into itself -- round-trips in this process while the
 * target stays the same.  Only offsets into the arena mean anything in the
 * file.  0 stays null: the base is the superblock, never a user object.
 * Inline and without a library call: containers resolve links constantly.
 */
inline fm_off_t offset_in(struct fm_info *fi, const volatile void *p) noexcept
{
    if (!p)
        return 0;
    std::uintptr_t base = fi ? reinterpret_cast<std::uintptr_t>(fi->mem) : 0;
    return static_cast<fm_off_t>(reinterpret_cast<std::uintptr_t>(p) - base);
}

inline void *pointer_in(struct fm_info *fi, fm_off_t off) noexcept
{
    if (!off)
        return nullptr;
    std::uintptr_t base = fi ? reinterpret_cast<std::uintptr_t>(fi->mem) : 0;
    return reinterpret_cast<void *>(base + static_cast<std::uintptr_t>(off));
}

/* sizeof for arithmetic: fm_ptr<void> steps by bytes, as GNU C does. */
template <class T>
struct step {
    static const std::ptrdiff_t bytes = sizeof(T);
};
template <>
struct step<void> {
    static const std::ptrdiff_t bytes = 1;
};
template <>
struct step<const void> {
    static const std::ptrdiff_t bytes = 1;
};

template <class From, class To, class = void>
struct static_castable : std::false_type {};
template <class From, class To>
struct static_castable<From, To,
                       decltype((void)static_cast<To *>(std::declval<From *>()))>
    : std::true_type {};

/* Converting a U * to a T * moves the address (a base class at a non-zero
   offset) only between two class types. */
template <class U, class T>
struct same_address
    : std::integral_constant<bool, std::is_void<U>::value || std::is_void<T>::value ||
                                       std::is_same<typename std::remove_cv<U>::type,
                                                    typename std::remove_cv<T>::type>::value ||
                                       !std::is_class<U>::value || !std::is_class<T>::value> {
};

template <class I>
struct is_int_not_bool
    : std::integral_constant<bool, std::is_integral<I>::value && !std::is_same<I, bool>::value> {};

} // namespace detail
} // namespace fm

template <class T>
class fm_ptr {
    template <class U>
    using if_int = typename std::enable_if<fm::detail::is_int_not_bool<U>::value, int>::type;

public:
    typedef T element_type;
    typedef typename std::remove_cv<T>::type value_type;
    typedef std::ptrdiff_t difference_type;
    typedef fm_ptr pointer;
    typedef typename std::add_lvalue_reference<T>::type reference;
    typedef std::random_access_iterator_tag iterator_category;
    template <class U>
    using rebind = fm_ptr<U>;

    /** Null. */
    constexpr fm_ptr() noexcept : off_(0) {}
    fm_ptr(const fm_ptr &) = default;
    fm_ptr &operator=(const fm_ptr &) = default;
    /**
     * The offset of p in the current target; null for nullptr, NULL or 0
     * (deliberately one constructor: a second one taking std::nullptr_t
     * would make `fm_ptr<T> p = NULL` ambiguous).
     */
    fm_ptr(T *p) noexcept : off_(fm::detail::offset_in(fmalloc_target(), p)) {}

    /** fm_ptr<Derived> -> fm_ptr<Base>, fm_ptr<T> -> fm_ptr<const T> / fm_ptr<void>. */
    template <class U, typename std::enable_if<std::is_convertible<U *, T *>::value, int>::type = 0>
    fm_ptr(const fm_ptr<U> &o) noexcept : off_(convert_from(o))
    {
    }
    /** fm_ptr<void> -> fm_ptr<T> and other static_casts, written out. */
    template <class U,
              typename std::enable_if<!std::is_convertible<U *, T *>::value &&
                                          fm::detail::static_castable<U, T>::value,
                                      int>::type = 0>
    explicit fm_ptr(const fm_ptr<U> &o) noexcept : off_(convert_from(o))
    {
    }

    /** An fm_ptr holding a raw offset (0 is null). */
    static fm_ptr from_offset(fm_off_t off) noexcept
    {
        fm_ptr p;
        p.off_ = off;
        return p;
    }
    /** std::pointer_traits<fm_ptr<T>>::pointer_to(r): r must be in the target. */
    template <class U = T>
    static fm_ptr pointer_to(typename std::enable_if<!std::is_void<U>::value, U>::type &r) noexcept
    {
        return fm_ptr(&r);
    }

    /*
     * Assignment from a raw pointer, as the original fmalloc allowed it:
     * any pointer type (n->next = fmalloc(size) needs void *), and integers
     * holding an address (0 and NULL are null).
     */
    template <class U>
    fm_ptr &operator=(U *p) noexcept
    {
#ifdef FM_NO_FMALLOC_COMPAT
        static_assert(std::is_convertible<U *, T *>::value || std::is_void<U>::value,
                      "fm_ptr<T>: assign a T * (cast it: p = static_cast<T *>(q))");
#endif
        off_ = fm::detail::offset_in(fmalloc_target(), static_cast<T *>((void *)p));
        return *this;
    }
    template <class I, if_int<I> = 0>
    fm_ptr &operator=(I addr) noexcept
    {
#ifdef FM_NO_FMALLOC_COMPAT
        static_assert(fm::detail::dependent_false<I>::value,
                      "fm_ptr<T>: assign a pointer, or nullptr for null");
#endif
        off_ = fm::detail::offset_in(fmalloc_target(),
                                     reinterpret_cast<void *>(static_cast<std::uintptr_t>(addr)));
        return *this;
    }

    /** The offset from the start of the file; 0 for null. */
    fm_off_t offset() const noexcept { return off_; }
    /**
     * The stored offset as an fm_malloc_to()/fm_free_from()/fm_realloc_to()
     * slot, for crash-safe linking: fm_malloc_to(fi, n->next.slot(), size).
     * The slot must be 8-byte aligned there: declare the field alignas(8).
     */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Waddress-of-packed-member"
#endif
    fm_off_t *slot() noexcept { return reinterpret_cast<fm_off_t *>(this); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

    /** The pointer in the current target (nullptr for null). */
    T *get() const noexcept { return get(fmalloc_target()); }
    /** The pointer in arena fi, whatever the current target is. */
    T *get(struct fm_info *fi) const noexcept
    {
        return static_cast<T *>(fm::detail::pointer_in(fi, off_));
    }
    /** Store the offset of p in arena fi. */
    void set(struct fm_info *fi, T *p) noexcept { off_ = fm::detail::offset_in(fi, p); }

    operator T *() const noexcept { return get(); }
    /** (char *)p, (struct other *)p: what the original fmalloc converted to implicitly. */
    template <class U>
    explicit operator U *() const noexcept
    {
        return static_cast<U *>((void *)get());
    }
    /** (uintptr_t)p: the address, as the original fmalloc gave it. */
    template <class I, if_int<I> = 0>
    explicit operator I() const noexcept
    {
        return static_cast<I>(reinterpret_cast<std::uintptr_t>(get()));
    }
    explicit operator bool() const noexcept { return off_ != 0; }

    T *operator->() const noexcept { return get(); }
    reference operator*() const noexcept { return *get(); }
    template <class I, if_int<I> = 0>
    reference operator[](I i) const noexcept
    {
        return *(*this + i);
    }

    /* Arithmetic in elements, on the offset (no arena needed). */
    template <class I, if_int<I> = 0>
    fm_ptr &operator+=(I n) noexcept
    {
        off_ += static_cast<fm_off_t>(static_cast<std::ptrdiff_t>(n) * step());
        return *this;
    }
    template <class I, if_int<I> = 0>
    fm_ptr &operator-=(I n) noexcept
    {
        off_ -= static_cast<fm_off_t>(static_cast<std::ptrdiff_t>(n) * step());
        return *this;
    }
    fm_ptr &operator++() noexcept { return *this += 1; }
    fm_ptr &operator--() noexcept { return *this -= 1; }
    fm_ptr operator++(int) noexcept
    {
        fm_ptr old = *this;
        *this += 1;
        return old;
    }
    fm_ptr operator--(int) noexcept
    {
        fm_ptr old = *this;
        *this -= 1;
        return old;
    }
    template <class I, if_int<I> = 0>
    friend fm_ptr operator+(fm_ptr p, I n) noexcept
    {
        return p += n;
    }
    template <class I, if_int<I> = 0>
    friend fm_ptr operator+(I n, fm_ptr p) noexcept
    {
        return p += n;
    }
    template <class I, if_int<I> = 0>
    friend fm_ptr operator-(fm_ptr p, I n) noexcept
    {
        return p -= n;
    }
    friend std::ptrdiff_t operator-(fm_ptr a, fm_ptr b) noexcept
    {
        return static_cast<std::ptrdiff_t>(a.off_ - b.off_) / step();
    }

    /*
     * The original fmalloc also had p * x, p / x, p | x, p ^ x, p << x and
     * p >> x on the address; they are refused here with what to write.
     */
#define FM_PTR_REFUSE_(op)                                                                   \
    template <class U>                                                                       \
    fm_ptr operator op(const U &) const noexcept                                             \
    {                                                                                        \
        static_assert(fm::detail::dependent_false<U>::value,                                 \
                      "fm_ptr: no bit or scaling arithmetic on a pointer; write "            \
                      "(uintptr_t)p " #op " x on the address");                              \
        return *this;                                                                        \
    }
    FM_PTR_REFUSE_(*)
    FM_PTR_REFUSE_(/)
    FM_PTR_REFUSE_(|)
    FM_PTR_REFUSE_(^)
    FM_PTR_REFUSE_(<<)
    FM_PTR_REFUSE_(>>)
#undef FM_PTR_REFUSE_

    /*
     * Comparisons with raw pointers by address (a raw-pointer parameter
     * also takes nullptr, NULL and 0); between fm_ptrs by offset (below the
     * class).  Parameters are by value so they can be packed members.
     */
#define FM_PTR_CMP_RAW_(op)                                                                  \
    friend bool operator op(fm_ptr a, T *b) noexcept { return a.get() op b; }                \
    friend bool operator op(T *a, fm_ptr b) noexcept { return a op b.get(); }
    FM_PTR_CMP_RAW_(==)
    FM_PTR_CMP_RAW_(!=)
    FM_PTR_CMP_RAW_(<)
    FM_PTR_CMP_RAW_(<=)
    FM_PTR_CMP_RAW_(>)
    FM_PTR_CMP_RAW_(>=)
#undef FM_PTR_CMP_RAW_

private:
    /* A function, not a constant: T may still be incomplete when fm_ptr<T> is. */
    static constexpr std::ptrdiff_t step() noexcept { return fm::detail::step<T>::bytes; }

    template <class U>
    static fm_off_t convert_from(const fm_ptr<U> &o) noexcept
    {
        if (fm::detail::same_address<U, T>::value || !o)
            return o.offset();
        return fm::detail::offset_in(fmalloc_target(), static_cast<T *>(o.get()));
    }

    fm_off_t off_; /* offset from the start of the file; 0 is null */
} __attribute__((packed));

/* Between fm_ptrs (also of different cv-qualification or void): by offset. */
#define FM_PTR_CMP_(op)                                                                      \
    template <class T, class U>                                                              \
    inline bool operator op(const fm_ptr<T> &a, const fm_ptr<U> &b) noexcept                 \
    {                                                                                        \
        return a.offset() op b.offset();                                                     \
    }
FM_PTR_CMP_(==)
FM_PTR_CMP_(!=)
FM_PTR_CMP_(<)
FM_PTR_CMP_(<=)
FM_PTR_CMP_(>)
FM_PTR_CMP_(>=)
#undef FM_PTR_CMP_

static_assert(sizeof(fm_ptr<int>) == sizeof(fm_off_t), "fm_ptr is one offset");
static_assert(alignof(fm_ptr<int>) == 1, "fm_ptr is packed, as the original fmalloc's");
static_assert(std::is_standard_layout<fm_ptr<int> >::value, "fm_ptr is standard-layout");
static_assert(std::is_trivially_copyable<fm_ptr<int> >::value, "fm_ptr is trivially copyable");

/*
 * fm::allocator<T> -- allocates from the calling thread's current target
 * arena, with fm_ptr<T> as its pointer type, so a container's own links
 * (vector's buffer, a tree's child pointers, a hash table's buckets) are
 * offsets and the container reads back at whatever address the arena is
 * mapped next time.
 *
 * Stateless: it holds nothing, all instances compare equal, and it follows
 * fmalloc_target() as fm_ptr does.  A stateful allocator would have to store
 * its arena inside every container in the file, and a process address
 * (fm_info *) means nothing in the next run.  So: set the target
 * (fmalloc_init / fmalloc_set_target) before touching a container, in
 * every thread that does, and keep the container itself in the arena (a
 * container on the stack works, and its links into itself, such as a
 * tree's header node or a string's short buffer, work in this process
 * but must not be stored in the arena).
 *
 * Memory comes from fm_malloc (thread caches first), or fm_memalign for
 * types aligned beyond 16 bytes; a failure throws std::bad_alloc.
 */
namespace fm {

template <class T>
class allocator {
public:
    typedef T value_type;
    typedef fm_ptr<T> pointer;
    typedef fm_ptr<const T> const_pointer;
    typedef fm_ptr<void> void_pointer;
    typedef fm_ptr<const void> const_void_pointer;
    typedef typename std::add_lvalue_reference<T>::type reference;
    typedef typename std::add_lvalue_reference<const T>::type const_reference;
    typedef std::size_t size_type;
    typedef std::ptrdiff_t difference_type;
    typedef std::true_type is_always_equal;
    typedef std::true_type propagate_on_container_move_assignment;
    typedef std::true_type propagate_on_container_copy_assignment;
    typedef std::true_type propagate_on_container_swap;
    template <class U>
    struct rebind {
        typedef allocator<U> other;
    };

    allocator() noexcept {}
    template <class U>
    allocator(const allocator<U> &) noexcept
    {
    }

    pointer allocate(size_type n, const_void_pointer = const_void_pointer())
    {
        if (n > max_size())
            throw std::bad_alloc();
        struct fm_info *fi = fmalloc_target();
        void *p = alignof(T) > 16 ? fm_memalign(fi, alignof(T), n * sizeof(T))
                                  : fm_malloc(fi, n * sizeof(T));
        if (!p)
            throw std::bad_alloc();
        return pointer::from_offset(fm_offset(fi, p));
    }
    void deallocate(pointer p, size_type) noexcept
    {
        if (p)
            fm_free(fmalloc_target(), static_cast<void *>(p.get()));
    }
    size_type max_size() const noexcept
    {
        return std::numeric_limits<size_type>::max() / (sizeof(T) ? sizeof(T) : 1);
    }
    allocator select_on_container_copy_construction() const noexcept { return *this; }

    friend bool operator==(const allocator &, const allocator &) noexcept { return true; }
    friend bool operator!=(const allocator &, const allocator &) noexcept { return false; }
};

template <class T, class U>
inline bool operator==(const allocator<T> &, const allocator<U> &) noexcept
{
    return true;
}
template <class T, class U>
inline bool operator!=(const allocator<T> &, const allocator<U> &) noexcept
{
    return false;
}

} // namespace fm

/*
 * Named objects in the current target arena (the C directory, fm_name_*):
 *
 *     auto *m = fm::find_or_construct<pmap>("counts");   // first run: constructs
 *     auto *n = fm::find<pmap>("counts");                // nullptr if unbound
 *     fm::destroy<pmap>("counts");                       // unbinds, destroys, frees
 *
 * Names are untyped: find<T> trusts that the name was made for a T (it only
 * checks that the block is big enough).  find_or_construct constructs the
 * object first and binds its name after, so a crash in between leaks the
 * object (and whatever its constructor allocated) but never leaves a name
 * bound to a half-made object; destroy unbinds first for the same reason.
 * Errors other than "not bound" throw fm::error (a bad name or no target:
 * EINVAL; a read-only arena: EROFS; a damaged directory: FM_ECORRUPT); no
 * memory throws std::bad_alloc.
 */
namespace fm {

/** An fmalloc error code (FM_E* or errno) as an exception. */
class error : public std::runtime_error {
public:
    explicit error(int code) : std::runtime_error(fm_strerror(code)), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

namespace detail {
inline void *bound(struct fm_info *fi, const char *name, std::size_t size)
{
    fm_off_t off = 0;
    int err = fm_name_lookup(fi, name, &off);
    if (err == ENOENT)
        return nullptr;
    if (err)
        throw fm::error(err);
    void *p = fm_pointer(fi, off);
    std::size_t usable = fm_usable_size(fi, p);
    if (usable && usable < size)
        throw fm::error(EINVAL); /* named for something smaller than this type */
    return p;
}
} // namespace detail

/** The object bound to `name` in the current target, or nullptr. */
template <class T>
T *find(const char *name)
{
    return static_cast<T *>(detail::bound(fmalloc_target(), name, sizeof(T)));
}

/** find<T>(name), else a new T(args...) in the arena, bound to `name`. */
template <class T, class... Args>
T *find_or_construct(const char *name, Args &&...args)
{
    struct fm_info *fi = fmalloc_target();
    if (T *found = static_cast<T *>(detail::bound(fi, name, sizeof(T))))
        return found;
    void *p = alignof(T) > 16 ? fm_memalign(fi, alignof(T), sizeof(T)) : fm_malloc(fi, sizeof(T));
    if (!p && fm_last_error() != ENOMEM)
        throw fm::error(fm_last_error()); /* EROFS, no target (EINVAL) */
    if (!p)
        throw std::bad_alloc();
    T *obj;
    try {
        obj = new (p) T(std::forward<Args>(args)...);
    } catch (...) {
        fm_free(fi, p);
        throw;
    }
    int err = fm_name_bind(fi, name, fm_offset(fi, p));
    if (err) {
        obj->~T();
        fm_free(fi, p);
        if (err != EEXIST)
            throw fm::error(err);
        return find<T>(name); /* another thread bound it first */
    }
    return obj;
}

/** Unbind `name`, destroy its T and free it; false if it was not bound. */
template <class T>
bool destroy(const char *name)
{
    struct fm_info *fi = fmalloc_target();
    T *obj = static_cast<T *>(detail::bound(fi, name, sizeof(T)));
    if (!obj)
        return false;
    int err = fm_name_unbind(fi, name);
    if (err == ENOENT)
        return false; /* another thread was first */
    if (err)
        throw fm::error(err);
    obj->~T();
    fm_free(fi, obj);
    return true;
}

} // namespace fm

#endif /* FMALLOC_HPP */
