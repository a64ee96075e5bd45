#!/usr/bin/env python3
"""Writes a ClusDB export file with N REG_SZ values of 256 bytes: keys import\\<n // 100>, values
param<n> (the same names and data etcd_bulk_load.py writes)."""
import json, random, sys

path, count = sys.argv[1], int(sys.argv[2])
random.seed(7)
alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
values = ["".join(random.choice(alphabet) for _ in range(256)) for _ in range(1024)]
keys = {}
for n in range(count):
    key = keys.setdefault(str(n // 100), {"keys": {}, "values": {}})
    key["values"][f"param{n}"] = {"type": "REG_SZ", "data": values[n % 1024]}
with open(path, "w") as out:
    json.dump({"keys": {"import": {"keys": keys, "values": {}}}, "values": {}}, out)
