#!/usr/bin/env python3
"""Writes the LZ4_RAW fixtures with kB-sized texts, which the Go test
TestInteropParquetLZ4Large (schemas/interop_test.go) reads back exactly.

pyarrow's compression="lz4" writes LZ4_RAW. parquet-go v0.32.0 read every
text of such a file as "" (or failed with "unexpected EOF") once a page
compressed less than 3:1, which real text does; the older fixture
pyarrow-lz4.parquet, with texts of 6-60 bytes, did not show it.

The texts are consecutive documents of testdata/mixed-small.jsonl.gz joined
and cut to 2-8 kB (deterministic). Two files: the defaults (dictionary
encoding, data page v1), and plain encoding with data page v2; both with
small pages (several pages per column chunk) and two row groups.
pyarrow-lz4-large.sha256 lists each row's id, UTF-8 length and sha256.

Rerun (needs pyarrow; the files are committed, so tests do not):
    python3 -m venv /tmp/pa && /tmp/pa/bin/pip install pyarrow
    cd testdata/schemas/interop && /tmp/pa/bin/python make_lz4_large.py
"""
import gzip
import hashlib
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq

with gzip.open("../../mixed-small.jsonl.gz", "rt", encoding="utf-8") as f:
    docs = [json.loads(line)["text"] for line in f]

rnd = random.Random(16)
ids, texts = [], []
for i in range(24):
    n = rnd.randint(2000, 8000)
    s, j = "", i * 11
    while len(s) < n:
        s += docs[j % len(docs)] + "\n"
        j += 1
    ids.append(f"lz4-{i}")
    texts.append(s[:n])

table = pa.table({"id": ids, "text": texts})
common = dict(compression="lz4", row_group_size=12, data_page_size=16 << 10, write_batch_size=2)
pq.write_table(table, "pyarrow-lz4-large.parquet", **common)
pq.write_table(table, "pyarrow-lz4-large-plain-v2.parquet", use_dictionary=False,
               data_page_version="2.0", **common)
with open("pyarrow-lz4-large.sha256", "w") as f:
    for i, t in zip(ids, texts):
        b = t.encode("utf-8")
        f.write(f"{i} {len(b)} {hashlib.sha256(b).hexdigest()}\n")
