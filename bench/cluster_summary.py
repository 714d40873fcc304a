"""Summarize a bench/cluster.sh log into the BENCHMARKS.md §5 table: per method, featurizer
and k, medians over seeds of wall time, NMI (with min..max), ARI and balance, and the
speed ratio scikit-learn wall / ours wall.
Usage: python3 bench/cluster_summary.py LOG"""
import json, re, statistics, sys
from collections import defaultdict

rows = defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r"(sklearn|ours-balanced=(?:true|false)) (\w+) (\d+) (\d+) (.*)", line.strip())
    if not m:
        continue
    method, feat, k, seed, rest = m.groups()
    if method == "sklearn":
        r = json.loads(rest)
        rows[(feat, int(k), "sklearn")].append(dict(wall=r["total_s"], nmi=r["nmi_source"], nmil=r["nmi_label"],
                                                    ari=r["ari_source"], maxmin=r["max_min"], fitmm=r["max_min"], maxmean=r["max_mean"]))
    else:
        wall = float(re.search(r"wall=([\d.]+)", rest).group(1))
        parts = rest.split(" ", 1)[1]
        dec = json.JSONDecoder()
        fit, i = dec.raw_decode(parts)
        ev, _ = dec.raw_decode(parts[i:].strip())
        name = "ours-bal" if method.endswith("true") else "ours-unbal"
        rows[(feat, int(k), name)].append(dict(wall=wall, nmi=ev["nmi"]["source"], nmil=ev["nmi"]["label"], ari=ev["ari"]["source"],
                                               maxmin=ev["balance_max_min"], fitmm=fit["balance_max_min"], maxmean=ev["balance_max_mean"]))

med = lambda xs: statistics.median(xs)
print("| method | feat | k | runs | wall s (median) | ×sklearn speed | NMI source median [min..max] | NMI label | ARI source | fit max/min | routed max/min | routed max/mean |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for feat in ("lsa", "tfidf"):
    for k in (5, 8, 16):
        sk = rows.get((feat, k, "sklearn"))
        for name in ("ours-bal", "ours-unbal", "sklearn"):
            r = rows.get((feat, k, name))
            if not r:
                continue
            w = med([x["wall"] for x in r])
            sp = f"{med([x['wall'] for x in sk]) / w:.1f}×" if sk and name != "sklearn" else ""
            nm = [x["nmi"] for x in r]
            print(f"| {name} | {feat} | {k} | {len(r)} | {w:.2f} | {sp} | {med(nm):.3f} [{min(nm):.2f}..{max(nm):.2f}] | "
                  f"{med([x['nmil'] for x in r]):.3f} | {med([x['ari'] for x in r]):.3f} | {med([x['fitmm'] for x in r]):.3f} | "
                  f"{med([x['maxmin'] for x in r]):.2f} | {med([x['maxmean'] for x in r]):.2f} |")
