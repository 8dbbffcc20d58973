/* fuzz_config.c - libFuzzer target: the input as a configuration file through
 * config_load_string (libyaml, then every key's checks), and a configuration that loads
 * asked for the zone of a few hosts. Either it loads or it is refused with a message that
 * names a position; nothing leaks either way. The value parsers the file uses (durations,
 * sizes, addresses) also get the raw input.
 *
 * Input: the YAML text; after a NUL byte, if any, the contents of "page.html", an error
 * page the text may name. The file's directory also holds "token" (a valid admin token)
 * and "short-token" (one that is too short). */
#include "edge/zone.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64], name[96], page[96];

static void
write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static void
remove_files(void)
{
    static const char *const files[] = {"token", "short-token", "page.html"};
    char path[128];
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[128];
    snprintf(dir, sizeof(dir), "/tmp/verge-fuzz-config-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    atexit(remove_files);
    snprintf(name, sizeof(name), "%s/verge.yaml", dir);
    snprintf(page, sizeof(page), "%s/page.html", dir);
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, "0123456789abcdef0123456789abcdef\n", 33);
    snprintf(path, sizeof(path), "%s/short-token", dir);
    write_file(path, "abc\n", 4);
    return 0;
}

static void
use_config(const struct config *cfg)
{
    static const char *const hosts[] = {"a.test", "www.example.com", "x.example.com:8080", "[::1]",
                                        "127.0.0.1"};
    if (cfg->nzones == 0)
        abort(); /* config_check refuses a file without zones */
    for (size_t i = 0; i < ARRAY_SIZE(hosts); i++)
        (void)zone_find(cfg, hosts[i], strlen(hosts[i]));
}

static void
value_parsers(const char *text)
{
    uint64_t v;
    struct config_addr a;
    (void)config_duration_parse(text, &v);
    (void)config_size_parse(text, &v);
    if (config_addr_parse(text, 80, &a) == 0 && a.text[0] == '\0')
        abort(); /* a parsed address always has its text form */
}

/* "NAME:LINE:COLUMN: ..." */
static bool
has_position(const char *err)
{
    size_t n = strlen(name);
    unsigned line, column;
    char colon;
    return strncmp(err, name, n) == 0 && sscanf(err + n, ":%u:%u%c", &line, &column, &colon) == 3 &&
           colon == ':' && line > 0 && column > 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *yaml = xstrndup((const char *)data, len); /* config_load_string reads to the NUL */
    size_t ylen = strlen(yaml);
    if (ylen < len)
        write_file(page, data + ylen + 1, len - ylen - 1);
    else
        unlink(page);
    char err[512] = "";
    struct config *cfg = NULL;
    if (config_load_string(name, yaml, &cfg, err, sizeof(err)) == 0) {
        use_config(cfg);
        config_release(&cfg);
    } else if (!has_position(err)) {
        fprintf(stderr, "refusal without a position: %s\n", err);
        abort();
    }
    if (ylen < 256)
        value_parsers(yaml);
    free(yaml);
    return 0;
}
