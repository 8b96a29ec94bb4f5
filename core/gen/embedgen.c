/* embedgen: turns the files under lua/ into a C include that the core's
 * module searcher reads (core/embed.c). Usage: embedgen lua/a/b.lua ... > x.inc
 * Module name: the path less "lua/" and ".lua", "/" -> "." ("x/init" -> "x"). */
#include <stdio.h>
#include <string.h>

static void modname(const char *path, char *out, size_t n)
{
    const char *p = strncmp(path, "lua/", 4) == 0 ? path + 4 : path;
    snprintf(out, n, "%s", p);
    size_t len = strlen(out);
    if (len > 4 && strcmp(out + len - 4, ".lua") == 0) out[len -= 4] = '\0';
    if (len > 5 && strcmp(out + len - 5, "/init") == 0) out[len -= 5] = '\0';
    for (char *c = out; *c; c++) if (*c == '/') *c = '.';
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) { perror(argv[i]); return 1; }
        printf("static const char lua_src_%d[] = {", i);
        int c, col = 0;
        while ((c = fgetc(f)) != EOF) {
            printf("%s%d,", col++ % 24 == 0 ? "\n" : "", c);
        }
        printf("0};\n");
        fclose(f);
    }
    printf("static const struct embedded_lua embedded_lua[] = {\n");
    for (int i = 1; i < argc; i++) {
        char name[512];
        modname(argv[i], name, sizeof name);
        printf("  {\"%s\", \"@%s\", lua_src_%d, sizeof lua_src_%d - 1},\n", name, argv[i], i, i);
    }
    printf("  {NULL, NULL, NULL, 0}\n};\n");
    return 0;
}
