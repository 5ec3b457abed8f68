#!/usr/bin/env bash
# The dashboard's figures (issue 14) on a generated log: a release tally-server on DATA (a
# writable copy of a `replay generate` log; it writes snapshots there), its own health
# samples off (--health-interval-s 86400) so the metrics view's newest event stays the log's.
#
#   Benchmarks/dashboard/run.sh TALLY_SERVER DATA
#
# 1. first meaningful paint: headless Chromium (scripts/dashboard-browser.py --phase paint),
#    the admin signed in, PAINT_RUNS loads; `tally:first-load` is the page's mark once its
#    first figures and charts are drawn, measured from the navigation's start;
# 2. GET /api/v1/system/metrics/series, hourly, the 30 days back from the newest event, wrk
#    with SERIES_CONNECTIONS (default "1 16") connections;
# 3. GET /api/v1/system/stats/series?every=1h over the same 30 days, STATS_RUNS requests by curl
#    (each folds the log from its nearest checkpoint, seconds each: too few for wrk).
set -euo pipefail
bin="$1"; data="$2"; port="${PORT:-18090}"; runs="${PAINT_RUNS:-10}"; stats_runs="${STATS_RUNS:-3}"
root=$(cd "$(dirname "$0")/../.." && pwd)
python="${PYTHON:-$root/.build/venv/bin/python}"; chromium="${CHROMIUM:-/usr/bin/chromium}"
dir=$(mktemp -d)
export TALLY_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
t0=$(date +%s%3N)
"$bin" serve --data-dir "$data" --port "$port" --health-interval-s 86400 2> "$dir/server.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 3000); do curl -fs "$url/api/health" > /dev/null 2>&1 && break; sleep 0.1; done
kill -0 $pid 2>/dev/null || { echo "tally-server did not start: $(tail -3 "$dir/server.log")" >&2; exit 1; }
for _ in $(seq 12000); do
  [ "$(curl -fs "$url/metrics" | grep -c 'tally_projection_state{.*state="live".*} 1' || true)" = 3 ] && break
  sleep 0.1
done
echo "== all views live after $(( $(date +%s%3N) - t0 )) ms; $(curl -fs "$url/metrics" | grep '^tally_log_head_position' || true)"
admin=$("$bin" token --role admin --subject bench)
printf '{"admin": "%s"}\n' "$admin" > "$dir/tokens.json"

echo "== first meaningful paint: $runs loads of / signed in as admin (ms from navigation start)"
"$python" "$root/scripts/dashboard-browser.py" --chromium "$chromium" --base "$url" --tokens "$dir/tokens.json" \
  --out "$dir/shots" --phase paint --runs "$runs" > "$dir/paint.json"
"$python" - "$dir/paint.json" <<'EOF'
import json, statistics, sys
report = json.load(open(sys.argv[1]))
if report.get("console_errors"):
    sys.exit("console errors: %s" % report["console_errors"])
for key in ("response_end_ms", "first_contentful_paint_ms", "first_load_ms"):
    values = sorted(r[key] for r in report["runs"])
    print(f"   {key}: min {values[0]:.0f}, median {statistics.median(values):.0f}, max {values[-1]:.0f}  ({len(values)} loads)")
EOF

until=$(curl -fs -H "Authorization: Bearer $admin" "$url/api/v1/system/metrics/series?resolution=hour" | jq -r .until)
from=$(python3 -c 'import sys, datetime as d; t = d.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00")); print((t - d.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$until")
series="$url/api/v1/system/metrics/series?resolution=hour&from=$from&until=$until"
curl -fs -H "Authorization: Bearer $admin" "$series" > "$dir/series.json"
echo "== GET metrics series, hourly, $from .. $until: $(jq '.buckets | length' "$dir/series.json") buckets, $(jq '[.buckets[] | select(.searches > 0)] | length' "$dir/series.json") with searches, $(wc -c < "$dir/series.json") bytes"
for c in ${SERIES_CONNECTIONS:-1 16}; do
  echo "   wrk, $c connection(s):"
  TOKEN="$admin" wrk -t1 -c"$c" -d"${BENCH_SECONDS:-10}s" --latency -s "$root/Benchmarks/api/get.lua" "$series"
done

stats="$url/api/v1/system/stats/series?every=1h&from=$from&until=$until"
echo "== GET stats series, every=1h, same 30 days: $stats_runs requests one after another (seconds each)"
for _ in $(seq "$stats_runs"); do
  curl -fs -o "$dir/stats.json" -w "   %{http_code} in %{time_total} s, %{size_download} bytes" -H "Authorization: Bearer $admin" "$stats"
  echo ", $(jq '.rows | length' "$dir/stats.json") rows"
done
echo "== server memory (VmHWM, VmRSS)"
grep -E "VmHWM|VmRSS" /proc/$pid/status
