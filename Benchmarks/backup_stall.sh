#!/usr/bin/env bash
# The slowest one-client write while a streamed backup of 1,000,000 values runs, for one clusdb
# binary, ROUNDS times (docs/PERFORMANCE.md, "Backup and restore, issue 9"). The max of one
# round is a single sample and swings widely: compare many rounds of two builds, alternating.
#   bash Benchmarks/backup_stall.sh BINARY LABEL        about 2 minutes with ROUNDS=2
# Needs: apt-get install -y wrk python3. Loopback only; the server and its data are removed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
BIN=$1; LABEL=$2; ROUNDS=${ROUNDS:-2}; EP=127.0.0.1:23970
T=$(mktemp -d /tmp/clusdb-stall.XXXXXX)
CLUSDB_LOG_LEVEL=warning "$BIN" serve --data-dir "$T/d" --client-addr $EP --peer-addr 127.0.0.1:23971 > "$T/out" 2> "$T/err" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 100); do grep -q "serving clients" "$T/out" 2>/dev/null && break; sleep 0.1; done
python3 "$ROOT/Benchmarks/make_import.py" "$T/import.json" 100000
for part in $(seq 1 10); do "$BIN" --cluster $EP reg import "$T/import.json" --key "part$part" > /dev/null; done
export ETCD_PUT_LUA=$SHARED/bench/wrk/etcd_put.lua
for round in $(seq 1 "$ROUNDS"); do
  wrk -t1 -c1 -d12s -s "$ROOT/Benchmarks/clusdb_put.lua" http://$EP -- conns=1 base=$((round * 100000000)) target=clusdb \
    | grep '^RESULT' > "$T/load.txt" &
  load=$!; sleep 2
  "$BIN" --cluster $EP backup "$T/backup$round" > /dev/null
  wait $load
  echo "STALL target=$LABEL round=$round $(grep -o 'p99_ms=[0-9.]*\|max_ms=[0-9.]*' "$T/load.txt" | tr '\n' ' ')"
  rm -rf "$T/backup$round"
done
