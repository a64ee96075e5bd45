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

echo "# building clusdb (release)"
(cd "$ROOT" && swift build -c release --product clusdb 2>&1 | tail -1)
CLUSDB=$(cd "$ROOT" && swift build -c release --show-bin-path)/clusdb

TMP=$(mktemp -d /tmp/clusdb-bench.XXXXXX)
source "$ROOT/Benchmarks/servers.sh"

echo "# machine: $(nproc) cores, $(uname -r); etcd $(etcd --version | head -1 | awk '{print $3}'); $(swift --version 2>&1 | head -1)"
echo "# disk under /tmp: $(df -h /tmp | tail -1 | awk '{print $1, $2}')"
start_etcd
start_clusdb

run=0
for rep in $(seq 1 "$REPS"); do
  for config in $CONFIGS; do
    threads=${config%%:*}; conns=${config##*:}
    # Alternate which target goes first, so neither always runs on a warmer machine.
    if [ $((rep % 2)) -eq 1 ]; then order="etcd clusdb"; else order="clusdb etcd"; fi
    for target in $order; do
      run=$((run + 1)); base=$((run * 100000000))
      if [ "$target" = etcd ]; then
        line=$(wrk -t"$threads" -c"$conns" -d"$DUR" -s "$ETCD_PUT_LUA" "http://$ETCD_EP" -- conns="$conns" base="$base" target=etcd | grep '^RESULT')
      else
        line=$(wrk -t"$threads" -c"$conns" -d"$DUR" -s "$ROOT/Benchmarks/clusdb_put.lua" "http://$CLUSDB_EP" -- conns="$conns" base="$base" target=clusdb | grep '^RESULT')
      fi
      echo "$line rep=$rep" | tee -a "$TMP/results.txt"
    done
  done
done

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
