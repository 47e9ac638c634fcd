#!/usr/bin/env bash
# bfloat16 against float32 (issue 25), on the benchmark's 2,000-photo set
# (scripts/bench/run.py prepares it: 1,000 Fashion-MNIST images per class,
# 128x128 colour JPEGs; 1,000 more to predict). Needs a CPU with AVX512_BF16
# or AMX. Long: nice it on a shared machine.
#   scripts/bench/precision.sh accuracy    600 steps (the tutorial's settings),
#                                          seeds 1 2 3, f32 and bf16: test accuracy
#                                          of each, the f32 mean and spread, and the
#                                          loss curves (docs/precision-loss.png)
#   scripts/bench/precision.sh inference   one model: predict of the 1,000-image
#                                          folder in f32 and bf16 (3 runs each,
#                                          alternating: images/s, class agreement,
#                                          largest |Δp|); the server's p50/p99 in
#                                          each (serving/loadtest, batched)
# SEEDS, STEPS, RUNS and DURATION (loadtest, default 15s) change the sizes;
# WORK (default a temporary folder) keeps the data and models.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tfcat=${TFCAT:-$root/bin/tfcat}
py=${TFCAT_PYTHON:-$root/.venv/bin/python}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
tf=${TFCAT_LIBTENSORFLOW:-$root/.libtensorflow}
export CGO_ENABLED=1 CGO_CFLAGS="-I$tf/include" CGO_LDFLAGS="-L$tf/lib -Wl,-rpath,$tf/lib"
grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo || { echo "precision: this CPU has neither AVX512_BF16 nor AMX: bf16 would be emulated"; exit 2; }
cd "$work"
"$py" -c 'import sys; sys.path.insert(0, sys.argv[1]); import run; run.prepare(sys.argv[2], sys.argv[3])' \
	"$root/scripts/bench" "$tfcat" "$work" >/dev/null
acc() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$1"; }

case "${1:-}" in
accuracy)
	for seed in ${SEEDS:-1 2 3}; do
		for p in f32 bf16; do
			rm -rf "m-$p-$seed"
			start=$SECONDS
			"$tfcat" train --data data --iterations "${STEPS:-600}" --seed "$seed" --precision "$p" --model-dir "m-$p-$seed" -q
			took=$((SECONDS - start))
			"$tfcat" eval --model "m-$p-$seed" --data predict -f json > "eval-$p-$seed.json"
			echo "seed $seed $p: test accuracy $(acc "eval-$p-$seed.json"), training ${took} s"
		done
	done
	"$py" - "$root/docs/precision-loss.png" ${SEEDS:-1 2 3} <<'PY'
import json, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out, seeds = sys.argv[1], sys.argv[2:]
acc = {p: [json.load(open("eval-%s-%s.json" % (p, s)))["accuracy"] for s in seeds] for p in ("f32", "bf16")}
for p in ("f32", "bf16"):
    a = acc[p]
    print("%-4s mean %.4f  spread (max-min) %.4f  %s" % (p, statistics.mean(a), max(a) - min(a), " ".join("%.4f" % x for x in a)))
d = statistics.mean(acc["bf16"]) - statistics.mean(acc["f32"])
allowed = max(max(acc["f32"]) - min(acc["f32"]), 0.005)
print("bf16 mean - f32 mean = %+.4f (allowed: %.4f, the f32 spread or 0.5 points) -> %s" % (d, allowed, "holds" if abs(d) <= allowed else "does NOT hold"))
fig, ax = plt.subplots(figsize=(7, 4))
for p, colour in (("f32", "tab:blue"), ("bf16", "tab:orange")):
    for i, s in enumerate(seeds):
        steps, losses = [], []
        for line in open("m-%s-%s/history.jsonl" % (p, s)):
            e = json.loads(line)
            if e.get("event") == "step" and e.get("loss") is not None:
                steps.append(e["step"]); losses.append(e["loss"])
        ax.plot(steps, losses, color=colour, alpha=0.7, lw=1, label=p if i == 0 else None)
ax.set_xlabel("step"); ax.set_ylabel("training loss"); ax.set_yscale("log")
ax.set_title("tfcat train, f32 and bf16, seeds %s" % ", ".join(seeds))
ax.legend(); fig.tight_layout(); fig.savefig(out, dpi=100)
print("loss curves:", out)
PY
	;;
inference)
	m=m-f32-1
	[[ -f $m/checkpoint ]] || "$tfcat" train --data data --iterations "${STEPS:-600}" --seed 1 --model-dir "$m" -q
	n=$(find predict -type f | wc -l)
	declare -A best=()
	for r in $(seq "${RUNS:-3}"); do
		for p in f32 bf16; do
			start=$(date +%s.%N)
			"$tfcat" predict --model "$m" --precision "$p" -f json predict > "pred-$p.json"
			t=$(echo "$(date +%s.%N) - $start" | bc)
			echo "run $r $p: $n images in $t s: $(echo "$n / $t" | bc -l | xargs printf %.1f) images/s (process start and model load included)"
		done
	done
	"$py" - <<'PY'
import json
a, b = (json.load(open("pred-%s.json" % p)) for p in ("f32", "bf16"))
assert [x["file"] for x in a] == [x["file"] for x in b]
agree = sum(x["class"] == y["class"] for x, y in zip(a, b))
dp = max(abs(x["probabilities"][c] - y["probabilities"][c]) for x, y in zip(a, b) for c in x["probabilities"])
print("bf16 vs f32 on %d images: class agreement %d/%d, largest |dp| %.3g" % (len(a), agree, len(a), dp))
PY
	"$tfcat" export --model "$m" --out export --force >/dev/null
	for p in f32 bf16; do
		echo "serve $p:"
		(cd "$root" && go run ./serving/loadtest -model "$work/export" -precision "$p" -batched-only -duration "${DURATION:-15s}" -clients 32)
	done
	;;
*)
	echo "usage: scripts/bench/precision.sh accuracy|inference" >&2
	exit 2
	;;
esac
