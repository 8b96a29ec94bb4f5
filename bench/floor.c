/* bench/floor.c: the floor for a no-op of N fs.file steps -- what any tool
 * must do to know that each file d/1 .. d/N holds "x" and is a regular file
 * of the right mode: lstat, open, read, compare, close. No state, no
 * recipe, no report: the syscalls alone, process start included.
 *   cc -O2 -o floor bench/floor.c && ./floor DIR N      (exit 0: all in place) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: floor DIR N\n"); return 2; }
    long n = strtol(argv[2], NULL, 10), bad = 0;
    char path[4096], buf[64];
    for (long i = 1; i <= n; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%ld", argv[1], i);
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0644) { bad++; continue; }
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) { bad++; continue; }
        ssize_t got = read(fd, buf, sizeof buf);
        if (got != 1 || buf[0] != 'x') bad++;
        close(fd);
    }
    printf("%ld of %ld in place\n", n - bad, n);
    return bad ? 1 : 0;
}
