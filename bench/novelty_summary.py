"""Summarize bench/novelty.sh's `cluster assign` outputs for one split.

python3 novelty_summary.py DIR

Reads DIR/{a_held,b}.q{0.95,0.99,0.999}.jsonl (argmin routing, one rule
each) and prints, for A's held-out documents and for B: the median and 10th
percentile of the squared distance to the nearest centroid, the novel
fraction at each rule, and the share of the documents in the largest domain
under argmin routing; then each domain's fit-time distances (DIR/domains.json,
`pipeline domains --json`).
"""
import collections
import json
import statistics
import sys

d = sys.argv[1]
rules = ["0.95", "0.99", "0.999"]


def load(name, q):
    with open(f"{d}/{name}.q{q}.jsonl") as f:
        return [json.loads(l) for l in f]


print(f"  {'set':7s} {'docs':>5s} {'median':>7s} {'p10':>6s} " + " ".join(f"{'novel@' + q:>10s}" for q in rules) + f" {'top domain':>11s}")
for name in ("a_held", "b"):
    rows = load(name, "0.99")
    dist = sorted(r["nearest_distance"] for r in rows)
    p10 = statistics.quantiles(dist, n=10, method="inclusive")[0]
    fr = []
    for q in rules:
        rs = load(name, q)
        fr.append(sum(r["novel"] for r in rs) / len(rs))
    top = collections.Counter(r["nearest"] for r in rows).most_common(1)[0]
    print(f"  {name:7s} {len(rows):5d} {statistics.median(dist):7.3f} {p10:6.3f} " + " ".join(f"{x:10.1%}" for x in fr)
          + f" {top[1] / len(rows):10.0%} (domain {top[0]})")
with open(f"{d}/domains.json") as f:
    doms = json.load(f)["domains"]
print("  fit-time squared distances per domain (fit documents nearest it): " + "; ".join(
    f"{x['id']}: n {x['distances']['count']}, p50 {x['distances']['quantiles'][0]:.3f}, p99 {x['distances']['quantiles'][5]:.3f}, max {x['distances']['max']:.3f}"
    for x in doms))
