#!/usr/bin/python3
"""Golden files of the tf-idf featurizers (stages/embed), made with scikit-learn.

Rerun from the repository root with Debian's Python and scikit-learn
(apt-get install -y python3-sklearn python3-threadpoolctl):

    /usr/bin/python3 scripts/golden_tfidf.py

It is deterministic and writes testdata/embed/:
  tokens.json.gz          c-BTM's tokenizer on hand-picked and random strings
                          (Unicode corner cases), with sklearn's murmurhash3_32
                          of each token: TestTokenizeGolden, TestMurmur3Golden
  argsort.json.gz         numpy's default (introsort) argsort of int64 arrays
                          with many ties, which decides sklearn's max_features
                          cut: TestNumpyArgsortGolden
  tfidf_default.json.gz   c-BTM's TfidfVectorizer on testdata/mixed-small.jsonl.gz
  tfidf_sublinear.json.gz sublinear_tf=True, min_df=2, max_df=0.9, max_features=5000
  hashing_sublinear.json.gz
                          HashingVectorizer(n_features=2**18, alternate_sign=False,
                          norm=None) + TfidfTransformer(sublinear_tf=True)
Each tf-idf file holds the vocabulary (or the idf of the hashed columns that
occur), the idf, the CSR of the first HEAD documents, and for every document
its nnz, value sum and a dot product with fixed column weights
((j*2654435761) % 1000 / 1000), so that all rows are checked but the files
stay small. TestTfidfGolden and TestHashingGolden compare against them.

Made with Python 3.11.2, numpy 1.24.2, scikit-learn 1.2.1 (Debian 12). The
max_features tie-break is numpy's argsort, which later numpy versions on
AVX-512 machines do differently; regenerate the goldens only with these
versions or check that tfidf_sublinear's vocabulary did not change.
"""
import gzip, json, os, random, re, sys

import numpy as np
import sklearn
from sklearn.feature_extraction.text import (
    ENGLISH_STOP_WORDS,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.utils import murmurhash3_32

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "testdata", "embed")
HEAD = 60


# c-BTM's number-normalizing vectorizers (kernelmachine/cbtm): sklearn's default
# token pattern on the lowercased text, then "#NUMBER" for tokens that start
# with a digit; stop words are removed by sklearn after the tokenizer.
def number_normalizer(tokens):
    return ("#NUMBER" if token[0].isdigit() else token for token in tokens)


class NumberNormalizingVectorizer(TfidfVectorizer):
    def build_tokenizer(self):
        tokenize = super().build_tokenizer()
        return lambda doc: list(number_normalizer(tokenize(doc)))


class NumberNormalizingHashingVectorizer(HashingVectorizer):
    def build_tokenizer(self):
        tokenize = super().build_tokenizer()
        return lambda doc: list(number_normalizer(tokenize(doc)))


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    p = os.path.join(OUT, name)
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with open(p, "wb") as f:  # mtime 0: the same bytes on every run
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(raw)
    print(f"wrote {os.path.relpath(p, ROOT)} ({os.path.getsize(p)} bytes)", file=sys.stderr)


def f8(x):
    return float(f"{x:.9g}")


def col_weights(n):
    j = np.arange(n, dtype=np.int64)
    return ((j * 2654435761) % 1000) / 1000.0


def csr_summary(X, head=HEAD):
    X = X.tocsr()
    X.sort_indices()
    w = col_weights(X.shape[1])
    nnz, sums, dots = [], [], []
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        d = X.data[lo:hi]
        nnz.append(int(hi - lo))
        sums.append(f8(float(d.sum())))
        dots.append(f8(float((d * w[X.indices[lo:hi]]).sum())))
    h = min(head, X.shape[0])
    end = X.indptr[h]
    return {
        "rows": int(X.shape[0]),
        "cols": int(X.shape[1]),
        "head": h,
        "indptr": [int(x) for x in X.indptr[: h + 1]],
        "indices": [int(x) for x in X.indices[:end]],
        "data": [f8(float(x)) for x in X.data[:end]],
        "row_nnz": nnz,
        "row_sum": sums,
        "row_dot": dots,
    }


