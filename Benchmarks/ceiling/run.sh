#!/usr/bin/env bash
# Where the write path's time goes (docs/PERFORMANCE.md, "Issue 10 — the ceiling"): the same wrk
# load as Benchmarks/run.sh, in one run, against
#   etcd      etcd's JSON gateway
#   full      clusdb serve as built (CLUSDB_BIN)
#   at-once   clusdb serve built with answer-writes-at-once.patch (CLUSDB_AT_ONCE_BIN): the same
#             HTTP stack, connection guard and set-value handler, every write answered at once
#             and nothing written — a MEASUREMENT build, never a product
#   raw       RawAnswerer (RAW_BIN): NIO with no HTTP decoder, types or router
# at 1 and 64 connections, REPS times, the order of the four rotated each repetition so none
# always runs on a warmer or cooler machine. Prints the RESULT lines, then medians per target and
# load. Loopback only; everything is stopped and deleted at the end.
#   CLUSDB_BIN=... CLUSDB_AT_ONCE_BIN=... RAW_BIN=... bash Benchmarks/ceiling/run.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
export ETCD_PUT_LUA=$SHARED/bench/wrk/etcd_put.lua
REPS=${REPS:-4}; DUR=${DUR:-10s}
: "${CLUSDB_BIN:?clusdb binary}" "${CLUSDB_AT_ONCE_BIN:?clusdb binary built with answer-writes-at-once.patch}" "${RAW_BIN:?RawAnswerer binary}"
for tool in wrk etcd python3; do command -v $tool >/dev/null || { echo "missing $tool (apt-get install -y wrk etcd-server python3)"; exit 1; }; done
[ -f "$ETCD_PUT_LUA" ] || { echo "missing $ETCD_PUT_LUA (set SHARED)"; exit 1; }
TMP=$(mktemp -d /tmp/clusdb-ceiling.XXXXXX); ETCD_EP=127.0.0.1:23990
source "$ROOT/Benchmarks/servers.sh"
start_etcd
CLUSDB_LOG_LEVEL=warning "$CLUSDB_BIN" serve --data-dir "$TMP/full" --client-addr 127.0.0.1:24080 --peer-addr 127.0.0.1:24081 >"$TMP/full.log" 2>&1 &
FULL_PID=$!
CLUSDB_LOG_LEVEL=warning "$CLUSDB_AT_ONCE_BIN" serve --data-dir "$TMP/at-once" --client-addr 127.0.0.1:24082 --peer-addr 127.0.0.1:24083 >"$TMP/at-once.log" 2>&1 &
AT_ONCE_PID=$!
"$RAW_BIN" 24090 >"$TMP/raw.log" 2>&1 &
RAW_PID=$!
trap 'stop "$FULL_PID"; stop "$AT_ONCE_PID"; stop "$RAW_PID"; cleanup' EXIT
for port in 24080 24082 24090; do
  ready=no
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && { ready=yes; break; }; sleep 0.1; done
  [ $ready = yes ] || { echo "nothing listens on 127.0.0.1:$port after 10 s"; cat "$TMP"/*.log; exit 1; }
done
TARGETS=(etcd full at-once raw)
run=0
for rep in $(seq 1 "$REPS"); do
  for conns in 1 64; do
    threads=2; [ "$conns" = 1 ] && threads=1
    for offset in 0 1 2 3; do
      target=${TARGETS[$(((rep - 1 + offset) % 4))]}
      run=$((run + 1)); base=$((run * 100000000))
      case $target in
        etcd) url=http://$ETCD_EP; script=$ETCD_PUT_LUA ;;
        full) url=http://127.0.0.1:24080; script=$ROOT/Benchmarks/clusdb_put.lua ;;
        at-once) url=http://127.0.0.1:24082; script=$ROOT/Benchmarks/clusdb_put.lua ;;
        raw) url=http://127.0.0.1:24090; script=$ROOT/Benchmarks/clusdb_put.lua ;;
      esac
      line=$(wrk -t"$threads" -c"$conns" -d"$DUR" -s "$script" "$url" -- conns="$conns" base="$base" target="$target" | grep '^RESULT')
      echo "$line rep=$rep" | tee -a "$TMP/results.txt"
    done
  done
done
# Medians per target and load, and each as a multiple of etcd's.
python3 - "$TMP/results.txt" <<'PY'
import collections, statistics, sys
rps = collections.defaultdict(list)
for line in open(sys.argv[1]):
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    if fields.get("non2xx") != "0" or fields.get("sockerr") != "0":
        print(f"WARNING: errors in {line.strip()}")
    rps[(fields["target"], int(fields["conns"]))].append(float(fields["rps"]))
print("| clients | etcd | full | at-once | raw |")
print("|---|---|---|---|---|")
for conns in sorted({c for _, c in rps}):
    etcd = statistics.median(rps[("etcd", conns)])
    cells = [f"{statistics.median(rps[(t, conns)]):,.0f} ({statistics.median(rps[(t, conns)]) / etcd:.2f}×)" for t in ("full", "at-once", "raw")]
    print(f"| {conns} | {etcd:,.0f} | " + " | ".join(cells) + " |")
PY
