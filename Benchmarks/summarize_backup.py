#!/usr/bin/env python3
"""Medians and ratios from a Benchmarks/backup.sh log: backup, verify and restore times and sizes
per system and size, disk-speed ratios, and write latency with and without a backup running."""
import re, statistics, sys

rows = [dict(re.findall(r"(\w+)=(\S+)", line)) | {"kind": line.split()[0]}
        for line in open(sys.argv[1]) if re.match(r"(BACKUP|VERIFY|RESTORE|RESULT) ", line)]
disk = re.search(r"DISK sequential write: .*, ([0-9.]+) ([MG])B/s", open(sys.argv[1]).read())
disk_mb = float(disk.group(1)) * (1000 if disk.group(2) == "G" else 1) if disk else None

def median(kind, target, values, field="seconds"):
    xs = [float(r[field]) for r in rows if r["kind"] == kind and r.get("target") == target and r.get("values") == values]
    return statistics.median(xs) if xs else None

for values in sorted({r["values"] for r in rows if "values" in r}, key=int):
    print(f"## {int(values):,} values")
    print("| | ClusDB streamed | ClusDB on owner | etcd | etcd / ClusDB streamed |")
    print("|---|---|---|---|---|")
    for kind in ["BACKUP", "VERIFY", "RESTORE"]:
        if kind == "BACKUP":
            s, o, e = (median(kind, t, values) for t in ["clusdb-streamed", "clusdb-owner", "etcd"])
        else:
            s, o, e = median(kind, "clusdb", values), None, median(kind, "etcd", values)
        fmt = lambda x: "—" if x is None else f"{x:.3f} s"
        print(f"| {kind.lower()} time (median) | {fmt(s)} | {fmt(o)} | {fmt(e)} | {e / s:.2f}× |")
    sb, eb = median("BACKUP", "clusdb-streamed", values, "bytes"), median("BACKUP", "etcd", values, "bytes")
    print(f"| backup size | {sb / 1e6:.1f} MB | | {eb / 1e6:.1f} MB | {eb / sb:.2f}× |")
    if disk_mb:
        for t in ["clusdb-streamed", "clusdb-owner", "etcd"]:
            rate = sb / 1e6 / median("BACKUP", t, values) if t != "etcd" else eb / 1e6 / median("BACKUP", t, values)
            print(f"| {t} backup rate | {rate:.0f} MB/s | disk {disk_mb:.0f} MB/s | disk / rate {disk_mb / rate:.2f}× | |")
    for target in ["clusdb", "etcd"]:
        for phase in ["quiet", "during-backup"]:
            r = next((r for r in rows if r["kind"] == "RESULT" and r.get("target") == target and r.get("values") == values and r.get("phase") == phase), None)
            if r:
                print(f"| {target} writes, {phase} | {r['rps']}/s | p50 {r['p50_ms']} ms | p99 {r['p99_ms']} ms | max {r['max_ms']} ms |")
    print()
