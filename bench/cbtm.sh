#!/usr/bin/env bash
# The c-BTM result at small scale (issue 6), with c-BTM's protocol on
# ../shared/corpora/mixed-v1.jsonl.gz (10% of each source held out):
#   1. a dense seed trains on the mixed stream for S tokens;
#   2a. the dense model continues for T more tokens;
#   2b. k experts branch from the same seed and each trains T/k tokens on its
#       own domain (same total compute);
#   3. held-out bits per byte of the dense model and of the router mixtures
#      (top-1, top-2, all k; weights softmax(-d²/0.1)).
# It runs k ∈ KS at the largest T for each run seed in RUN_SEEDS (`pipeline
# run --seed`: the dense seed's initialization, k-means; the held-out split is
# the same), the curve over TS for the first k and run seed, and the first k
# at the largest T without a seed (experts and dense from scratch). The last
# lines give the mean of each ratio over the run seeds.
# Every configuration is one `pipeline run`; the seed, the routing and the
# broker data of a k are reused for its other T (the run resumes them).
#
#   bash bench/cbtm.sh                 # defaults below: about 15 minutes on an idle machine
#                                      # (916 s, BENCHMARKS.md §8), 20-25 with other work beside it
#   KS="5" TS="8000000" bash bench/cbtm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/pipeline}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
EXPERT=${EXPERT:-tiny}
FEATURIZER=${FEATURIZER:-lsa} # c-BTM's: tf-idf, SVD to 100 dimensions, L2
S=${S:-8000000}
TS=${TS:-"2000000 4000000 8000000"}
KS=${KS:-"5 8"}
EVAL_DOCS=${EVAL_DOCS:-300}
RUN_SEEDS=${RUN_SEEDS:-"1 2"}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/domainflow-cbtm.XXXXXX")}
mkdir -p "$WORK"
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/pipeline

tmax=0
for t in $TS; do [ "$t" -gt "$tmax" ] && tmax=$t; done
k0=${KS%% *}

# run K T SEED DIR [RUNSEED]: one configuration; prints a result line and
# appends "k T runseed top1 top2 all" ratios to $WORK/ratios.
run() {
  local k=$1 t=$2 seed=$3 dir=$4 rs=${5:-1}
  local per=$(( t / k ))
  local start=$(date +%s)
  "$BIN" run --input "$CORPUS" --out "$dir" --k "$k" --featurizer "$FEATURIZER" --expert "$EXPERT" --seed-tokens "$seed" \
    --tokens-per-domain "$per" --eval-docs "$EVAL_DOCS" --seed "$rs" --log-level warn --json >"$dir.json" 2>"$dir.log"
  local el=$(( $(date +%s) - start ))
  /usr/bin/python3 - "$dir.json" "$k" "$t" "$seed" "$el" "$rs" "$WORK/ratios" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
k, t, seed, el, rs, ratios = sys.argv[2:]
e = s["eval"]
d, m = e.get("dense_bpb"), e["mixture_bpb"]
sd = e.get("seed_bpb")
ratio = lambda x: x / d if d else float("nan")
if int(seed) > 0:
    with open(ratios, "a") as f:
        print(k, t, rs, ratio(m['top1']), ratio(m['top2']), ratio(m['all']), file=f)
print(f"| {k} | {rs} | {int(seed)/1e6:g}M | {int(t)/1e6:g}M | {sd if sd is None else round(sd, 4)} | {d:.4f} | "
      f"{m['top1']:.4f} ({ratio(m['top1']):.3f}) | {m['top2']:.4f} ({ratio(m['top2']):.3f}) | "
      f"{m['all']:.4f} ({ratio(m['all']):.3f}) | {abs(m['top2'] - m['all']) / m['all'] * 100:.2f}% | {el}s |")
EOF
}

# fork DIR NEW: a copy of DIR's broker data, split, router and seed, without
# the other experts, so that NEW trains only the branches and the dense model.
fork() {
  rm -rf "$2"
  mkdir -p "$2/experts"
  cp -r "$1/broker" "$1/router" "$1/train.jsonl.gz" "$1/heldout.jsonl.gz" "$2/"
  [ -d "$1/experts/seed" ] && cp -r "$1/experts/seed" "$2/experts/"
  return 0
}

echo "c-BTM protocol: featurizer $FEATURIZER, expert $EXPERT, seed S=$S tokens, T in {$TS}, k in {$KS}; work dir $WORK"
echo
echo "| k | run seed | seed S | T | seed bpb | dense bpb | top-1 (×dense) | top-2 (×dense) | all k (×dense) | top-2 vs all | wall |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
rs0=${RUN_SEEDS%% *}
rm -f "$WORK/ratios"
for rs in $RUN_SEEDS; do
  suffix=""; [ "$rs" != "$rs0" ] && suffix="-seed$rs"
  for k in $KS; do
    base="$WORK/k$k"
    dir="$base-T$tmax$suffix"
    if [ "$k" != "$k0" ]; then
      # The seed only depends on the mixed stream and the run seed, the same
      # for every k; so does the dense baseline when k·(T/k) is the same T.
      mkdir -p "$dir/experts"
      cp -r "$WORK/k$k0-T$tmax$suffix/experts/seed" "$dir/experts/"
      if [ $(( tmax % k )) -eq 0 ] && [ $(( tmax % k0 )) -eq 0 ]; then
        cp -r "$WORK/k$k0-T$tmax$suffix/experts/dense" "$dir/experts/"
      fi
    fi
    run "$k" "$tmax" "$S" "$dir" "$rs"
    if [ "$k" = "$k0" ] && [ "$rs" = "$rs0" ]; then
      for t in $TS; do
        [ "$t" = "$tmax" ] && continue
        fork "$dir" "$base-T$t"
        run "$k" "$t" "$S" "$base-T$t" "$rs"
      done
    fi
  done
done
fork "$WORK/k$k0-T$tmax" "$WORK/k$k0-noseed"
rm -rf "$WORK/k$k0-noseed/experts/seed"
run "$k0" "$tmax" 0 "$WORK/k$k0-noseed" "$rs0"

echo
echo "Mean over run seeds {$RUN_SEEDS} at T = $tmax (×dense):"
/usr/bin/python3 - "$WORK/ratios" "$tmax" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, t, rs, *r = line.split()
    if t == sys.argv[2]:
        rows[int(k)].append([float(x) for x in r])
for k, rs in sorted(rows.items()):
    m = [statistics.mean(c) for c in zip(*rs)]
    print(f"  k={k}: {len(rs)} run seeds, top-1 {m[0]:.3f}, top-2 {m[1]:.3f}, all {m[2]:.3f}; "
          f"top-2 vs all {abs(m[1] - m[2]) / m[2] * 100:.2f}%")
EOF
