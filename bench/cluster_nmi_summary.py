#!/usr/bin/env python3
"""Summary of bench/cluster_nmi.sh logs: per featurizer and k, the median NMI against `source`
and `label` of each side, the median k-means objective, and the bootstrap probability that our
median NMI (source) is at least scikit-learn's.
Usage: python3 bench/cluster_nmi_summary.py LOG [LOG...]"""
import collections, json, random, statistics as st, sys

runs = collections.defaultdict(dict)  # (feat, k, side) -> seed -> (nmi_source, nmi_label, inertia)
for path in sys.argv[1:]:
    for line in open(path):
        side, feat, k, seed, rest = (line.split(None, 4) + [""] * 5)[:5]
        if side not in ("ours", "sklearn") or not rest.startswith("{"):
            continue
        dec = json.JSONDecoder()
        first, end = dec.raw_decode(rest)
        if side == "sklearn":
            v = (first["nmi_source"], first["nmi_label"], first.get("inertia"))
        else:
            ev, _ = dec.raw_decode(rest[end:].lstrip())
            v = (ev["nmi"]["source"], ev["nmi"]["label"], first.get("inertia"))
        runs[(feat, int(k), side)][int(seed)] = v


def p_at_least(a, b, n=4000):
    rnd = random.Random(0)
    hits = sum(st.median(rnd.choices(a, k=len(a))) >= st.median(rnd.choices(b, k=len(b))) for _ in range(n))
    return hits / n


print("| feat | k | seeds ours / sklearn | NMI source, ours / sklearn | P(ours ≥) | NMI label, ours / sklearn | inertia, ours / sklearn |")
print("|---|---|---|---|---|---|---|")
for feat, k in sorted({(f, k) for f, k, _ in runs}):
    o, s = runs.get((feat, k, "ours"), {}), runs.get((feat, k, "sklearn"), {})
    if not o or not s:
        continue
    col = lambda r, i: [v[i] for v in r.values() if v[i] is not None]
    med = lambda xs: f"{st.median(xs):.3f}" if xs else "—"
    print(f"| {feat} | {k} | {len(o)} / {len(s)} | {med(col(o, 0))} / {med(col(s, 0))} | "
          f"{p_at_least(col(o, 0), col(s, 0)):.2f} | {med(col(o, 1))} / {med(col(s, 1))} | "
          f"{med(col(o, 2))} / {med(col(s, 2))} |")
