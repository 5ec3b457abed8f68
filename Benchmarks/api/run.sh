#!/usr/bin/env bash
# make bench-api: a release tally-server on loopback with fsync always, driven by wrk.
#
# BENCH_DATA_DIR=DIR runs the server on DIR (a copy of a large log: it is written to) instead
# of a fresh directory, and waits until every view is live before measuring.
# BENCH_SNAPSHOT_SECONDS=S (> snapshotEverySeconds, 60) adds a stats run of S seconds while
# a trickle of searches keeps the views moving, so their timed snapshots are written during
# it; the server's "wrote snapshot" lines are printed after it, to show when they were.
# BENCH_SSE_CLIENTS=N holds N live dashboards (GET /api/v1/live, Benchmarks/dashboard/
# sse-clients.py) connected through every wrk run; their frame count is printed at the end.
set -euo pipefail
for tool in wrk curl; do
  command -v "$tool" > /dev/null || { echo "run.sh needs $tool (make bench-api installs it)" >&2; exit 1; }
done
bin="$1"; secs="${BENCH_SECONDS:-10}"; users="${BENCH_USERS:-200}"
snapshot_secs="${BENCH_SNAPSHOT_SECONDS:-0}"
dir=$(mktemp -d); port=18080
data="${BENCH_DATA_DIR:-$dir/data}"
export TALLY_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --data-dir "$data" --port $port --fsync always 2> "$dir/server.log" &
pid=$!
sse=""
trap '{ [ -z "$sse" ] || kill -TERM $sse 2>/dev/null || true; }; kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 3000); do curl -fs "$url/api/health" > /dev/null 2>&1 && break; sleep 0.1; done
# Another server on the port (say, another clone's benchmark) answers the health check too.
kill -0 $pid 2>/dev/null || { echo "tally-server did not start: $(tail -3 "$dir/server.log")" >&2; exit 1; }
# All three views live (a large log catches up or loads snapshots first).
for _ in $(seq 6000); do
  m=$(curl -fs "$url/metrics" || true)
  [ "$(grep -c 'tally_projection_state{.*state="live".*} 1' <<< "$m")" = 3 ] && break
  sleep 0.1
done
admin=$("$bin" token --role admin --subject bench)
"$bin" token --role user --subject user --count "$users" > "$dir/tokens"
for i in $(seq 0 $((users - 1))); do
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $admin" -H "Content-Type: application/json" -d "{\"user\":\"user-$i\",\"amount\":1000000000,\"reason\":\"bench\"}" "$url/api/v1/credits/grant"
done
export TOKEN=$(head -1 "$dir/tokens") TOKENS_FILE="$dir/tokens"
sse_clients="${BENCH_SSE_CLIENTS:-0}"
if [ "$sse_clients" -gt 0 ]; then
  python3 Benchmarks/dashboard/sse-clients.py --url "$url" --token "$admin" --clients "$sse_clients" --ready "$dir/sse-ready" > "$dir/sse.out" &
  sse=$!
  for _ in $(seq 600); do [ -e "$dir/sse-ready" ] && break; kill -0 $sse 2>/dev/null || break; sleep 0.1; done
  [ -e "$dir/sse-ready" ] || { echo "the SSE clients did not connect: $(cat "$dir/sse.out")" >&2; exit 1; }
  echo "== SSE: $(cat "$dir/sse-ready")"
fi
echo "== log head: $(curl -fs "$url/metrics" | grep '^tally_log_head_position' || true)"
echo "== POST unlock, durable (fsync always), $users users, a new profile per request"
wrk -t2 -c64 -d"${secs}s" --latency -s Benchmarks/api/unlock.lua "$url"
echo "== GET /api/v1/creator/unlocked"
wrk -t2 -c64 -d"${secs}s" --latency -s Benchmarks/api/get.lua "$url/api/v1/creator/unlocked"
echo "== GET /api/v1/system/stats"
wrk -t2 -c64 -d"${secs}s" --latency -s Benchmarks/api/get.lua "$url/api/v1/system/stats"
if [ "$snapshot_secs" -gt 0 ]; then
  echo "== GET /api/v1/system/stats for ${snapshot_secs}s while the views write their timed snapshots"
  ( n=0; while kill -0 $pid 2>/dev/null; do
      n=$((n + 1)); curl -s -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" "$url/api/v1/creator/search/trickle$n"
      sleep 0.2
    done ) &
  trickle=$!
  date -u +"   started %H:%M:%S"
  wrk -t2 -c64 -d"${snapshot_secs}s" --latency -s Benchmarks/api/get.lua "$url/api/v1/system/stats"
  date -u +"   ended %H:%M:%S"
  kill $trickle 2>/dev/null || true
  grep "wrote snapshot" "$dir/server.log" | tail -6 || echo "   (no snapshot was written during the run)"
fi
if [ "$sse_clients" -gt 0 ]; then
  kill -TERM $sse; wait $sse || true
  echo "== SSE clients held through the runs: $(cat "$dir/sse.out")"
fi
echo "== server memory (VmHWM, VmRSS)"
grep -E "VmHWM|VmRSS" /proc/$pid/status
