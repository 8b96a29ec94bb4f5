/* bench/pagefault.c: what a first touch of anonymous memory costs on this
 * machine, a 4 KiB page at a time and within 2 MiB (transparent huge)
 * pages: the kernel's side of every heap a run grows (issue 19: on the
 * project's VM a 4 KiB fault costs ~10 us, which is why core/alloc.c keeps
 * Lua's blocks in one MADV_HUGEPAGE region).
 *
 *   cc -O2 -o /tmp/pagefault bench/pagefault.c && /tmp/pagefault 1024
 *
 * (A huge page the kernel cannot find at once falls back to 4 KiB ones,
 * and the second figure nears the first: the count of those is shown.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include <string.h>

/* /proc/vmstat's thp_fault_fallback: huge pages asked for and not given */
static long thp_fallbacks(void)
{
    FILE *f = fopen("/proc/vmstat", "r");
    char line[128];
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "thp_fault_fallback ", 19) == 0) n = atol(line + 19);
    if (f) fclose(f);
    return n;
}

static double touch_us(size_t pages, int huge)
{
    size_t size = pages * 4096, span = size + ((size_t)2 << 20);
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    if (huge) {   /* from the first 2 MiB boundary, so every page is in a huge one */
        madvise(p, span, MADV_HUGEPAGE);
        p = (char *)(((unsigned long)p + ((2UL << 20) - 1)) & ~((2UL << 20) - 1));
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3;
}

int main(int argc, char **argv)
{
    size_t pages = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
    if (pages == 0 || pages % 512) { fputs("usage: pagefault PAGES (of 4 KiB, a multiple of 512: whole 2 MiB pages)\n", stderr); return 2; }
    for (int round = 0; round < 3; round++) {
        double small = touch_us(pages, 0);
        long before = thp_fallbacks();
        double huge = touch_us(pages, 1);
        printf("%zu pages of 4 KiB: %.2f us a page; in 2 MiB pages: %.2f us a 4 KiB page (%ld of %zu huge pages fell back to small ones)\n",
               pages, small / (double)pages, huge / (double)pages, thp_fallbacks() - before, pages / 512);
    }
    return 0;
}
