"""Split a JSON-lines corpus by source for bench/novelty.sh (issue 15).

python3 novelty_split.py CORPUS.jsonl.gz OUTDIR "srcA1,srcA2" "srcB1,srcB2"

Writes OUTDIR/a_train.jsonl (A's sources, 80% of their documents),
OUTDIR/a_held.jsonl (the other 20%, chosen by a hash of the id, so the
split is the same on every run) and OUTDIR/b.jsonl (every document of B's
sources). Prints the counts per source.
"""
import collections
import gzip
import hashlib
import json
import sys

corpus, out, a_src, b_src = sys.argv[1], sys.argv[2], set(sys.argv[3].split(",")), set(sys.argv[4].split(","))
assert not a_src & b_src, "A and B share sources"
files = {k: open(f"{out}/{k}.jsonl", "w") for k in ("a_train", "a_held", "b")}
counts = collections.Counter()
with gzip.open(corpus, "rt") as f:
    for line in f:
        d = json.loads(line)
        src = d.get("source")
        if src in a_src:
            held = int(hashlib.sha256(d["id"].encode()).hexdigest(), 16) % 5 == 0
            part = "a_held" if held else "a_train"
        elif src in b_src:
            part = "b"
        else:
            continue
        counts[(part, src)] += 1
        files[part].write(json.dumps({"id": d["id"], "text": d["text"], "meta": {"source": src}}) + "\n")
for f in files.values():
    f.close()
for (part, src), n in sorted(counts.items()):
    print(f"  {part:8s} {src:14s} {n}")
