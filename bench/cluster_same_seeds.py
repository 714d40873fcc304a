#!/usr/bin/env python3
"""Issue 4: from the same k-means++ seeds, do we reach scikit-learn's partition?

For each k in {5, 8, 16} and seed S in FROM..TO: run ours (`pipeline cluster fit --restarts 1
--balanced=false --seed S`, which logs its k-means++ seed rows at debug level), route the corpus
with `pipeline cluster assign --balanced=false`, then run scikit-learn's
KMeans(k, init=X[those rows], n_init=1) on c-BTM's tf-idf of the same corpus, and compare the two
partitions (NMI between them; "identical" when > 0.999), their inertias, and their NMI against
`source`. FIT_ARGS adds flags to our fit (e.g. FIT_ARGS="--tol 0"). FEAT=lsa does the same on
dense vectors: our fit uses `--featurizer lsa`, and scikit-learn clusters the very LSA vectors our
fit clustered (`pipeline embed --state` with the fit's saved state, read back with `pipeline
inspect`), in float32 as ours.
Usage: /usr/bin/python3 bench/cluster_same_seeds.py FROM TO   (from the repository root, after
`go build -o bin/pipeline ./cmd/pipeline`)"""
import gzip, json, re, sys, subprocess, numpy as np, warnings, tempfile, os, shutil, atexit
warnings.filterwarnings("ignore")
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score as nmi
C=os.environ.get("CORPUS","../shared/corpora/mixed-v1.jsonl.gz"); P=os.environ.get("PIPELINE","bin/pipeline")
docs=[json.loads(l) for l in gzip.open(C,"rt")]
src=[d["source"] for d in docs]; ids=[d["id"] for d in docs]
TOKEN = re.compile(r"(?u)\b\w\w+\b")
def tok(doc): return ["#NUMBER" if t[0].isdigit() else t for t in TOKEN.findall(doc)]
FEAT=os.environ.get("FEAT","tfidf")
X = TfidfVectorizer(stop_words="english", tokenizer=tok, token_pattern=None).fit_transform([d["text"] for d in docs])
lo,hi=int(sys.argv[1]),int(sys.argv[2])
tmp=tempfile.mkdtemp(); atexit.register(shutil.rmtree, tmp, True)
for k in [5,8,16]:
  same=0; tot=0; rows=[]
  for s in range(lo,hi+1):
    d=os.path.join(tmp,f"r{k}-{s}")
    r=subprocess.run([P,"cluster","fit","--in",C,"--k",str(k),"--seed",str(s),"--restarts","1","--balanced=false","--out",d,"--log-level","debug","--json","--featurizer",FEAT]+os.environ.get("FIT_ARGS","").split(),capture_output=True,text=True,check=True)
    if FEAT=="lsa":
      v=os.path.join(tmp,"v.parquet")
      subprocess.run([P,"embed","--in",C,"--state",d,"--out",v,"--log-level","warn"],capture_output=True,check=True)
      js=subprocess.run([P,"inspect",v],capture_output=True,text=True,check=True).stdout.splitlines()
      vec={o["id"]:o["values"] for o in map(json.loads,js)}
      X=np.array([vec[i] for i in ids],dtype=np.float32)
    m=re.search(r'seed_rows="\[([0-9 ]+)\]" iterations=(\d+) inertia=([0-9.e+]+)',r.stderr)
    seeds=[int(t) for t in m.group(1).split()]; our_in=float(m.group(3))
    a=subprocess.run([P,"cluster","assign","--router",d,"--in",C,"--balanced=false","--out","-","--log-level","warn"],capture_output=True,text=True,check=True)
    dom={}
    for l in a.stdout.splitlines():
      o=json.loads(l); dom[o["id"]]=o["domain"]
    ours=[dom[i] for i in ids]
    init=X[seeds]
    km=KMeans(k,init=init if FEAT=="lsa" else init.toarray(),n_init=1).fit(X)
    agree=nmi(ours,km.labels_)
    tot+=1; same+= agree>0.999
    rows.append((s,our_in,km.inertia_,nmi(src,ours),nmi(src,km.labels_),agree))
    print(f"{FEAT} k={k} seed={s} inertia ours {our_in:.2f} sk {km.inertia_:.2f}  nmi_src ours {nmi(src,ours):.4f} sk {nmi(src,km.labels_):.4f}  partition agreement NMI {agree:.4f}",flush=True)
  a=np.array(rows)
  print(f"SUMMARY {FEAT} k={k}: identical partitions {same}/{tot}; median |Δinertia| {np.median(abs(a[:,1]-a[:,2])):.3f}; median NMI src ours {np.median(a[:,3]):.3f} sk {np.median(a[:,4]):.3f}",flush=True)
