#!/usr/bin/env bash
# Benchmark (not a test): how fast Verge answers when every origin is marked down,
# against its normal proxied path measured in the same run. Prints medians and rates
# from wrk. Usage: bench/error_path.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CONNS=${2:-50}
command -v wrk >/dev/null || { echo "error_path: needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x build/verge ] || make -s build/verge

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d)
ORIGIN=$(free_port); EDGE=$(free_port); DEAD=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

mkdir -p "$DIR/www" && head -c 4096 /dev/urandom > "$DIR/www/4k.bin"
cat > "$DIR/nginx.conf" <<NGINX
daemon off; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
       server { listen 127.0.0.1:$ORIGIN; root $DIR/www; } }
NGINX
cat > "$DIR/verge.yaml" <<YAML
listen: [ "127.0.0.1:$EDGE" ]
workers: 1
admin: off
logs: { access: off, error: $DIR/verge.err }
zones:
  - name: up
    hosts: [ up.test ]
    origins: [ "http://127.0.0.1:$ORIGIN" ]
  - name: down
    hosts: [ down.test ]
    origins: [ "http://127.0.0.1:$DEAD" ]
    health: { failures: 1, hold: 1h }
YAML
/usr/sbin/nginx -p "$DIR" -c "$DIR/nginx.conf" & pids+=($!)
build/verge serve -c "$DIR/verge.yaml" & pids+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$EDGE") 2>/dev/null && break; sleep 0.1; done
curl -s -o /dev/null -H "Host: down.test" "http://127.0.0.1:$EDGE/"   # marks it down

run() { # host -> "rate median"
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "Host: $1" "http://127.0.0.1:$EDGE/4k.bin" \
        | awk '/Requests\/sec/ {rate=$2} /^ +50%/ {med=$2} END {print rate, med}'
}
echo "error_path: ${SECS}s per run, $CONNS connections, 1 worker" >&2
read -r up_rate up_med < <(run up.test)
read -r down_rate down_med < <(run down.test)
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: down.test" "http://127.0.0.1:$EDGE/")
printf '%-34s %12s %10s\n' "path" "requests/s" "median"
printf '%-34s %12s %10s\n' "proxied (origin up, 4 KiB)" "$up_rate" "$up_med"
printf '%-34s %12s %10s\n' "error (all origins down, $status)" "$down_rate" "$down_med"
/usr/bin/python3 - "$up_rate" "$down_rate" "$down_med" <<'PY'
import re, sys
up, down, med = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
value, unit = re.match(r"([\d.]+)(\w+)", med).groups()
ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
print(f"error path / proxied path rate: {down / up:.2f}x (target >= 1.00)")
print(f"error path median: {ms:.3f} ms (target < 1 ms)")
PY
