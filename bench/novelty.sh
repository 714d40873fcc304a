#!/usr/bin/env bash
# Novelty scoring on real text (issue 15, point 1). For each split of
# ../shared/corpora/mixed-v1.jsonl.gz into a first corpus A and a new corpus B
# whose sources are absent from A:
#   1. `pipeline cluster fit --k 5` (tf-idf, balanced) on 80% of A's documents;
#   2. `pipeline cluster assign --balanced=false` routes A's other 20% and all
#      of B to their nearest centroid, once per rule --novel-quantile Q (0.95,
#      0.99 the default, 0.999; no margin);
#   3. bench/novelty_summary.py prints, for A's held-out documents and for B,
#      the median and 10th percentile squared distance to the nearest
#      centroid, the novel fraction at each Q, and the share of the largest
#      domain under argmin routing, and each domain's fit-time distances.
#
#   bash bench/novelty.sh            # both splits, about half a minute here
#   SEED=2 bash bench/novelty.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/pipeline}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
SEED=${SEED:-1}
K=${K:-5}
WORK=${WORK:-$(mktemp -d)}
# name:A sources:B sources
SPLITS=${SPLITS:-"1:brown,sotu,moby-dick:spam-assassin,go-source 2:spam-assassin,go-source,sotu:brown,moby-dick"}

go build -o "$BIN" ./cmd/pipeline
echo "corpus $CORPUS, k=$K, seed $SEED, work dir $WORK"
grep -m1 "model name" /proc/cpuinfo
for s in $SPLITS; do
	IFS=: read -r name a b <<<"$s"
	d="$WORK/split$name"
	mkdir -p "$d"
	echo
	echo "split $name: A = $a; B = $b"
	python3 bench/novelty_split.py "$CORPUS" "$d" "$a" "$b"
	"$BIN" cluster fit --in "$d/a_train.jsonl" --k "$K" --seed "$SEED" --out "$d/router" --json >"$d/fit.json" 2>/dev/null
	"$BIN" domains --router "$d/router" --json >"$d/domains.json"
	for q in 0.95 0.99 0.999; do
		for set in a_held b; do
			"$BIN" cluster assign --router "$d/router" --in "$d/$set.jsonl" --out "$d/$set.q$q.jsonl" \
				--balanced=false --novel-quantile "$q" 2>/dev/null
		done
	done
	python3 bench/novelty_summary.py "$d"
done

# Other per-document scores on the same splits (what point 3 may use).
echo
echo "other novelty scores (bench/novelty_explore):"
dirs=()
for s in $SPLITS; do dirs+=("$WORK/split${s%%:*}"); done
go run ./bench/novelty_explore "${dirs[@]}"
