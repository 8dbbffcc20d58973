# Varnish as a caching edge: malloc storage (set on varnishd's command line), the builtin
# VCL for what to cache (it honours max-age and passes no-store), a probe on the dead
# origin so it answers 503 at once.
vcl 4.1;

backend origin { .host = "127.0.0.1"; .port = "@ORIGIN_PORT@"; }

backend dead {
    .host = "127.0.0.1"; .port = "@DEAD_PORT@";
    .probe = { .url = "/"; .interval = 1s; .window = 1; .threshold = 1; .initial = 0; }
}

sub vcl_recv {
    if (req.http.host == "dead.test") { set req.backend_hint = dead; } else { set req.backend_hint = origin; }
}

sub vcl_deliver {
    if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
