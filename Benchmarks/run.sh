#!/usr/bin/env bash
# ClusDB beside etcd, same machine, same run (docs/PERFORMANCE.md).
#   bash Benchmarks/run.sh [LOGFILE]          about 5 minutes with the defaults
# Measures, alternating the two targets so both see the same machine:
#   - write throughput and raw p50/p99 latency with wrk at 1, 16 and 64 connections, 256-byte
#     values, a new key per request (the shared etcd_put.lua; ClusDB via Benchmarks/clusdb_put.lua)
#   - an import of IMPORT_N values (default 100,000): `clusdb reg import` (one atomic batch)
#     against etcd's bulk load through its gateway, 100 puts per txn
# Needs: apt-get install -y wrk etcd-server python3. Loopback only; both servers are stopped by
# PID and their data deleted at the end.
# Env: REPS=3 DUR=10s CONFIGS="1:1 2:16 2:64" IMPORT_N=100000 SHARED=../shared
#      CLUSDB_BIN=path   measure this clusdb binary instead of building one
#      CLUSDB_B=path     also measure a second binary (target clusdb-b) in the same run, e.g. the
#                        build before a change (A/B); IMPORT_N=0 skips the import
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
export ETCD_PUT_LUA=$SHARED/bench/wrk/etcd_put.lua
REPS=${REPS:-3}; DUR=${DUR:-10s}; CONFIGS=${CONFIGS:-"1:1 2:16 2:64"}; IMPORT_N=${IMPORT_N:-100000}
ETCD_EP=127.0.0.1:23990; CLUSDB_EP=127.0.0.1:23980
LOG=${1:-}
if [ -n "$LOG" ]; then exec > >(tee "$LOG") 2>&1; fi

for tool in wrk etcd python3; do command -v $tool >/dev/null || { echo "missing $tool (apt-get install -y wrk etcd-server python3)"; exit 1; }; done
[ -f "$ETCD_PUT_LUA" ] || { echo "missing $ETCD_PUT_LUA (set SHARED)"; exit 1; }

if [ -n "${CLUSDB_BIN:-}" ]; then
  CLUSDB=$CLUSDB_BIN
else
  echo "# building clusdb (release)"
  (cd "$ROOT" && swift build -c release --product clusdb 2>&1 | tail -1)
  CLUSDB=$(cd "$ROOT" && swift build -c release --show-bin-path)/clusdb
fi
CLUSDB_B=${CLUSDB_B:-}; CLUSDB_B_EP=127.0.0.1:23982

TMP=$(mktemp -d /tmp/clusdb-bench.XXXXXX)
source "$ROOT/Benchmarks/servers.sh"

echo "# machine: $(nproc) cores, $(uname -r); etcd $(etcd --version | head -1 | awk '{print $3}'); $(swift --version 2>&1 | head -1)"
echo "# disk under /tmp: $(df -h /tmp | tail -1 | awk '{print $1, $2}')"
start_etcd
start_clusdb
if [ -n "$CLUSDB_B" ]; then
  CLUSDB_B_PID=""
  CLUSDB_LOG_LEVEL=warning "$CLUSDB_B" serve --data-dir "$TMP/clusdb-b" --client-addr "$CLUSDB_B_EP" --peer-addr 127.0.0.1:23983 \
    > "$TMP/clusdb-b.out" 2> "$TMP/clusdb-b.log" &
  CLUSDB_B_PID=$!
  trap 'stop "$CLUSDB_B_PID"; cleanup' EXIT
  for _ in $(seq 1 100); do grep -q "serving clients" "$TMP/clusdb-b.out" 2>/dev/null && break; sleep 0.1; done
fi
TARGETS="etcd clusdb"; [ -n "$CLUSDB_B" ] && TARGETS="etcd clusdb clusdb-b"

run=0
for rep in $(seq 1 "$REPS"); do
  for config in $CONFIGS; do
    threads=${config%%:*}; conns=${config##*:}
    # Alternate which target goes first, so none always runs on a warmer machine.
    if [ $((rep % 2)) -eq 1 ]; then order="$TARGETS"; else order=$(echo "$TARGETS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
    for target in $order; do
      run=$((run + 1)); base=$((run * 100000000))
      if [ "$target" = etcd ]; then
        line=$(wrk -t"$threads" -c"$conns" -d"$DUR" -s "$ETCD_PUT_LUA" "http://$ETCD_EP" -- conns="$conns" base="$base" target=etcd | grep '^RESULT')
      else
        endpoint=$CLUSDB_EP; [ "$target" = clusdb-b ] && endpoint=$CLUSDB_B_EP
        line=$(wrk -t"$threads" -c"$conns" -d"$DUR" -s "$ROOT/Benchmarks/clusdb_put.lua" "http://$endpoint" -- conns="$conns" base="$base" target="$target" | grep '^RESULT')
      fi
      echo "$line rep=$rep" | tee -a "$TMP/results.txt"
    done
  done
done

if [ "$IMPORT_N" = 0 ]; then
  echo "# summary (medians over reps; ratio = clusdb / etcd for throughput)"
  python3 "$ROOT/Benchmarks/summarize.py" "$TMP/results.txt"
  exit 0
fi
echo "# import of $IMPORT_N values"
python3 "$ROOT/Benchmarks/make_import.py" "$TMP/import.json" "$IMPORT_N"
for rep in $(seq 1 "$REPS"); do
  began=$(date +%s.%N)
  "$CLUSDB" --cluster "$CLUSDB_EP" reg import "$TMP/import.json" --key "import$rep" > /dev/null
  ended=$(date +%s.%N)
  echo "IMPORT target=clusdb values=$IMPORT_N seconds=$(python3 -c "print(f'{$ended - $began:.3f}')") rep=$rep" | tee -a "$TMP/results.txt"
  seconds=$(python3 "$ROOT/Benchmarks/etcd_bulk_load.py" "$ETCD_EP" "$IMPORT_N")
  echo "IMPORT target=etcd values=$IMPORT_N seconds=$seconds rep=$rep" | tee -a "$TMP/results.txt"
done

echo "# summary (medians over reps; ratio = clusdb / etcd for throughput, etcd / clusdb for time)"
python3 "$ROOT/Benchmarks/summarize.py" "$TMP/results.txt"
