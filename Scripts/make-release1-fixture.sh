#!/bin/sh
# Writes the release-1 upgrade fixture (Tests/ClusDBNodeTests/Fixtures/release1.tar.gz) with a
# `clusdb` binary built from release 1 — the last commit before `clusdb serve` ran on the Raft
# core (e8daeee): a data directory, a backup of it, and exports of the hive at both points.
# It was run once; UpgradeTests opens what it wrote with the current code (docs/FORMATS.md,
# "raft.state").
#
#   git worktree add /tmp/release1 e8daeee && (cd /tmp/release1 && swift build --product clusdb)
#   Scripts/make-release1-fixture.sh /tmp/release1/.build/debug/clusdb Tests/ClusDBNodeTests/Fixtures/release1.tar.gz
set -eu
clusdb=$1
out=$2
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

"$clusdb" serve --data-dir "$work/data" --name node1 --cluster-name upgrade --client-addr 127.0.0.1:7491 2>"$work/serve.log" &
server=$!
endpoint=127.0.0.1:7491
until "$clusdb" --cluster "$endpoint" status >/dev/null 2>&1; do sleep 0.1; done

c() { "$clusdb" --cluster "$endpoint" "$@"; }
c reg set 'Resources\Web' Port REG_DWORD 8080
c reg set 'Resources\Web' Owners REG_MULTI_SZ '["node1","node2"]'
c reg set 'Resources\Web' Secret REG_BINARY 00ff10
c reg set 'Resources\Web' Path REG_EXPAND_SZ '%SystemRoot%\web'
c reg set 'Resources\Db' Size REG_QWORD 18446744073709551615
c reg set 'Resources\Db' Name REG_SZ 'héllo wörld'
i=0
while [ $i -lt 50 ]; do c reg set "Load\\K$((i % 7))" "v$i" REG_DWORD $i; i=$((i + 1)); done
c reg rm 'Load\K6' --recursive
c reg export > "$work/at-backup.json"
c backup "$work/backup"
c reg set 'After\Backup' Written REG_DWORD 1
c reg export > "$work/final.json"
kill -TERM "$server"
wait "$server" || true
rm -f "$work/serve.log"
tar -C "$work" -czf "$out" data backup at-backup.json final.json
