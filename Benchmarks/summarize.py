#!/usr/bin/env python3
"""Summarizes Benchmarks/run.sh's RESULT and IMPORT lines: medians per target and load, and the
ClusDB/etcd ratios."""
import collections, statistics, sys

writes = collections.defaultdict(list)
imports = collections.defaultdict(list)
for line in open(sys.argv[1]):
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    if line.startswith("RESULT"):
        if fields.get("non2xx") != "0" or fields.get("sockerr") != "0":
            print(f"WARNING: errors in {line.strip()}")
        writes[(fields["target"], int(fields["conns"]))].append(
            (float(fields["rps"]), float(fields["p50_ms"]), float(fields["p99_ms"])))
    elif line.startswith("IMPORT"):
        imports[fields["target"]].append(float(fields["seconds"]))

print("| clients | etcd writes/s | ClusDB writes/s | ratio | etcd p50 / p99 ms | ClusDB p50 / p99 ms |")
print("|---|---|---|---|---|---|")
for conns in sorted({c for _, c in writes}):
    def median(target, column):
        return statistics.median(r[column] for r in writes[(target, conns)])
    e, c = median("etcd", 0), median("clusdb", 0)
    print(f"| {conns} | {e:,.0f} | {c:,.0f} | {c / e:.2f} | {median('etcd', 1):.3f} / {median('etcd', 2):.3f} "
          f"| {median('clusdb', 1):.3f} / {median('clusdb', 2):.3f} |")
if any(target == "clusdb-b" for target, _ in writes):
    print()
    print("| clients | clusdb-b writes/s | ratio to etcd | ClusDB / clusdb-b | clusdb-b p50 / p99 ms |")
    print("|---|---|---|---|---|")
    for conns in sorted({c for _, c in writes}):
        def median_b(target, column):
            return statistics.median(r[column] for r in writes[(target, conns)])
        e, c, b = median_b("etcd", 0), median_b("clusdb", 0), median_b("clusdb-b", 0)
        print(f"| {conns} | {b:,.0f} | {b / e:.2f} | {c / b:.2f} | {median_b('clusdb-b', 1):.3f} / {median_b('clusdb-b', 2):.3f} |")
if imports:
    e, c = statistics.median(imports["etcd"]), statistics.median(imports["clusdb"])
    print()
    print("| import | etcd s | ClusDB s | ratio (etcd / ClusDB) |")
    print("|---|---|---|---|")
    print(f"| 100,000 values | {e:.2f} | {c:.2f} | {e / c:.2f} |")
