#!/usr/bin/env python3
"""Bulk-load N keys of 256 bytes into etcd through its JSON gateway, 100 puts per txn (etcd's
default --max-txn-ops is 128), over one keep-alive connection. Prints the elapsed seconds."""
import base64, http.client, json, random, sys, time

endpoint, count = sys.argv[1], int(sys.argv[2])
host, port = endpoint.split(":")
batch = 100
random.seed(7)
alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
values = ["".join(random.choice(alphabet) for _ in range(256)) for _ in range(1024)]
b64 = lambda s: base64.b64encode(s.encode()).decode()
bodies = []
for start in range(0, count, batch):
    ops = [{"requestPut": {"key": b64(f"/import/{n // 100}/param{n}"), "value": b64(values[n % 1024])}}
           for n in range(start, min(start + batch, count))]
    bodies.append(json.dumps({"success": ops}))
connection = http.client.HTTPConnection(host, int(port))
began = time.monotonic()
for body in bodies:
    connection.request("POST", "/v3/kv/txn", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        sys.exit(f"etcd answered {response.status}: {answer[:200]!r}")
print(f"{time.monotonic() - began:.3f}")
