/* fuzz_config.c - libFuzzer target: the input as a configuration file through
 * config_load_string (libyaml, then every key's checks), and a configuration that loads
 * asked for the zone of a few hosts. Either it loads or it is refused with a message that
 * names a position; nothing leaks either way. The value parsers the file uses (durations,
 * sizes, addresses) also get the raw input. */
#include "edge/zone.h"

#include <stdint.h>

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

/* "fuzz/verge.yaml:LINE:COLUMN: ..." */
static bool
has_position(const char *err)
{
    unsigned line, column;
    char colon;
    return sscanf(err, "fuzz/verge.yaml:%u:%u%c", &line, &column, &colon) == 3 && colon == ':' &&
           line > 0 && column > 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *yaml = xstrndup((const char *)data, len); /* config_load_string reads to the NUL */
    char err[512] = "";
    struct config *cfg = NULL;
    if (config_load_string("fuzz/verge.yaml", yaml, &cfg, err, sizeof(err)) == 0) {
        use_config(cfg);
        config_release(&cfg);
    } else if (!has_position(err)) {
        fprintf(stderr, "refusal without a position: %s\n", err);
        abort();
    }
    if (len < 256)
        value_parsers(yaml);
    free(yaml);
    return 0;
}
