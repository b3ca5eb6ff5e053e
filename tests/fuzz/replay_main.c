/* replay_main.c — the main() of every fuzz harness's replay program.
 *
 * Runs each file of the corpus directories given as arguments through the
 * harness's LLVMFuzzerTestOneInput, as libFuzzer would, so that ctest checks
 * the seeds and the minimised corpus on every build without clang. Each
 * input is handed over in a heap copy of exactly its size, so that a read
 * past its end shows under AddressSanitizer. With JX_REPLAY_PREFIXES (the
 * journal harness) every prefix of each file is run too: truncation is the
 * commonest damage to a file.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The largest corpus file read (8 MiB: a submission of the largest envelope
 * and then some); anything beyond is cut off. */
static uint8_t data[8 << 20];

static void run_one(size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    int files = 0;
    for (int a = 1; a < argc; a++) {
        DIR *dir = opendir(argv[a]);
        if (dir == NULL) {
            perror(argv[a]);
            return 1;
        }
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], entry->d_name);
            FILE *file = fopen(path, "rb");
            if (file == NULL) {
                perror(path);
                closedir(dir);
                return 1;
            }
            size_t size = fread(data, 1, sizeof data, file);
            fclose(file);
            run_one(size);
#ifdef JX_REPLAY_PREFIXES
            for (size_t cut = 0; cut < size; cut += 1 + size / 64)
                run_one(cut);
#endif
            files++;
        }
        closedir(dir);
    }
    printf("replayed %d corpus files\n", files);
    return files > 0 ? 0 : 1;
}
