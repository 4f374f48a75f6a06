/* Runs a libFuzzer target over files and directories without libFuzzer, so every corpus
 * and regression input is replayed by the normal test suite (under ASan in CI).
 * Usage: replay-TARGET PATH... (directories are read one level deep). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (8u << 20)

static int run_file(const char *path, unsigned *count)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        size_t n;

        if (f == NULL) {
                fprintf(stderr, "replay: cannot open %s\n", path);
                return 1;
        }
        buf = malloc(REPLAY_MAX_INPUT);
        if (buf == NULL) {
                fclose(f);
                return 1;
        }
        n = fread(buf, 1, REPLAY_MAX_INPUT, f);
        fclose(f);
        /* Copy to an exact-size block so ASan sees reads past the end. */
        uint8_t *exact = malloc(n ? n : 1);
        if (exact == NULL) {
                free(buf);
                return 1;
        }
        memcpy(exact, buf, n);
        free(buf);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        (*count)++;
        return 0;
}

int main(int argc, char **argv)
{
        unsigned count = 0;
        int failed = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) != 0) {
                        continue; /* an absent corpus folder is not an error */
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed |= run_file(argv[i], &count);
                        continue;
                }
                DIR *d = opendir(argv[i]);
                struct dirent *e;
                while (d != NULL && (e = readdir(d)) != NULL) {
                        char path[4096];
                        if (e->d_name[0] == '.') {
                                continue;
                        }
                        snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                        failed |= run_file(path, &count);
                }
                if (d != NULL) {
                        closedir(d);
                }
        }
        printf("replayed %u inputs\n", count);
        return failed;
}
