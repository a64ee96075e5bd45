#!/usr/bin/env bash
# Backup and restore beside etcd's snapshots, same machine, same volume, same run
# (docs/PERFORMANCE.md, "Backup and restore").
#   bash Benchmarks/backup.sh [LOGFILE]        about 10 minutes with the defaults
# For each size N (default 100,000 and 1,000,000 values of 256 bytes):
#   - loads N values into a fresh ClusDB (reg import, 100,000 per batch) and a fresh etcd (bulk
#     load through its gateway, 100 puts per txn)
#   - times REPS backups: `clusdb backup DIR` (streamed to the client), `clusdb backup DIR
#     --on-quorum-owner`, and `etcdctl snapshot save FILE`; sizes with du
#   - times `clusdb backup verify` beside `etcdctl snapshot status`
#   - times REPS restores: `clusdb restore DIR --data-dir NEW` beside `etcdctl snapshot restore
#     FILE --data-dir NEW`
#   - measures write latency (wrk, 1 connection, unadjusted max and p99) while a backup runs,
#     beside the same load without one, for both systems
# and once the disk's sequential write speed (dd, 1 GiB, fdatasync) on the same volume.
# Needs: apt-get install -y wrk etcd-server etcd-client python3. Loopback only.
# Env: REPS=3 SIZES="100000 1000000" SHARED=../shared BENCH_DIR=/tmp (the data volume)
#      CLUSDB_BIN=path   measure this clusdb binary instead of building one
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
export ETCD_PUT_LUA=$SHARED/bench/wrk/etcd_put.lua
REPS=${REPS:-3}; SIZES=${SIZES:-"100000 1000000"}; BENCH_DIR=${BENCH_DIR:-/tmp}
ETCD_EP=127.0.0.1:23990; CLUSDB_EP=127.0.0.1:23980
LOG=${1:-}
if [ -n "$LOG" ]; then exec > >(tee "$LOG") 2>&1; fi
for tool in wrk etcd etcdctl python3; do command -v $tool >/dev/null || { echo "missing $tool"; exit 1; }; done

if [ -n "${CLUSDB_BIN:-}" ]; then
  CLUSDB=$CLUSDB_BIN
else
  echo "# building clusdb (release)"
  (cd "$ROOT" && swift build -c release --product clusdb 2>&1 | tail -1)
  CLUSDB=$(cd "$ROOT" && swift build -c release --show-bin-path)/clusdb
fi

TMP=$(mktemp -d "$BENCH_DIR/clusdb-backup-bench.XXXXXX")
source "$ROOT/Benchmarks/servers.sh"
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
size_of() { du -sb "$1" | awk '{print $1}'; }

# wrk for SECONDS at 1 connection against TARGET; prints the RESULT line.
write_load() {
  local target=$1 seconds=$2 base=$3
  if [ "$target" = etcd ]; then
    wrk -t1 -c1 -d"${seconds}s" -s "$ETCD_PUT_LUA" "http://$ETCD_EP" -- conns=1 base="$base" target=etcd | grep '^RESULT'
  else
    wrk -t1 -c1 -d"${seconds}s" -s "$ROOT/Benchmarks/clusdb_put.lua" "http://$CLUSDB_EP" -- conns=1 base="$base" target=clusdb | grep '^RESULT'
  fi
}

echo "# machine: $(nproc) cores, $(uname -r); etcd $(etcd --version | head -1 | awk '{print $3}'); $(swift --version 2>&1 | head -1)"
echo "# data volume: $(df -h "$TMP" | tail -1 | awk '{print $1, $2}')"
dd if=/dev/zero of="$TMP/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1 | sed 's/^/DISK sequential write: /'
rm -f "$TMP/dd"

