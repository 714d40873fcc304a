"""Summarize bench/grow.sh (issue 15 goals a–d).

python3 grow_summary.py WORKDIR

For every WORKDIR/split*/seed*/ it reads grown.json, frozen.json (pipeline
run --json summaries), refit_eval_{a,b}.json and {grown,frozen,refit}_eval_bnew.json
(pipeline eval --json), and prints per split and seed:
  (a) placement: the share of B's new-source documents in new domains, and of
      A's later documents (sources of A) in old domains;
  (b) B's held-out bits per byte (the held-out documents of B's sources):
      grown / frozen and grown / refit, for each mixture (top1, top2, all)
      and for the best mixture of each arm; also on the whole B stream's
      held-out documents, which hold A's later documents too;
  (c) A's held-out bits per byte after growth over before, per mixture;
  (d) seconds and documents from B's first document to the first document
      in a new domain;
then the medians over seeds per split and the goals.
"""
import glob
import json
import os
import statistics
import sys

work = sys.argv[1]
MIX = ("top1", "top2", "all")


def load(p):
    with open(p) as f:
        return json.load(f)


rows = {}
for r in sorted(glob.glob(os.path.join(work, "split*", "seed*"))):
    split, seed = r.split(os.sep)[-2], r.split(os.sep)[-1]
    try:
        g, fz = load(f"{r}/grown.json"), load(f"{r}/frozen.json")
        ra, rb = load(f"{r}/refit_eval_a.json"), load(f"{r}/refit_eval_b.json")
        nb = {arm: load(f"{r}/{arm}_eval_bnew.json")["mixture_bpb"] for arm in ("grown", "frozen", "refit")}
    except (OSError, ValueError) as e:
        print(f"{split} {seed}: incomplete ({e})")
        continue
    t = g["then"]
    new_in = new_tot = old_in = old_tot = 0
    a_sources = set()  # A's sources: those of the split's a.jsonl
    with open(os.path.join(work, split, "a.jsonl")) as f:
        for line in f:
            a_sources.add(json.loads(line)["source"])
    for src, p in t["sources"].items():
        tot = p["new"] + p["old"] + p["pending"]
        if src in a_sources:
            old_in += p["old"]
            old_tot += tot
        else:
            new_in += p["new"]
            new_tot += tot
    sg, sf, srf = t["eval_b"]["mixture_bpb"], fz["then"]["eval_b"]["mixture_bpb"], rb["mixture_bpb"]  # the B stream
    bg, bf, brf = nb["grown"], nb["frozen"], nb["refit"]  # B's sources
    before, after = g["eval"]["mixture_bpb"], t["eval_a"]["mixture_bpb"]
    row = {
        "a_new": new_in / max(new_tot, 1), "a_old": old_in / max(old_tot, 1),
        "n_new": len(t["new_domains"]), "growths": t["growths"],
        "b_frozen": {m: bg[m] / bf[m] for m in MIX}, "b_refit": {m: bg[m] / brf[m] for m in MIX},
        "b_best_frozen": min(bg.values()) / min(bf.values()), "b_best_refit": min(bg.values()) / min(brf.values()),
        "s_frozen": {m: sg[m] / sf[m] for m in MIX}, "s_refit": {m: sg[m] / srf[m] for m in MIX},
        "c": {m: after[m] / before[m] for m in MIX},
        "d_s": t["first_new_seconds"], "d_docs": t["first_new_docs"],
        "bpb": {"grown_stream": sg, "frozen_stream": sf, "refit_stream": srf, "grown_b": bg, "frozen_b": bf, "refit_b": brf, "a_before": before, "a_after": after,
                "refit_a": ra["mixture_bpb"], "frozen_a": fz["then"]["eval_a"]["mixture_bpb"]},
    }
    rows.setdefault(split, []).append((seed, row))
    print(f"{split} {seed}: {row['n_new']} new domains in {row['growths']} growths")
    print(f"  (a) B's new sources in new domains {100*row['a_new']:.1f}% ({new_in}/{new_tot}); A's later documents in old domains {100*row['a_old']:.1f}% ({old_in}/{old_tot})")
    print("  (b) B held-out bpb grown/frozen " + "  ".join(f"{m} {row['b_frozen'][m]:.3f}" for m in MIX) + f"  best {row['b_best_frozen']:.3f}")
    print("      B held-out bpb grown/refit  " + "  ".join(f"{m} {row['b_refit'][m]:.3f}" for m in MIX) + f"  best {row['b_best_refit']:.3f}")
    print("      B stream held-out (with A's later) grown/frozen " + "  ".join(f"{m} {row['s_frozen'][m]:.3f}" for m in MIX)
          + "; grown/refit " + "  ".join(f"{m} {row['s_refit'][m]:.3f}" for m in MIX))
    print("      bpb on B: grown " + " ".join(f"{bg[m]:.3f}" for m in MIX) + " | frozen " + " ".join(f"{bf[m]:.3f}" for m in MIX) + " | refit " + " ".join(f"{brf[m]:.3f}" for m in MIX))
    print("  (c) A held-out bpb after/before  " + "  ".join(f"{m} {row['c'][m]:.4f}" for m in MIX))
    print(f"  (d) first document in a new domain after {row['d_s']:.1f} s, {row['d_docs']} documents of B")
    inits = {"nearest": sg}  # the grown arm runs the default, --init-new nearest; B stream held-out
    for p in sorted(glob.glob(f"{r}/grown-*.json")):
        try:
            inits[p.rsplit("grown-", 1)[1][:-5]] = load(p)["then"]["eval_b"]["mixture_bpb"]
        except (OSError, ValueError, KeyError):
            pass
    if len(inits) > 1:
        print("  new-expert init, B stream held-out bpb (top1 top2 all): " + "; ".join(f"{k} " + " ".join(f"{v[m]:.3f}" for m in MIX) for k, v in inits.items()))
    row["inits"] = {k: v["top1"] for k, v in inits.items()}

print()
print("medians over seeds (goals: a ≥ 90% / ≥ 98%; b ≤ 0.90 vs frozen, ≤ 1.02 vs refit; c ≤ 1.005)")
for split, rs in sorted(rows.items()):
    med = lambda f: statistics.median(f(r) for _, r in rs)
    print(f"{split} ({len(rs)} seeds): (a) {100*med(lambda r: r['a_new']):.1f}% new, {100*med(lambda r: r['a_old']):.1f}% old;"
          f" (b) top1 vs frozen {med(lambda r: r['b_frozen']['top1']):.3f}, vs refit {med(lambda r: r['b_refit']['top1']):.3f};"
          f" best vs frozen {med(lambda r: r['b_best_frozen']):.3f}, vs refit {med(lambda r: r['b_best_refit']):.3f};"
          f" B stream top1 vs frozen {med(lambda r: r['s_frozen']['top1']):.3f}, vs refit {med(lambda r: r['s_refit']['top1']):.3f};"
          f" (c) top1 {med(lambda r: r['c']['top1']):.4f}; (d) {med(lambda r: r['d_s']):.1f} s, {med(lambda r: r['d_docs']):.0f} docs")
    names = sorted({k for _, r in rs for k in r["inits"]})
    if len(names) > 1:
        print("    new-expert init, B top1 bpb: " + ", ".join(f"{k} {statistics.median(r['inits'][k] for _, r in rs if k in r['inits']):.3f}" for k in names))
