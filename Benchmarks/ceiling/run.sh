#!/usr/bin/env bash
# Where the write path's time goes (docs/PERFORMANCE.md, "Issue 10 — the ceiling"): the same wrk
# load as Benchmarks/run.sh, in one run, against
#   etcd      etcd's JSON gateway
#   full      clusdb serve as built (CLUSDB_BIN)
#   at-once   clusdb serve built with answer-writes-at-once.patch (CLUSDB_AT_ONCE_BIN): the same
#             HTTP stack, connection guard and set-value handler, every write answered at once
#             and nothing written — a MEASUREMENT build, never a product
#   raw       RawAnswerer (RAW_BIN): NIO with no HTTP decoder, types or router
#   log-only  (optional, LOG_ONLY_BIN) clusdb serve built with log-only.patch: HTTP, the Raft
#             driver, the quorum log's append and fdatasync, the answer at commit; no apply to
#             the hive and no checkpoint — a MEASUREMENT build, never a product
# at 1 and 64 connections, REPS times, the order of the targets rotated each repetition so none
# always runs on a warmer or cooler machine. Around each wrk run it reads the server's CPU time
# (utime + stime of /proc/PID/stat, which counts the process's exited threads too: checkpoint
# threads come and go) and the machine's (/proc/stat), and adds to the RESULT line
#   server_us   the server's CPU microseconds per answered write
#   machine_us  the whole machine's busy CPU microseconds per answered write (wrk included)
#   idle_pct, steal_pct   of the machine's time during the run (steal: taken by the hypervisor)
# Prints the RESULT lines, then medians per target and load. Loopback only; everything is
# stopped and deleted at the end.
#   CLUSDB_BIN=... CLUSDB_AT_ONCE_BIN=... RAW_BIN=... [LOG_ONLY_BIN=...] bash Benchmarks/ceiling/run.sh
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
LOG_ONLY_PID=""; PORTS="24080 24082 24090"; TARGETS=(etcd full at-once raw)
if [ -n "${LOG_ONLY_BIN:-}" ]; then
  CLUSDB_LOG_LEVEL=warning "$LOG_ONLY_BIN" serve --data-dir "$TMP/log-only" --client-addr 127.0.0.1:24084 --peer-addr 127.0.0.1:24085 >"$TMP/log-only.log" 2>&1 &
  LOG_ONLY_PID=$!; PORTS="$PORTS 24084"; TARGETS+=(log-only)
fi
trap 'stop "$FULL_PID"; stop "$AT_ONCE_PID"; stop "$RAW_PID"; stop "$LOG_ONLY_PID"; cleanup' EXIT
# CPU clock ticks of a process (all its threads, live and exited) and of the machine.
process_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6, $9; exit}' /proc/stat; }  # busy, idle+iowait, steal
TICK_US=$((1000000 / $(getconf CLK_TCK)))
for port in $PORTS; do
  ready=no
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && { ready=yes; break; }; sleep 0.1; done
  [ $ready = yes ] || { echo "nothing listens on 127.0.0.1:$port after 10 s"; cat "$TMP"/*.log; exit 1; }
done
run=0
for rep in $(seq 1 "$REPS"); do
  for conns in 1 64; do
    threads=2; [ "$conns" = 1 ] && threads=1
    for offset in $(seq 0 $((${#TARGETS[@]} - 1))); do
      target=${TARGETS[$(((rep - 1 + offset) % ${#TARGETS[@]}))]}
      run=$((run + 1)); base=$((run * 100000000))
      case $target in
        etcd) url=http://$ETCD_EP; script=$ETCD_PUT_LUA; pid=$ETCD_PID ;;
        full) url=http://127.0.0.1:24080; script=$ROOT/Benchmarks/clusdb_put.lua; pid=$FULL_PID ;;
        at-once) url=http://127.0.0.1:24082; script=$ROOT/Benchmarks/clusdb_put.lua; pid=$AT_ONCE_PID ;;
        raw) url=http://127.0.0.1:24090; script=$ROOT/Benchmarks/clusdb_put.lua; pid=$RAW_PID ;;
        log-only) url=http://127.0.0.1:24084; script=$ROOT/Benchmarks/clusdb_put.lua; pid=$LOG_ONLY_PID ;;
      esac
      server_before=$(process_ticks "$pid"); read -r busy_before idle_before steal_before <<<"$(machine_ticks)"
      line=$(wrk -t"$threads" -c"$conns" -d"$DUR" -s "$script" "$url" -- conns="$conns" base="$base" target="$target" | grep '^RESULT')
      server_after=$(process_ticks "$pid"); read -r busy_after idle_after steal_after <<<"$(machine_ticks)"
      requests=$(echo "$line" | grep -o ' ok2xx=[0-9]*' | cut -d= -f2)
      cpu=$(python3 -c "
b = $busy_after - $busy_before; i = $idle_after - $idle_before; s = $steal_after - $steal_before; n = max(${requests:-0}, 1)
print(f'server_us={($server_after - $server_before) * $TICK_US / n:.1f} machine_us={b * $TICK_US / n:.1f} idle_pct={100 * i / max(b + i, 1):.0f} steal_pct={100 * s / max(b + i, 1):.0f}')")
      echo "$line $cpu rep=$rep" | tee -a "$TMP/results.txt"
    done
  done
done
# Medians per target and load: throughput (and as a multiple of etcd's), CPU per write.
python3 - "$TMP/results.txt" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    if fields.get("non2xx") != "0" or fields.get("sockerr") != "0":
        print(f"WARNING: errors in {line.strip()}")
    runs[(fields["target"], int(fields["conns"]))].append(fields)
targets = [t for t in ("etcd", "full", "log-only", "at-once", "raw") if any(k[0] == t for k in runs)]
def median(target, conns, name):
    return statistics.median(float(f[name]) for f in runs[(target, conns)])
print("| clients | target | writes/s | × etcd | server CPU µs/write | machine CPU µs/write | idle % | steal % |")
print("|---|---|---|---|---|---|---|---|")
for conns in sorted({c for _, c in runs}):
    etcd = median("etcd", conns, "rps")
    for t in targets:
        rps = median(t, conns, "rps")
        print(f"| {conns} | {t} | {rps:,.0f} | {rps / etcd:.2f} | {median(t, conns, 'server_us'):.1f} | "
              f"{median(t, conns, 'machine_us'):.1f} | {median(t, conns, 'idle_pct'):.0f} | {median(t, conns, 'steal_pct'):.0f} |")
PY
