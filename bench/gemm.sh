#!/usr/bin/env bash
# Side-by-side float32 GEMM (C = op(A)·op(B), row-major, GFLOP/s = 2·m·n·k/t):
# numpy → OpenBLAS, gonum's pure-Go Sgemm (BenchmarkGonum in
# accel/internal/gemm) and ours (`pipeline bench gemm --backend cpu`), at 1
# and 2 threads, on squares and the expert model's matmul shapes. The three
# run back to back for each shape and thread count, ROUNDS rounds over all,
# so that they share each time window on this shared, drifting VM. Each
# measurement is the median of 5 batches over >= MIN_TIME (default 0.5 s).
# Before each triple the script waits (at most IDLE_WAIT s) for the other
# processes to go quiet. The table gives, per cell, the median over rounds,
# the ratios ours/OpenBLAS and gonum/OpenBLAS as the median of the
# per-round ratios, and "busy", the CPUs other processes used just before.
# numpy runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset and
# threadpoolctl limiting OpenBLAS's threads; needs /usr/bin/python3 with
# numpy and threadpoolctl (apt-get install -y python3-numpy python3-threadpoolctl).
#   bash bench/gemm.sh [ROUNDS]   (default 3; SHAPES="name:m:n:k:tA:tB ..." to override)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
MIN_TIME=${MIN_TIME:-0.5}
PY=${PY:-/usr/bin/python3}
THREADS=${THREADS:-"1 2"}
# name:m:n:k:transA:transB. fwd = inp[BT,C]·W[OC,C]ᵀ, dw = doutᵀ·inp (k = B·T).
# The names are those of BenchmarkSgemm and BenchmarkGonum in accel/internal/gemm.
SHAPES=${SHAPES:-"sq128:128:128:128:0:0 sq256:256:256:256:0:0 sq512:512:512:512:0:0 sq1024:1024:1024:1024:0:0
small_fwd_2048x512x128:2048:512:128:0:1 small_fwd_2048x128x512:2048:128:512:0:1 small_dw_512x128x2048:512:128:2048:1:0
base_fwd_2048x1024x256:2048:1024:256:0:1 base_fwd_2048x256x1024:2048:256:1024:0:1 base_dw_1024x256x2048:1024:256:2048:1:0"}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

go build -o bin/pipeline ./cmd/pipeline
go test -c -o "$OUT/gemm.test" ./accel/internal/gemm

cat >"$OUT/numpy_gemm.py" <<'EOF'
import sys, time, statistics, numpy as np
from threadpoolctl import threadpool_limits, threadpool_info
# usage: numpy_gemm.py m n k transA transB threads min_seconds | numpy_gemm.py info
if sys.argv[1] == "info":
    for i in threadpool_info():
        if i["internal_api"] == "openblas":
            print(f"# OpenBLAS {i['version']} kernel={i['architecture']} threading={i['threading_layer']} {i['filepath']}")
    print(f"# numpy {np.__version__}")
    sys.exit()
m, n, k, ta, tb, th = map(int, sys.argv[1:7])
min_time = float(sys.argv[7])
rng = np.random.default_rng(1)
A = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
B = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
A, B = (A.T if ta else A), (B.T if tb else B)
C = np.empty((m, n), dtype=np.float32)
with threadpool_limits(limits=th, user_api="blas"):
    np.matmul(A, B, out=C)  # warm-up
    rates = []
    for _ in range(5):
        reps, t0 = 0, time.perf_counter()
        while True:
            np.matmul(A, B, out=C); reps += 1
            el = time.perf_counter() - t0
            if el >= min_time / 5:
                break
        rates.append(2.0 * m * n * k * reps / el / 1e9)
print(statistics.median(rates))
EOF

numpy() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$OUT/numpy_gemm.py" "$@"; }
numpy info
echo "# go $(go env GOVERSION), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"

ours() { # m n k ta tb threads
  local flags=(--m "$1" --n "$2" --k "$3" --threads "$6" --min-time "${MIN_TIME}s" --json)
  [ "$4" = 1 ] && flags+=(--trans-a)
  [ "$5" = 1 ] && flags+=(--trans-b)
  bin/pipeline bench gemm "${flags[@]}" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["gflops"])'
}

gonum() { # name threads: median of 3 benchmark runs
  GOMAXPROCS=$2 "$OUT/gemm.test" -test.run '^$' -test.bench "^BenchmarkGonum\$/^$1\$" -test.cpu "$2" \
    -test.benchtime "${MIN_TIME}s" -test.count 3 |
    awk '/GFLOP\/s/ { for (i = 1; i < NF; i++) if ($(i+1) == "GFLOP/s") print $i }' | sort -g | sed -n 2p | grep . || echo nan
}

# busy prints how many CPUs were busy over the last half second (from
# /proc/stat). wait_idle waits, at most IDLE_WAIT seconds (default 30), until
# that is under 0.3, so that each triple starts on a quiet machine, and
# prints the last figure; the table's "busy" column is its median.
busy() {
  local a b
  read -ra a < <(head -1 /proc/stat); sleep 0.5; read -ra b < <(head -1 /proc/stat)
  awk -v u=$((b[1]+b[2]+b[3]+b[6]+b[7] - a[1]-a[2]-a[3]-a[6]-a[7])) \
      -v t=$((b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7] - a[1]-a[2]-a[3]-a[4]-a[5]-a[6]-a[7])) \
      -v n="$(nproc)" 'BEGIN { printf "%.2f", t ? u / t * n : 0 }'
}
wait_idle() {
  local end=$((SECONDS + ${IDLE_WAIT:-30})) b
  while b=$(busy); awk -v b="$b" 'BEGIN { exit !(b >= 0.3) }' && [ $SECONDS -lt $end ]; do :; done
  echo "$b"
}

LOG=$OUT/log
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for th in $THREADS; do
    for s in $SHAPES; do
      IFS=: read -r name m n k ta tb <<<"$s"
      idle=$(wait_idle)
      ob=$(numpy "$m" "$n" "$k" "$ta" "$tb" "$th" "$MIN_TIME")
      go=$(ours "$m" "$n" "$k" "$ta" "$tb" "$th")
      gn=$(gonum "$name" "$th")
      echo "$r $th $name $m $n $k $ta $tb $ob $go $gn $idle" | tee -a "$LOG"
    done
  done
done

"$PY" - "$LOG" <<'EOF'
import sys, statistics as st
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    r, th, name, m, n, k, ta, tb, ob, go, gn, idle = line.split()
    rows[(int(th), name, f"{m}×{n}×{k}" + (" Aᵀ" if ta == "1" else "") + (" Bᵀ" if tb == "1" else ""))].append(
        (float(ob), float(go), float(gn), float(idle)))
print()
print("| threads | shape | m×n×k | OpenBLAS | ours | gonum | ours/OpenBLAS | gonum/OpenBLAS | busy |")
print("|---|---|---|---|---|---|---|---|---|")
for (th, name, shape), v in rows.items():
    med = [st.median(x[i] for x in v) for i in range(4)]
    print(f"| {th} | {name} | {shape} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | "
          f"{st.median(x[1] / x[0] for x in v):.2f} | {st.median(x[2] / x[0] for x in v):.2f} | {med[3]:.2f} |")
EOF