def golden_tfidf(texts):
    configs = [
        ("tfidf_default.json.gz", dict(), dict(min_df=1, max_df=1.0, max_features=0, sublinear_tf=False)),
        (
            "tfidf_sublinear.json.gz",
            dict(sublinear_tf=True, min_df=2, max_df=0.9, max_features=5000),
            dict(min_df=2, max_df=0.9, max_features=5000, sublinear_tf=True),
        ),
    ]
    for name, kw, cfg in configs:
        v = NumberNormalizingVectorizer(stop_words="english", **kw)
        X = v.fit_transform(texts)
        vocab = v.get_feature_names_out().tolist()
        assert vocab == sorted(vocab)
        obj = {"config": cfg, "vocabulary": vocab, "idf": [f8(x) for x in v.idf_]}
        obj.update(csr_summary(X))
        write(name, obj)

    hv = NumberNormalizingHashingVectorizer(
        n_features=2**18, alternate_sign=False, norm=None, stop_words="english"
    )
    C = hv.transform(texts)
    tt = TfidfTransformer(sublinear_tf=True)
    X = tt.fit_transform(C)
    df = np.bincount(C.indices, minlength=C.shape[1])
    seen = np.nonzero(df)[0]
    obj = {
        "config": dict(features=2**18, alternate_sign=False, sublinear_tf=True),
        "idf_index": [int(i) for i in seen],
        "idf_value": [f8(tt.idf_[i]) for i in seen],
        "idf_default": f8(float(np.log((1 + len(texts)) / 1) + 1)),
    }
    assert all(abs(tt.idf_[i] - obj["idf_default"]) < 1e-6 for i in range(0, 2**18, 997) if df[i] == 0)
    obj.update(csr_summary(X))
    write("hashing_sublinear.json.gz", obj)


def tokenize(text):
    v = NumberNormalizingVectorizer(stop_words="english")
    return v.build_analyzer()(text)


HAND = [
    "",
    "a",
    "Hello, World!",
    "The quick brown fox jumps over the lazy dog",
    "Café naïve coöperate résumé ÉCOLE",
    "nai\u0308ve (combining diaeresis splits the word)",
    "2nd place, x1 wins; 1st 3rd 42 4.5 v2.0 x86_64 _private __init__ a_b",
    "don't won't isn't it's I'm we'd",
    "北京大学 東京 ソフトウェア 한국어 ไทย हिन्दी العربية",
    "ΣΟΦΟΣ ΟΔΥΣΣΕΥΣ σοφός Σ ΑΣ ΑΣ' ΑΣ'Α Α.Σ1 ΑΣ\u0301 ΑΣ\u0301Β",
    "İstanbul İİ KELVIN \u212a\u212a Å\u212b ǅungla Ǆǅǆ",
    "² ²abc ½ ½x ①② ٣٤ ٣abc ߁ ０１２ ０abc",
    "𝐀𝐁𝐂 𐐀𐐁 𝟏𝟐 emoji 😀😀 a😀b",
    "tab\tnew\nline\r\ncr \u00a0nbsp \u2028ls",
    "UPPER lower MiXeD",
    "the and of to in is was for on with he it as at by",
    "http://example.com/path?q=1&r=two#frag user@example.org",
    "func (t *Tokenizer) Tokens(text string, fn func(tok []byte)) { return }",
    "ǈ ǋ ǲ ᾈ ᾼ ῌ Ⅻ ⅻ ⓐⓑ Ⓐⓑ",
    "ﬁnance ﬂow ß ẞ",
    "\u0300\u0301 ab\u200dcd ab\u200ccd a\u00adb ab\u00b7cd",
]


def random_strings(n, seed=20240611):
    rnd = random.Random(seed)
    pools = [
        "abcXYZ019_ '.,-:;!?",
        "ÀÉÎÕÜàéîõüßÿ",
        "ΑΒΓΣσςαβγ ",
        "İıIiK\u212a",
        "\u0300\u0301\u0308\u0345\u200d\u00ad",
        "²³¹½①٣߁０９",
        "北京東ソ한",
        "𝐀𐐀𝟏😀𞤀𞤢",
        "ǅǈǋǲᾈ",
    ]
    out = []
    for _ in range(n):
        k = rnd.randint(1, 40)
        s = []
        for _ in range(k):
            if rnd.random() < 0.1:
                c = rnd.randint(0x80, 0x10FFFF)
                if 0xD800 <= c <= 0xDFFF:
                    c = 0x41
                s.append(chr(c))
            else:
                s.append(rnd.choice(rnd.choice(pools)))
        out.append("".join(s))
    return out


def golden_tokens():
    cases = []
    for t in HAND + random_strings(1500):
        toks = tokenize(t)
        cases.append({"text": t, "tokens": toks, "hashes": [murmurhash3_32(x, seed=0) for x in toks]})
    write("tokens.json.gz", {"stop_words": sorted(ENGLISH_STOP_WORDS), "cases": cases})


def golden_argsort():
    rng = np.random.default_rng(7)
    cases = []
    for n in [1, 2, 15, 16, 17, 18, 33, 100, 1000, 5000]:
        for k in [1, 3, 50]:
            v = -rng.integers(1, k + 1, size=n).astype(np.int64)
            cases.append({"v": [int(x) for x in v], "argsort": [int(x) for x in v.argsort()]})
    write("argsort.json.gz", {"numpy": np.__version__, "cases": cases})


def main():
    print(f"python {sys.version.split()[0]} numpy {np.__version__} sklearn {sklearn.__version__}", file=sys.stderr)
    with gzip.open(os.path.join(ROOT, "testdata", "mixed-small.jsonl.gz"), "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    golden_tokens()
    golden_argsort()
    golden_tfidf(texts)


if __name__ == "__main__":
    main()
