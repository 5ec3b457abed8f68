#!/usr/bin/env bash
# make bench-api: a release tally-server on loopback with fsync always, driven by wrk.
set -euo pipefail
bin="$1"; secs="${BENCH_SECONDS:-10}"; users="${BENCH_USERS:-200}"
dir=$(mktemp -d); port=18080
export TALLY_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --data-dir "$dir/data" --port $port --fsync always 2> "$dir/server.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q "listening" "$dir/server.log" && break; sleep 0.1; done
url="http://127.0.0.1:$port"
admin=$("$bin" token --role admin --subject bench)
"$bin" token --role user --subject user --count "$users" > "$dir/tokens"
for i in $(seq 0 $((users - 1))); do
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $admin" -d "{\"user\":\"user-$i\",\"amount\":1000000000,\"reason\":\"bench\"}" "$url/api/v1/credits/grant"
done
export TOKEN=$(head -1 "$dir/tokens") TOKENS_FILE="$dir/tokens"
echo "== POST unlock, durable (fsync always), $users users, a new profile per request"
wrk -t2 -c64 -d"${secs}s" --latency -s Benchmarks/api/unlock.lua "$url"
echo "== GET /api/v1/creator/unlocked"
wrk -t2 -c64 -d"${secs}s" --latency -s Benchmarks/api/get.lua "$url/api/v1/creator/unlocked"
echo "== GET /api/v1/system/stats"
wrk -t2 -c64 -d"${secs}s" --latency -s Benchmarks/api/get.lua "$url/api/v1/system/stats"
echo "== server memory (VmHWM, VmRSS)"
grep -E "VmHWM|VmRSS" /proc/$pid/status
