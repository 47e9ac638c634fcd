#!/usr/bin/env bash
# GPU check for a host with an NVIDIA GPU and the CUDA-enabled libtensorflow
# (scripts/install-libtensorflow.sh --gpu; make build), or in the GPU image: trains
# the tutorial's network (128x128x3) for a few hundred steps on the CPU and on the
# GPU, predicts the same images on both, and prints the training speed-up and the
# largest probability difference between the two devices; then the same with
# --precision fp16 on the GPU against f32 on the GPU: training speed, test
# accuracy, and the largest probability difference of fp16 predictions.
#
#   scripts/gpu-check.sh [STEPS]      (default 300; TFCAT=path/to/tfcat)
#
# TFCAT_GPU_DEVICE (default /gpu:0) names the second device; /cpu:0 there runs
# the script's own logic on a machine without a GPU, its fp16 part in f32 (tfcat
# refuses fp16 on the CPU, exit status 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tfcat=${TFCAT:-$root/bin/tfcat}
steps=${1:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$tfcat" version
gpu=${TFCAT_GPU_DEVICE:-/gpu:0}
if [[ $gpu != /cpu:0 ]]; then
	"$tfcat" version --json | grep -q '"gpus":\["' || { echo "gpu-check: TensorFlow sees no GPU" >&2; exit 1; }
fi
"$tfcat" data fashion-mnist --out data --classes tshirt-top,trouser --limit 1000 >/dev/null
"$tfcat" data fashion-mnist --out test --split test --classes tshirt-top,trouser --limit 100 >/dev/null

train() { # device model-dir [flag ...] -> seconds
	local t0 t1
	t0=$(date +%s.%N)
	"$tfcat" train --data data --size 128 --channels 3 --iterations "$steps" --seed 2 \
		--device "$1" --model-dir "$2" -q "${@:3}"
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
cpu_s=$(train /cpu:0 cpu-model)
gpu_s=$(train "$gpu" gpu-model)
echo "training $steps steps (incl. start-up and data loading): CPU ${cpu_s}s, GPU ${gpu_s}s, speed-up $(awk -v c="$cpu_s" -v g="$gpu_s" 'BEGIN { printf "%.1fx", c / g }')"

# maxdiff A.csv B.csv: the largest difference between the probabilities of the
# same images in two of predict's CSV files (file,class,p...), and the count.
maxdiff() {
	paste -d, "$1" "$2" | awk -F, 'NR > 1 {
		n = (NF - 4) / 2
		for (i = 0; i < n; i++) { d = $(3 + i) - $(3 + n + 2 + i); if (d < 0) d = -d; if (d > max) max = d }
		rows++
	} END { if (rows == 0) exit 1; printf "%d images, %.3g", rows, max }'
}
"$tfcat" predict -q --device /cpu:0 --model gpu-model -f csv test >cpu.csv
"$tfcat" predict -q --device "$gpu" --model gpu-model -f csv test >gpu.csv
d=$(maxdiff cpu.csv gpu.csv) || { echo "gpu-check: predict wrote no rows" >&2; exit 1; }
echo "predict on ${d%%,*}: largest |p_cpu - p_gpu| = ${d#*, }"

# float16 on the GPU (grappler's mixed-precision rewrite, with tfcat's dynamic
# loss scaling): training speed against f32 on the same GPU, test accuracy of
# each, and how far fp16 predictions of the f32 model are from f32's. On /cpu:0
# the same commands run in f32, for the script's logic alone.
half=fp16
if [[ $gpu == /cpu:0 ]]; then
	half=f32
	echo "(on /cpu:0 the fp16 part runs with --precision f32: fp16 needs a GPU)"
fi
half_s=$(train "$gpu" half-model --precision "$half")
acc() { "$tfcat" eval -q --device "$gpu" --model "$1" --data test -f json | sed -n 's/.*"accuracy": *\([0-9.]*\).*/\1/p' | head -1; }
echo "$half training $steps steps: ${half_s}s, $(awk -v c="$gpu_s" -v g="$half_s" 'BEGIN { printf "%.2fx", c / g }') of f32's speed; test accuracy f32 $(acc gpu-model), $half $(acc half-model)"
"$tfcat" predict -q --device "$gpu" --precision "$half" --model gpu-model -f csv test >half.csv
d=$(maxdiff gpu.csv half.csv) || { echo "gpu-check: predict --precision $half wrote no rows" >&2; exit 1; }
echo "predict --precision $half on ${d%%,*}: largest |p_f32 - p_$half| = ${d#*, }"
