#!/usr/bin/env python3
"""scikit-learn side of bench/cluster.sh: featurize the corpus like c-BTM (tf-idf with the
#NUMBER tokenizer and English stop words; optionally LSA: TruncatedSVD(100) + L2), then
KMeans(k, n_init, random_state=seed); print one JSON line with the whole-process time, the
fit time, NMI/ARI against `source` and `label`, and the cluster sizes.
With --seeds FROM:TO (quality runs, bench/cluster_nmi.sh) it featurizes once (LSA: once per seed,
TruncatedSVD seeded like the single runs) and prints, for each seed, a line
"sklearn FEAT K SEED {json}" (the JSON's times are then that seed's alone).
Usage: python3 cluster_sklearn.py --k K (--seed S | --seeds FROM:TO) [--n-init 1] [--lsa] [--corpus PATH]"""
import argparse, gzip, json, re, time
t0 = time.perf_counter()
ap = argparse.ArgumentParser()
ap.add_argument("--k", type=int, required=True)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--seeds", default="", help="FROM:TO, inclusive: one line per seed")
ap.add_argument("--n-init", type=int, default=1)
ap.add_argument("--lsa", action="store_true")
ap.add_argument("--corpus", default="../shared/corpora/mixed-v1.jsonl.gz")
a = ap.parse_args()
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import Normalizer
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score as nmi, adjusted_rand_score as ari
with gzip.open(a.corpus, "rt", encoding="utf-8") as f:
    docs = [json.loads(l) for l in f]
texts = [d["text"] for d in docs]
TOKEN = re.compile(r"(?u)\b\w\w+\b")
def tok(doc):
    return ["#NUMBER" if t[0].isdigit() else t for t in TOKEN.findall(doc)]
t1 = time.perf_counter()
T = TfidfVectorizer(stop_words="english", tokenizer=tok, token_pattern=None).fit_transform(texts)
seeds = [a.seed]
if a.seeds:
    lo, hi = (int(v) for v in a.seeds.split(":"))
    seeds = list(range(lo, hi + 1))
for seed in seeds:
    X = T
    if a.lsa:
      X = Normalizer(copy=False).fit_transform(TruncatedSVD(100, algorithm="randomized", n_iter=5, random_state=seed).fit_transform(T))
    t2 = time.perf_counter()
    km = KMeans(n_clusters=a.k, n_init=a.n_init, random_state=seed).fit(X)
    t3 = time.perf_counter()
    p = km.labels_
    sizes = np.bincount(p, minlength=a.k).tolist()
    prefix = f"sklearn {'lsa' if a.lsa else 'tfidf'} {a.k} {seed} " if a.seeds else ""
    print(prefix + json.dumps({"k": a.k, "seed": seed, "n_init": a.n_init, "lsa": a.lsa,
    "featurize_s": round(t2 - t1, 3), "kmeans_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3),
    "nmi_source": nmi([d["source"] for d in docs], p), "nmi_label": nmi([d["label"] for d in docs], p),
    "ari_source": ari([d["source"] for d in docs], p), "ari_label": ari([d["label"] for d in docs], p),
    "inertia": float(km.inertia_), "n_iter": int(km.n_iter_), "sizes": sizes, "max_min": max(sizes) / max(1, min(sizes)), "max_mean": max(sizes) / (len(p) / a.k)}), flush=True)
    t1 = t3
