/* alloc.c: the Lua state's allocator. A recipe's run makes and drops
 * hundreds of thousands of small objects (a 10,000-step no-op: some 40 a
 * step, tables, strings, closures of 16 to 256 bytes), and Lua tells the
 * allocator each block's size when it frees it: so blocks of up to 256
 * bytes come from one region of address space, by size class (16 bytes
 * apart), each class with a list of the blocks freed, no header and no
 * search. Bigger blocks, and every block once the region is used up, are
 * malloc's. The region is reserved once (MAP_NORESERVE: pages are the
 * kernel's until touched; not under strict overcommit, which would count
 * it whole, and again in each fork) and never given back before exit.
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
#define CLASSES (SMALL_MAX / 16)
#define REGION ((size_t)1 << 30)   /* 1 GiB of address space, a 142,000-step recipe uses ~0.3 */

static char *base, *next, *end;
static void *freed[CLASSES + 1];   /* by class: (size + 15) / 16 */
static int keep_all;               /* at exit: frees do nothing */

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

static inline int ours(const void *p) { return (const char *)p >= base && (const char *)p < end; }

static void *small_get(size_t n)
{
    size_t c = (n + 15) >> 4;
    void *p = freed[c];
    if (p) {
        freed[c] = *(void **)p;
        return p;
    }
    size_t sz = c << 4;
    if ((size_t)(end - next) < sz) return malloc(n);   /* the region used up */
    p = next;
    next += sz;
    return p;
}

static void release(void *p, size_t n)
{
    if (keep_all) return;
    if (!ours(p)) { free(p); return; }
    size_t c = (n + 15) >> 4;
    *(void **)p = freed[c];
    freed[c] = p;
}

void *provision_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        if (ptr) release(ptr, osize);
        return NULL;
    }
    if (!ptr) return nsize <= SMALL_MAX ? small_get(nsize) : malloc(nsize);   /* (osize: the type) */
    if (!ours(ptr) && nsize > SMALL_MAX) return realloc(ptr, nsize);
    if (ours(ptr) && nsize <= SMALL_MAX && (nsize + 15) >> 4 == (osize + 15) >> 4) return ptr;
    void *np = nsize <= SMALL_MAX ? small_get(nsize) : malloc(nsize);
    if (!np) return NULL;   /* Lua keeps ptr as it was */
    memcpy(np, ptr, osize < nsize ? osize : nsize);
    release(ptr, osize);
    return np;
}
