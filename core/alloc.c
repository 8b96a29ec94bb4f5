/* alloc.c: the Lua state's allocator. A recipe's run makes and drops
 * hundreds of thousands of small objects (a 10,000-step no-op: some 40 a
 * step, tables, strings, closures of 16 to 256 bytes), and Lua tells the
 * allocator each block's size when it frees it: so blocks of up to 32 KiB
 * come from one region of address space, by size class, each class with a
 * list of the blocks freed, no header and no search. Classes are 16 bytes
 * apart up to 256, then 4 to each doubling (320, 384, 448, 512, 640, ...):
 * a table's parts (16 or 24 bytes an entry, by powers of two) fit one
 * exactly or nearly. Bigger blocks up to 2 MiB, and every small block once
 * the region is used up, are malloc's (from 2 MiB: below). The region is
 * reserved once (MAP_NORESERVE: pages are the kernel's until touched; not
 * under strict overcommit, which would count it whole, and again in each
 * fork) and never given back before exit.
 *
 * Long strings below 2 MiB stay malloc's (provision_alloc says why). The
 * blocks of 257 bytes to 32 KiB (the bytecode's arrays as provision's
 * modules load, the tables' parts) were malloc's until issue 19: on this
 * project's VM a page fault costs some 10 us (bench/pagefault.c), and
 * malloc's heap grew by 4 KiB pages, where the region has 2 MiB ones: a
 * 10-step no-op 136 -> 96 faults, 6.30 -> 5.48 ms paired; a plan of 142,000
 * steps unchanged beyond the noise, its peak 129 -> 135 MiB
 * (bench/README.md).
 *
 * Blocks of 2 MiB and more (a big recipe's tables as they grow: its steps,
 * their names, the string table, the parser's constants) are each a
 * mapping of their own in 2 MiB pages (MADV_HUGEPAGE), resized by mremap
 * (in place, or moved by the kernel, never copied) and unmapped when freed
 * (a block is rounded up to 2 MiB: a 2 MiB + 1 string takes 4). malloc
 * mapped them in 4 KiB pages, and touched each page again at every
 * doubling. A plan of 142,000 steps made 23,600 page faults, 61 % of them
 * in luaH_resize (bench/README.md).
 *
 * Not used where leaks are looked for (sanitizer builds, and
 * PROVISION_FREE_AT_EXIT=1: the valgrind tier): core/main.c keeps Lua's
 * own allocator there. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "core.h"

#define SMALL_MAX 256
#define SMALL_CLASSES (SMALL_MAX / 16)
#define BLOCK_MAX 32768                        /* past it, malloc's */
#define CLASSES (SMALL_CLASSES + 1 + 4 * 7)    /* 4 to each doubling from 256 to 32768 */
#define REGION ((size_t)1 << 30)   /* 1 GiB of address space, a 142,000-step recipe uses ~0.3 */

static char *base, *next, *end;
static void *freed[CLASSES];       /* by class */
static int keep_all;               /* at exit: frees do nothing */

/* the class of a block of n bytes (0 < n <= BLOCK_MAX), and its size */
static inline size_t class_of(size_t n, size_t *size)
{
    if (n <= SMALL_MAX) {
        size_t c = (n + 15) >> 4;
        *size = c << 4;
        return c;
    }
    unsigned lg = 63 - (unsigned)__builtin_clzl(n - 1);   /* 8 .. 14: 2^lg < n <= 2^(lg+1) */
    size_t k = (n - 1) >> (lg - 2);                      /* 4 .. 7: the quarter it falls in */
    *size = (k + 1) << (lg - 2);
    return SMALL_CLASSES + 1 + (lg - 8) * 4 + (k - 4);
}

/* strict overcommit (vm.overcommit_memory 2) counts the whole region at
 * once, and again in every fork's child: there, malloc's */
static int strict_overcommit(void)
{
    char c = 0;
    int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 && c == '2';
}

int provision_alloc_init(void)
{
    if (strict_overcommit()) return 0;
    void *p = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0;
    base = next = p;
    madvise(p, REGION, MADV_HUGEPAGE);   /* (2 MiB pages where the kernel has them: a page fault per 2 MiB, not per 4 KiB) */
    end = base + REGION;
    return 1;
}

void provision_alloc_exit(void) { keep_all = 1; }

size_t provision_alloc_used(void) { return (size_t)(next - base); }

static inline int ours(const void *p) { return (const char *)p >= base && (const char *)p < end; }

/* ---- blocks of HUGE bytes and more: a mapping each. A block outside the
 * region is one of these exactly when its size is HUGE or more (Lua gives
 * the size with every free and resize), malloc's otherwise. */
#define HUGE ((size_t)2 << 20)
static inline size_t huge_len(size_t n) { return (n + HUGE - 1) & ~(HUGE - 1); }
static inline int is_huge(const void *p, size_t n) { return n >= HUGE && !ours(p); }

static void *huge_get(size_t n)
{
    size_t len = huge_len(n);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    madvise(p, len, MADV_HUGEPAGE);
    return p;
}

static void huge_release(void *p, size_t n)
{
    if (!keep_all) munmap(p, huge_len(n));
}

static void *get(size_t n)
{
    if (n >= HUGE) return huge_get(n);
    if (n > BLOCK_MAX) return malloc(n);
    size_t size, c = class_of(n, &size);
    void *p = freed[c];
    if (p) {
        freed[c] = *(void **)p;
        return p;
    }
    if ((size_t)(end - next) < size) return malloc(n);   /* the region used up */
    p = next;
    next += size;
    return p;
}

static void release(void *p, size_t n)
{
    if (keep_all) return;
    if (is_huge(p, n)) { huge_release(p, n); return; }
    if (!ours(p)) { free(p); return; }
    size_t size, c = class_of(n, &size);
    *(void **)p = freed[c];
    freed[c] = p;
}

/* one class, so the block already fits */
static int same_class(size_t a, size_t b)
{
    size_t size;
    return class_of(a, &size) == class_of(b, &size);
}

void *provision_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        if (ptr) release(ptr, osize);
        return NULL;
    }
    /* a new block: osize is the type of the object it is for. A long
     * string (a file's content, a body, a command's output) never grows
     * and seldom lives long: malloc's below 2 MiB, whose freed memory
     * serves any size again; a class's free list serves only its class,
     * so a run that made and dropped 16 MiB of strings of each class
     * would keep them all (tests/unit/alloc.c). From 2 MiB, a mapping */
    if (!ptr) return osize == LUA_TSTRING && nsize > SMALL_MAX && nsize < HUGE ? malloc(nsize) : get(nsize);
    if (is_huge(ptr, osize) && nsize >= HUGE) {   /* grown or shrunk in place, or moved by the kernel */
        if (huge_len(osize) == huge_len(nsize)) return ptr;
        void *np = mremap(ptr, huge_len(osize), huge_len(nsize), MREMAP_MAYMOVE);
        return np == MAP_FAILED ? NULL : np;
    }
    if (!ours(ptr) && osize < HUGE && nsize > BLOCK_MAX && nsize < HUGE) return realloc(ptr, nsize);
    if (ours(ptr) && nsize <= BLOCK_MAX && same_class(osize, nsize)) return ptr;
    void *np = get(nsize);
    if (!np) return NULL;   /* Lua keeps ptr as it was */
    memcpy(np, ptr, osize < nsize ? osize : nsize);
    release(ptr, osize);
    return np;
}
