#!/usr/bin/env bash
# GPU check for a host with an NVIDIA GPU and the CUDA-enabled libtensorflow
# (scripts/install-libtensorflow.sh --gpu; make build): trains the tutorial's
# network (128x128x3) for a few hundred steps on the CPU and on the GPU, predicts
# the same images on both, and prints the training speed-up and the largest
# probability difference between the two devices.
#
#   scripts/gpu-check.sh [STEPS]      (default 300; TFCAT=path/to/tfcat)
#
# TFCAT_GPU_DEVICE (default /gpu:0) names the second device; /cpu:0 there runs
# the script's own logic on a machine without a GPU.
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

"$tfcat" predict -q --device /cpu:0 --model gpu-model -f csv test >cpu.csv
"$tfcat" predict -q --device "$gpu" --model gpu-model -f csv test >gpu.csv
paste -d, cpu.csv gpu.csv | awk -F, 'NR > 1 {
	n = (NF - 4) / 2
	for (i = 0; i < n; i++) { d = $(3 + i) - $(3 + n + 2 + i); if (d < 0) d = -d; if (d > max) max = d }
	rows++
} END { printf "predict on %d images: largest |p_cpu - p_gpu| = %.3g\n", rows, max }'

# float16 on the GPU (grappler's mixed-precision rewrite, with tfcat's dynamic
# loss scaling): speed against f32 on the same GPU, and test accuracy of each.
if [[ $gpu != /cpu:0 ]]; then
	fp16_s=$(train "$gpu" fp16-model --precision fp16)
	acc() { "$tfcat" eval -q --device "$gpu" --model "$1" --data test -f json | sed -n 's/.*"accuracy": *\([0-9.]*\).*/\1/p' | head -1; }
	echo "fp16 training $steps steps: ${fp16_s}s, $(awk -v c="$gpu_s" -v g="$fp16_s" 'BEGIN { printf "%.2fx", c / g }') of f32's speed; test accuracy f32 $(acc gpu-model), fp16 $(acc fp16-model)"
fi
