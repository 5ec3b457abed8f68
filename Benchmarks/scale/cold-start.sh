#!/usr/bin/env bash
# One cold start: Benchmarks/scale/cold-start.sh TALLY_SERVER DATA_DIR PORT
#
# Starts the server on DATA_DIR (a copy of a log with its snapshots: the server writes to it),
# polls `/api/health` and `/metrics` every 20 ms, and prints "listen_ms live_ms vmhwm_mib":
# milliseconds from the start until it answers, until all three views are live
# (`tally_projection_state{state="live"}` 1, no lag), and its peak RSS. Then stops it with
# SIGTERM. Alternate two builds' runs to compare them (BENCHMARKS.md).
set -euo pipefail
server=${1:?usage: cold-start.sh TALLY_SERVER DATA_DIR PORT}
dir=${2:?usage: cold-start.sh TALLY_SERVER DATA_DIR PORT}
port=${3:?usage: cold-start.sh TALLY_SERVER DATA_DIR PORT}
now_ms() { date +%s%3N; }
log=$(mktemp)
t0=$(now_ms)
TALLY_JWT_SECRET=cold-start-benchmark-secret-0123456789 "$server" serve --data-dir "$dir" \
    --host 127.0.0.1 --port "$port" > "$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; rm -f "$log"' EXIT
listen="" live=""
while kill -0 "$pid" 2>/dev/null; do
    if [ -z "$listen" ] && curl -fs "http://127.0.0.1:$port/api/health" > /dev/null 2>&1; then
        listen=$(( $(now_ms) - t0 ))
    fi
    if [ -n "$listen" ]; then
        metrics=$(curl -fs "http://127.0.0.1:$port/metrics" || true)
        if [ "$(grep -c 'tally_projection_state{.*state="live".*} 1' <<< "$metrics")" = 3 ] \
            && ! grep -Eq '^tally_projection_lag_events\{.*\} [1-9]' <<< "$metrics"; then
            live=$(( $(now_ms) - t0 )); break
        fi
    fi
    sleep 0.02
done
[ -n "$live" ] || { echo "tally-server stopped before its views were live: $(tail -3 "$log")" >&2; exit 1; }
rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
echo "$listen $live $rss"
