#!/usr/bin/env python3
"""scikit-learn side of bench/featurize.sh: one featurization variant on the
corpus, timed inside the process, printed as one JSON line.

Variants:
  tfidf          TfidfVectorizer(stop_words='english')  (sklearn's C-regex tokenizer)
  tfidf-cbtm     c-BTM's vectorizer: same, with the #NUMBER tokenizer (a Python callable)
  hashing        HashingVectorizer(2**18, alternate_sign=False, norm=None) + TfidfTransformer(sublinear_tf=True), 1 process
  hashing-2proc  the same on two loky worker processes (as ../shared/anchors/featurize.py)
  lsa            tfidf (c-BTM) + TruncatedSVD(100, algorithm='randomized', n_iter=5) + Normalizer;
                 reports the SVD fit_transform time separately as svd_s
Usage: python3 featurize_sklearn.py --variant V [--corpus PATH]
"""
import argparse, gzip, json, re, resource, time

ap = argparse.ArgumentParser()
ap.add_argument("--variant", required=True)
ap.add_argument("--corpus", default="../shared/corpora/mixed-v1.jsonl.gz")
a = ap.parse_args()

t0 = time.perf_counter()
from sklearn.feature_extraction.text import TfidfVectorizer, HashingVectorizer, TfidfTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import Normalizer
with gzip.open(a.corpus, "rt", encoding="utf-8") as f:
    texts = [json.loads(l)["text"] for l in f]
nbytes = sum(len(t.encode("utf-8")) for t in texts)
t1 = time.perf_counter()

TOKEN = re.compile(r"(?u)\b\w\w+\b")
def cbtm_tokenizer(doc):
    return ["#NUMBER" if t[0].isdigit() else t for t in TOKEN.findall(doc)]

extra = {}
if a.variant == "tfidf":
    X = TfidfVectorizer(stop_words="english").fit_transform(texts)
elif a.variant == "tfidf-cbtm":
    X = TfidfVectorizer(stop_words="english", tokenizer=cbtm_tokenizer, token_pattern=None).fit_transform(texts)
elif a.variant == "hashing":
    C = HashingVectorizer(n_features=2**18, alternate_sign=False, norm=None).transform(texts)
    X = TfidfTransformer(sublinear_tf=True).fit_transform(C)
elif a.variant == "hashing-2proc":
    import scipy.sparse as sp
    from joblib import Parallel, delayed
    hv = lambda: HashingVectorizer(n_features=2**18, alternate_sign=False, norm=None)
    h = len(texts) // 2
    parts = Parallel(n_jobs=2, backend="loky")(delayed(hv().transform)(c) for c in (texts[:h], texts[h:]))
    X = TfidfTransformer(sublinear_tf=True).fit_transform(sp.vstack(parts).tocsr())
elif a.variant == "lsa":
    T = TfidfVectorizer(stop_words="english", tokenizer=cbtm_tokenizer, token_pattern=None).fit_transform(texts)
    s0 = time.perf_counter()
    X = Normalizer(copy=False).fit_transform(TruncatedSVD(100, algorithm="randomized", n_iter=5, random_state=0).fit_transform(T))
    extra["svd_s"] = round(time.perf_counter() - s0, 4)
else:
    raise SystemExit(f"unknown variant {a.variant}")
t2 = time.perf_counter()

out = {"variant": a.variant, "docs": len(texts), "bytes": nbytes, "load_s": round(t1 - t0, 4),
       "featurize_s": round(t2 - t1, 4), "shape": list(X.shape),
       "nnz": int(X.nnz) if hasattr(X, "nnz") else int(X.size),
       "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
out.update(extra)
print(json.dumps(out))
