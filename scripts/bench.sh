#!/usr/bin/env bash
# tfcat against the tutorial's Python, Keras (with and without XLA), JAX and GoMLX,
# side by side (scripts/bench/run.py), in float32 and, where the CPU has AVX512_BF16 or
# AMX, in bfloat16 (tfcat-bf16, tutorial-bf16, keras-bf16): sets up the test
# environment (Python TensorFlow, OpenCV, JAX, Keras, matplotlib), builds tfcat,
# prepares the data and prints the table. GoMLX's row needs scripts/bench/gomlx (its
# own Go module, built by run.py); absent or not building, it is left out with a note.
# Arguments go to run.py, e.g.
#   scripts/bench.sh --repeats 3 --markdown
#   scripts/bench.sh --tools tfcat,tfcat-bf16,tutorial,tutorial-bf16 --steps 50
# --plot draws the results as docs/bench.png (scripts/bench/plot.py);
# --no-setup uses the environment as it is.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
plot= setup=1 args=()
for a in "$@"; do
	case $a in
	--plot) plot=1 ;;
	--no-setup) setup= ;;
	*) args+=("$a") ;;
	esac
done
if [[ -n $setup ]]; then
	bash scripts/setup-debian.sh >/dev/null
	bash scripts/install-libtensorflow.sh >/dev/null
	bash scripts/setup-python.sh >/dev/null
fi
make --no-print-directory build >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "tfcat $(bin/tfcat version --json | sed 's/.*"tfcat":"\([^"]*\)".*/\1/'), TensorFlow $(tr -d '\n' < TENSORFLOW_VERSION) (same library for tfcat, the tutorial and Keras)"
results=$(mktemp --suffix .json)
.venv/bin/python scripts/bench/run.py --tfcat "$root/bin/tfcat" --json "$results" "${args[@]}"
if [[ -n $plot ]]; then
	.venv/bin/python scripts/bench/plot.py "$results" docs/bench.png
	echo "chart: docs/bench.png"
fi
