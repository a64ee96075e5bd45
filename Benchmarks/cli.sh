#!/usr/bin/env bash
# One CLI process per write, as operators script it: `clusdb reg set` beside `etcdctl put`, same
# machine, same run (docs/PERFORMANCE.md, "The command line").
#   bash Benchmarks/cli.sh [LOGFILE]              about a minute with the defaults
# Also times `clusdb --version`-like start and exit alone (`clusdb reg --help`), to split the
# process start from the request. Needs: apt-get install -y etcd-server etcd-client python3.
# Env: N=200 REPS=3 CLUSDB_BIN=path (else a release build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200}; REPS=${REPS:-3}
ETCD_EP=127.0.0.1:23990; CLUSDB_EP=127.0.0.1:23980
LOG=${1:-}
if [ -n "$LOG" ]; then exec > >(tee "$LOG") 2>&1; fi
for tool in etcd etcdctl python3; do command -v $tool >/dev/null || { echo "missing $tool (apt-get install -y etcd-server etcd-client python3)"; exit 1; }; done
if [ -n "${CLUSDB_BIN:-}" ]; then
  CLUSDB=$CLUSDB_BIN
else
  (cd "$ROOT" && swift build -c release --product clusdb 2>&1 | tail -1)
  CLUSDB=$(cd "$ROOT" && swift build -c release --show-bin-path)/clusdb
fi
TMP=$(mktemp -d /tmp/clusdb-cli.XXXXXX)
source "$ROOT/Benchmarks/servers.sh"
start_etcd
start_clusdb
now() { python3 -c 'import time; print(time.perf_counter())'; }
per_call() { # LABEL COMMAND...: N calls, prints milliseconds per call
  local label=$1; shift
  local began ended
  began=$(date +%s%N)
  for i in $(seq 1 "$N"); do "$@" "$i" > /dev/null; done
  ended=$(date +%s%N)
  echo "CLI target=$label calls=$N ms_per_call=$(python3 -c "print(f'{($ended - $began) / 1e6 / $N:.2f}')")"
}
clusdb_set() { "$CLUSDB" --cluster "$CLUSDB_EP" reg set 'cli\bench' "v$1" REG_SZ "value-$1"; }
clusdb_help() { "$CLUSDB" reg --help; }
etcd_put() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" put "/cli/bench/v$1" "value-$1"; }
etcd_version() { ETCDCTL_API=3 etcdctl version; }
for rep in $(seq 1 "$REPS"); do
  per_call clusdb-set clusdb_set | sed "s/$/ rep=$rep/"
  per_call etcdctl-put etcd_put | sed "s/$/ rep=$rep/"
  per_call clusdb-start clusdb_help | sed "s/$/ rep=$rep/"
  per_call etcdctl-start etcd_version | sed "s/$/ rep=$rep/"
done
