# Shared by Benchmarks/run.sh and Benchmarks/backup.sh: starting and stopping the two servers.
# The caller sets TMP, ETCD_EP, CLUSDB_EP and CLUSDB, and the PIDs live in ETCD_PID/CLUSDB_PID.
# shellcheck shell=bash
ETCD_PID=""; CLUSDB_PID=""
stop() { # PID: TERM, then KILL after 10 s
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
}
cleanup() { stop "$ETCD_PID"; stop "$CLUSDB_PID"; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start_etcd() {
  etcd --name bench --data-dir "$TMP/etcd" --listen-client-urls "http://$ETCD_EP" --advertise-client-urls "http://$ETCD_EP" \
    --listen-peer-urls http://127.0.0.1:23991 --initial-advertise-peer-urls http://127.0.0.1:23991 \
    --initial-cluster bench=http://127.0.0.1:23991 --log-level error > "$TMP/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://$ETCD_EP/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "etcd did not start"; cat "$TMP/etcd.log"; exit 1
}
start_clusdb() {
  CLUSDB_LOG_LEVEL=warning "$CLUSDB" serve --data-dir "$TMP/clusdb" --client-addr "$CLUSDB_EP" --peer-addr 127.0.0.1:23981 \
    > "$TMP/clusdb.out" 2> "$TMP/clusdb.log" &
  CLUSDB_PID=$!
  for _ in $(seq 1 100); do grep -q "serving clients" "$TMP/clusdb.out" 2>/dev/null && return; sleep 0.1; done
  echo "clusdb did not start"; cat "$TMP/clusdb.log"; exit 1
}

