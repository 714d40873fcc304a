#!/usr/bin/env bash
# Growth on real text (issue 15, goals a–d). For each split of
# ../shared/corpora/mixed-v1.jsonl.gz into a first corpus A and a new corpus B
# whose sources are absent from A (bench/grow_split.py: 30% of A's documents
# are held back and arrive mixed into B, as "A's later documents"; texts cut
# to MAXCHARS characters so that the per-domain budget covers A's domains),
# and each seed, three arms at equal training compute:
#
#   grown   pipeline run --input a --then b         growth on: new domains
#           and new experts (TOKENS each) for B; the old experts are not
#           retrained
#   frozen  pipeline run --input a --then b --then-grow=false
#           --then-extra-tokens N×TOKENS            no growth: B routed into
#           the old domains, the old experts train on it with the compute the
#           grown arm gave its N new experts
#   refit   pipeline run --input <grown's training documents of A and B>
#           --heldout 0 --k K+N                     offline refit and retrain
#           on A+B, TOKENS per domain (the same total compute)
#
# With INITS (default "seed average"), the grown arm is run again with
# each other --init-new (the default is nearest), for the seeds in INIT_SEEDS
# (default 1): how a new expert is best initialized (point 4).
#
# Every arm is evaluated on the grown run's held-out documents of A and of the
# B stream (the grown and frozen runs in their summaries; refit with pipeline
# eval on those files), and with pipeline eval on B's held-out documents
# proper: those of B's sources, without A's later documents (goal b). bench/grow_summary.py prints goals a–d per split and seed, and
# the medians.
#
#   bash bench/grow.sh                 # 2 splits × 2 seeds, ~30 min here
#   SEEDS="1 2 3" SPLITS=... bash bench/grow.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/pipeline}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
SEEDS=${SEEDS:-"1 2"}
INITS=${INITS-"seed average"} # INITS= runs none
K=${K:-4}
TOKENS=${TOKENS:-600000}
SEED_TOKENS=${SEED_TOKENS:-100000}
MAXCHARS=${MAXCHARS:-4000}
EVAL="--eval-docs 200 --eval-doc-bytes 2048"
GROW=${GROW:-"--grow-min 100"}
INIT_SEEDS=${INIT_SEEDS:-1} # the seeds the INITS arms run for
WORK=${WORK:-$(mktemp -d)}
# name:A sources:B sources
SPLITS=${SPLITS:-"1:brown,sotu,moby-dick:spam-assassin,go-source 2:spam-assassin,go-source,sotu:brown,moby-dick"}

go build -o "$BIN" ./cmd/pipeline
echo "corpus $CORPUS, k=$K, $TOKENS bytes per domain, seed $SEED_TOKENS bytes, texts cut to $MAXCHARS chars, growth: $GROW"
echo "work dir $WORK"
grep -m1 "model name" /proc/cpuinfo
for s in $SPLITS; do
	IFS=: read -r name a b <<<"$s"
	d="$WORK/split$name"
	mkdir -p "$d"
	echo
	echo "split $name: A = $a; B = $b"
	python3 bench/grow_split.py "$CORPUS" "$d" "$a" "$b" 0.3 "$MAXCHARS"
	for seed in $SEEDS; do
		r="$d/seed$seed"
		mkdir -p "$r"
		common=(--k "$K" --tokens-per-domain "$TOKENS" --seed-tokens "$SEED_TOKENS" --baseline=false --seed "$seed" $EVAL --json)
		echo "  seed $seed: grown"
		"$BIN" run --input "$d/a.jsonl" --then "$d/b.jsonl" --out "$r/grown" "${common[@]}" $GROW >"$r/grown.json" 2>"$r/grown.log"
		inits=""
		[[ " $INIT_SEEDS " == *" $seed "* ]] && inits=$INITS
		for init in $inits; do
			echo "  seed $seed: grown, --init-new $init"
			"$BIN" run --input "$d/a.jsonl" --then "$d/b.jsonl" --out "$r/grown-$init" "${common[@]}" $GROW \
				--init-new "$init" >"$r/grown-$init.json" 2>"$r/grown-$init.log"
		done
		n=$(python3 -c "import json; print(len(json.load(open('$r/grown.json'))['then']['new_domains']))")
		echo "  seed $seed: frozen (extra $((n * TOKENS)) bytes for the $n new domains' compute)"
		"$BIN" run --input "$d/a.jsonl" --then "$d/b.jsonl" --out "$r/frozen" "${common[@]}" \
			--then-grow=false --then-extra-tokens $((n * TOKENS)) >"$r/frozen.json" 2>"$r/frozen.log"
		echo "  seed $seed: refit (k=$((K + n)))"
		"$BIN" run --input "$r/grown/train.jsonl.gz,$r/grown/then/train.jsonl.gz" --heldout 0 --out "$r/refit" \
			--k $((K + n)) --tokens-per-domain "$TOKENS" --seed-tokens "$SEED_TOKENS" --baseline=false --seed "$seed" --json \
			>"$r/refit.json" 2>"$r/refit.log"
		for set in a:heldout.jsonl.gz b:then/heldout.jsonl.gz; do
			"$BIN" eval --out "$r/refit" --in "$r/grown/${set#*:}" --max-docs 200 --max-doc-bytes 2048 --alone=false --json \
				>"$r/refit_eval_${set%%:*}.json" 2>>"$r/refit.log"
		done
		# B's held-out documents proper: those of B's sources (the stream's
		# held-out documents of B also hold A's later ones), every arm.
		python3 bench/grow_split.py --filter "$r/grown/then/heldout.jsonl.gz" "$d/a.jsonl" "$r/bnew_heldout.jsonl"
		for arm in grown frozen refit; do
			"$BIN" eval --out "$r/$arm" --in "$r/bnew_heldout.jsonl" --max-docs 200 --max-doc-bytes 2048 --alone=false --json \
				>"$r/${arm}_eval_bnew.json" 2>>"$r/$arm.log"
		done
	done
done
echo
python3 bench/grow_summary.py "$WORK"
