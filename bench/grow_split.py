"""Split a JSON-lines corpus for bench/grow.sh (issue 15).

python3 grow_split.py CORPUS.jsonl.gz OUTDIR "srcA1,srcA2" "srcB1,srcB2" [LATER [MAXCHARS]]

Writes OUTDIR/a.jsonl, the first corpus: A's sources minus a LATER share
(default 0.3) of each, chosen by a hash of the id so the split is the same
on every run; and OUTDIR/b.jsonl, what arrives next: every document of B's
sources mixed with A's held-back share (A's later documents), in an order
fixed by a hash of the id. Each line keeps "id", "text" and "source". Prints
the counts. MAXCHARS (default 0: no limit) keeps each text's first
characters only, so that a small training budget covers A's domains.

python3 grow_split.py --filter HELDOUT.jsonl.gz A.jsonl OUT.jsonl keeps the
documents of HELDOUT whose source is not one of A.jsonl's.
"""
import collections
import gzip
import hashlib
import json
import sys

if sys.argv[1] == "--filter":
    # grow_split.py --filter HELDOUT.jsonl.gz A.jsonl OUT.jsonl: the documents
    # of HELDOUT whose source is none of A's (B's documents proper).
    held, a_file, out_file = sys.argv[2:5]
    with open(a_file) as f:
        a_sources = {json.loads(line)["source"] for line in f}
    opener = gzip.open if held.endswith(".gz") else open
    n = 0
    with opener(held, "rt") as f, open(out_file, "w") as w:
        for line in f:
            if json.loads(line).get("source") not in a_sources:
                w.write(line if line.endswith("\n") else line + "\n")
                n += 1
    print(f"  {n} held-out documents of B's sources -> {out_file}")
    sys.exit(0)

corpus, out = sys.argv[1], sys.argv[2]
a_src, b_src = set(sys.argv[3].split(",")), set(sys.argv[4].split(","))
later = float(sys.argv[5]) if len(sys.argv) > 5 else 0.3
maxchars = int(sys.argv[6]) if len(sys.argv) > 6 else 0
assert not a_src & b_src, "A and B share sources"


def h(s, salt=""):
    return int(hashlib.sha256((salt + s).encode()).hexdigest(), 16)


a, b = [], []
counts = collections.Counter()
with gzip.open(corpus, "rt") as f:
    for line in f:
        d = json.loads(line)
        src = d.get("source")
        text = d["text"][:maxchars] if maxchars else d["text"]
        rec = {"id": d["id"], "text": text, "source": src}
        if src in a_src:
            if h(d["id"]) % 1000 < later * 1000:
                b.append(rec)
                counts[("b", src + " (A later)")] += 1
            else:
                a.append(rec)
                counts[("a", src)] += 1
        elif src in b_src:
            b.append(rec)
            counts[("b", src)] += 1
b.sort(key=lambda r: h(r["id"], "order"))
for name, docs in (("a", a), ("b", b)):
    with open(f"{out}/{name}.jsonl", "w") as f:
        for r in docs:
            f.write(json.dumps(r) + "\n")
for (part, src), n in sorted(counts.items()):
    print(f"  {part} {src:22s} {n}")
