#!/usr/bin/env bash
# The scale table of BENCHMARKS.md: the same figures on logs of growing history.
#
#   Benchmarks/scale/run.sh REPLAY TALLY_SERVER WORKDIR [EVENTS ...]     (default 1000000 10000000 100000000)
#
# Each log is `replay generate --events N --seed 1`, built once into WORKDIR/logs/N and kept
# (WORKDIR/logs/N.done marks it complete; the 100 M-event log is about 6 GB and takes many
# minutes to build). The logs are never written to: anything that writes (open for writing,
# appends, the server) works on a copy whose sealed segments are hard links (sealed
# segments are never written again) and whose other files are real copies.
#
# Prints one Markdown table row per figure and appends them, with the raw JSON lines, to
# WORKDIR/results.md. `make bench-scale` runs it on release builds.
set -euo pipefail

replay=${1:?usage: run.sh REPLAY TALLY_SERVER WORKDIR [EVENTS ...]}
server=${2:?usage: run.sh REPLAY TALLY_SERVER WORKDIR [EVENTS ...]}
work=${3:?usage: run.sh REPLAY TALLY_SERVER WORKDIR [EVENTS ...]}
shift 3
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000 100000000)
runs=${SCALE_RUNS:-3}
here=$(cd "$(dirname "$0")" && pwd)
port=${SCALE_PORT:-18480}
mkdir -p "$work/logs"
results="$work/results.md"
command -v curl >/dev/null || { echo "run.sh needs curl" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "run.sh needs /usr/bin/time (apt install time)" >&2; exit 1; }

log() { echo "$*" >&2; }
row() { echo "$*" | tee -a "$results"; }
raw() { echo "    $*" >> "$results"; }

# `timed OUT CMD...`: runs CMD with stdout to OUT; prints "SECONDS MAXRSS_MIB".
timed() {
    local out=$1; shift
    /usr/bin/time -f '%e %M' -o "$work/.time" "$@" > "$out"
    awk '{ printf "%.2f %.0f\n", $1, $2 / 1024 }' "$work/.time"
}

# A writable copy of log $1 at $2: sealed segments hard-linked, the rest copied.
writable_copy() {
    local from=$1 to=$2
    rm -rf "$to"; mkdir -p "$to"
    local segments=("$from"/*.seg)
    local active=${segments[-1]}
    for f in "$from"/*; do
        local name=${f##*/}
        [ "$name" = LOCK ] && continue
        if [[ $name == *.seg && $f != "$active" ]]; then ln "$f" "$to/$name"; else cp -a "$f" "$to/$name"; fi
    done
}

# JSON field $2 of the one-line object in file $1.
field() { sed -E "s/.*\"$2\":\"?([^,\"}]*).*/\1/" "$1"; }

# Starts the server on log copy $1; prints "listen_s views_live_s rss_mib" and stops it
# (SIGTERM, so it writes its snapshots): cold-start.sh's figures, in seconds.
server_start() {
    local figures
    figures=$("$here/cold-start.sh" "$server" "$1" "$port") || { log "the server did not get all views live"; exit 1; }
    awk '{ printf "%.2f %.2f %s\n", $1 / 1000, $2 / 1000, $3 }' <<< "$figures"
}

# Runs `$@` $runs times and prints the values joined by " · ".
repeat() {
    local values=()
    for _ in $(seq "$runs"); do values+=("$("$@")"); done
    local IFS='|'; echo "${values[*]}" | sed 's/|/ · /g'
}

row ""
row "### Scale run $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
row ""
row "| events | figure | runs | command |"
row "|---|---|---|---|"

for n in "${sizes[@]}"; do
    L="$work/logs/$n"
    if [ ! -e "$L.done" ]; then
        log "== building the $n-event log (once)"
        rm -rf "$L"
        read -r s m < <(timed "$work/generate.json" "$replay" generate --log "$L" --events "$n" --seed 1)
        raw "$(cat "$work/generate.json")"
        row "| $n | generate: $(field "$work/generate.json" events_per_second) events/s, ${s} s, ${m} MiB | 1 | \`replay generate --log L --events $n --seed 1\` |"
        touch "$L.done"
    fi
    C="$work/copy-$n"

    log "== $n: open for writing"
    "$replay" export --log "$L" --format jsonl 2>/dev/null | head -1 > "$work/one.jsonl" || true
    open_once() {
        writable_copy "$L" "$C"
        read -r s m < <(timed /dev/null "$replay" import --log "$C" "$work/one.jsonl")
        echo "$s s, $m MiB"
    }
    row "| $n | open for writing | $(repeat open_once) | \`/usr/bin/time replay import --log COPY one.jsonl\` |"

    log "== $n: readStream"
    streams_once() {
        "$replay" bench streams --log "$L" --reads 300 > "$work/streams.json"
        raw "$(cat "$work/streams.json")"
        echo "p50 $(field "$work/streams.json" read_p50_ms) / p99 $(field "$work/streams.json" read_p99_ms) ms"
    }
    row "| $n | readStream (limit 100) | $(repeat streams_once) | \`replay bench streams --log L --reads 300\` |"

    log "== $n: durable single-event appends onto the log"
    append_once() {
        writable_copy "$L" "$C"
        "$replay" bench append --log "$C" --onto-existing --fsync always --appenders 256 --batch 1 --events 100000 > "$work/append.json"
        raw "$(cat "$work/append.json")"
        echo "$(field "$work/append.json" events_per_second) ev/s (fsync p50 $(field "$work/append.json" fsync_p50_ms) ms)"
    }
    row "| $n | durable single-event appends | $(repeat append_once) | \`replay bench append --log COPY --onto-existing --fsync always --appenders 256 --batch 1 --events 100000\` |"

    log "== $n: views"
    replay_once() {
        read -r s m < <(timed "$work/replay.json" "$replay" bench replay --log "$L")
        raw "$(cat "$work/replay.json")"
        echo "$(field "$work/replay.json" events_per_second) ev/s, $m MiB"
    }
    row "| $n | rebuild all views (no snapshot) | $(repeat replay_once) | \`replay bench replay --log L\` |"
    rebuild_once() {
        rm -rf "$work/snapshots-$n"
        read -r s m < <(timed /dev/null "$replay" rebuild --log "$L" --snapshots "$work/snapshots-$n")
        echo "$s s, $m MiB, $(du -sb "$work/snapshots-$n" | cut -f1) B"
    }
    row "| $n | rebuild and write snapshots | $(repeat rebuild_once) | \`replay rebuild --log L --snapshots S\` |"
    stats_once() { read -r s m < <(timed /dev/null "$replay" stats --log "$L" "$@"); echo "$s s, $m MiB"; }
    row "| $n | stats at the head | $(repeat stats_once) | \`replay stats --log L\` |"
    row "| $n | stats as of the middle | $(repeat stats_once --until-position $((n / 2))) | \`replay stats --log L --until-position $((n / 2))\` |"

    log "== $n: tally-server"
    writable_copy "$L" "$C"
    read -r listen live rss < <(server_start "$C")
    row "| $n | server start, no snapshots: listening / all views live / peak RSS | 1: $listen s / $live s / $rss MiB | \`tally-server serve --data-dir COPY\` |"
    cold_once() { read -r listen live rss < <(server_start "$C"); echo "$listen s / $live s / $rss MiB"; }
    row "| $n | server cold start from its snapshots: listening / all views live / peak RSS | $(repeat cold_once) | same, again (snapshots written at the previous shutdown) |"
    rm -rf "$C"
done
log "results appended to $results"