run=0
for N in $SIZES; do
  echo "# $N values"
  rm -rf "$TMP/clusdb" "$TMP/etcd"
  start_etcd; start_clusdb
  began=$(now); python3 "$ROOT/Benchmarks/etcd_bulk_load.py" "$ETCD_EP" "$N" > /dev/null; echo "LOAD target=etcd values=$N seconds=$(elapsed "$began" "$(now)")"
  began=$(now)
  chunk=100000; loaded=0; part=0
  while [ "$loaded" -lt "$N" ]; do
    count=$(( N - loaded < chunk ? N - loaded : chunk ))
    python3 "$ROOT/Benchmarks/make_import.py" "$TMP/import.json" "$count"
    "$CLUSDB" --cluster "$CLUSDB_EP" reg import "$TMP/import.json" --key "part$part" > /dev/null
    loaded=$((loaded + count)); part=$((part + 1))
  done
  echo "LOAD target=clusdb values=$N seconds=$(elapsed "$began" "$(now)")"
  for rep in $(seq 1 "$REPS"); do
    began=$(now); "$CLUSDB" --cluster "$CLUSDB_EP" backup "$TMP/backup-streamed" > /dev/null; ended=$(now)
    echo "BACKUP target=clusdb-streamed values=$N seconds=$(elapsed "$began" "$ended") bytes=$(size_of "$TMP/backup-streamed") rep=$rep"
    began=$(now); "$CLUSDB" --cluster "$CLUSDB_EP" backup "$TMP/backup-owner" --on-quorum-owner > /dev/null; ended=$(now)
    echo "BACKUP target=clusdb-owner values=$N seconds=$(elapsed "$began" "$ended") bytes=$(size_of "$TMP/backup-owner") rep=$rep"
    rm -f "$TMP/etcd.snap"
    began=$(now); ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" snapshot save "$TMP/etcd.snap" > /dev/null 2>&1; ended=$(now)
    echo "BACKUP target=etcd values=$N seconds=$(elapsed "$began" "$ended") bytes=$(size_of "$TMP/etcd.snap") rep=$rep"
    began=$(now); "$CLUSDB" backup verify "$TMP/backup-streamed" > /dev/null; ended=$(now)
    echo "VERIFY target=clusdb values=$N seconds=$(elapsed "$began" "$ended") rep=$rep"
    began=$(now); ETCDCTL_API=3 etcdctl snapshot status "$TMP/etcd.snap" > /dev/null 2>&1; ended=$(now)
    echo "VERIFY target=etcd values=$N seconds=$(elapsed "$began" "$ended") rep=$rep"
  done
  # Write latency while a backup runs: a 12 s load, the backup starting after 2 s.
  for target in clusdb etcd; do
    run=$((run + 1))
    echo "$(write_load "$target" 8 $((run * 100000000))) phase=quiet values=$N"
    run=$((run + 1))
    write_load "$target" 12 $((run * 100000000)) > "$TMP/load.txt" &
    load_pid=$!
    sleep 2
    began=$(now)
    if [ "$target" = clusdb ]; then
      "$CLUSDB" --cluster "$CLUSDB_EP" backup "$TMP/backup-during" > /dev/null
    else
      rm -f "$TMP/etcd-during.snap"; ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" snapshot save "$TMP/etcd-during.snap" > /dev/null 2>&1
    fi
    ended=$(now)
    wait "$load_pid"
    echo "$(cat "$TMP/load.txt") phase=during-backup backup_seconds=$(elapsed "$began" "$ended") values=$N"
  done
  stop "$CLUSDB_PID"; CLUSDB_PID=""; stop "$ETCD_PID"; ETCD_PID=""
  for rep in $(seq 1 "$REPS"); do
    rm -rf "$TMP/restored-clusdb" "$TMP/restored-etcd"
    began=$(now); "$CLUSDB" restore "$TMP/backup-streamed" --data-dir "$TMP/restored-clusdb" > /dev/null; ended=$(now)
    echo "RESTORE target=clusdb values=$N seconds=$(elapsed "$began" "$ended") bytes=$(size_of "$TMP/restored-clusdb") rep=$rep"
    began=$(now)
    ETCDCTL_API=3 etcdctl snapshot restore "$TMP/etcd.snap" --data-dir "$TMP/restored-etcd" --name bench \
      --initial-cluster bench=http://127.0.0.1:23991 --initial-advertise-peer-urls http://127.0.0.1:23991 > /dev/null 2>&1
    ended=$(now)
    echo "RESTORE target=etcd values=$N seconds=$(elapsed "$began" "$ended") bytes=$(size_of "$TMP/restored-etcd") rep=$rep"
  done
  rm -rf "$TMP/backup-"* "$TMP"/restored-* "$TMP"/etcd*.snap
done
