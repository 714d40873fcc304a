#!/usr/bin/env python3
"""Cuts testdata/mixed-small.jsonl.gz out of the shared benchmark corpus.

A stratified subset of about 2.5 MB of text: every source (brown, sotu,
moby-dick, spam-assassin, go-source) in proportion to its document count, at
least 20 documents each; within a source the first documents in file order,
those under 20 KB of text first (larger ones only when a source has too few
small ones). The lines are copied byte for byte (all original fields) in
their original order, and the gzip stream has no timestamp or name, so the
output is the same on every run.

Rerun from the repository root (python3 only, no packages):
    python3 testdata/make_small.py [../shared/corpora/mixed-v1.jsonl.gz] [testdata/mixed-small.jsonl.gz]
"""
import gzip
import json
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/corpora/mixed-v1.jsonl.gz"
DST = sys.argv[2] if len(sys.argv) > 2 else "testdata/mixed-small.jsonl.gz"
TARGET_TEXT_BYTES = 2_500_000
MIN_PER_SOURCE = 20
SMALL = 20_000  # bytes of text

lines = []  # (index, source, text bytes, raw line)
with gzip.open(SRC, "rb") as f:
    for i, raw in enumerate(f):
        if not raw.strip():
            continue
        doc = json.loads(raw)
        lines.append((i, doc["source"], len(doc["text"].encode("utf-8")), raw.rstrip(b"\n")))

sources = sorted({s for _, s, _, _ in lines})
# Per source: small documents first, then the rest, each in file order.
order = {s: [l for l in lines if l[1] == s and l[2] < SMALL] +
            [l for l in lines if l[1] == s and l[2] >= SMALL] for s in sources}
counts = {s: len(order[s]) for s in sources}


def pick(frac):
    chosen = []
    for s in sources:
        n = min(counts[s], max(MIN_PER_SOURCE, round(frac * counts[s])))
        chosen += order[s][:n]
    return chosen


def text_bytes(chosen):
    return sum(l[2] for l in chosen)


lo, hi = 0.0, 1.0  # bisect the fraction so the text is just under the target
for _ in range(50):
    mid = (lo + hi) / 2
    if text_bytes(pick(mid)) <= TARGET_TEXT_BYTES:
        lo = mid
    else:
        hi = mid
chosen = sorted(pick(lo))  # back to file order

with open(DST, "wb") as out:
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as z:
        for l in chosen:
            z.write(l[3] + b"\n")

per = {s: sum(1 for l in chosen if l[1] == s) for s in sources}
print(f"{DST}: {len(chosen)} documents, {text_bytes(chosen)} text bytes, fraction {lo:.4f}")
for s in sources:
    kb = sum(l[2] for l in chosen if l[1] == s) / 1000
    print(f"  {s:14s} {per[s]:4d} of {counts[s]:4d}  {kb:8.1f} KB text")
