#!/usr/bin/env bash
# Start-up cost of two tfcat binaries, timed alternately in one run (the
# machine's drift hits both alike): a one-image predict from process start, and
# `version`. Prints each side's median wall time and the ratio B/A.
#   bash scripts/bench/startup.sh BIN_A BIN_B MODEL IMAGE [RUNS]
# (issue 24 measured the TensorFlow log filter with A = the revision before it.)
set -euo pipefail
a=$1 b=$2 model=$3 image=$4 runs=${5:-21}
ms() { # wall milliseconds of one run of the command
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for what in predict version; do
	ta=() tb=()
	for ((i = 0; i < runs; i++)); do
		if [[ $what == predict ]]; then
			ta+=("$(ms "$a" predict --model "$model" "$image")")
			tb+=("$(ms "$b" predict --model "$model" "$image")")
		else
			ta+=("$(ms "$a" version)")
			tb+=("$(ms "$b" version)")
		fi
	done
	ma=$(printf '%s\n' "${ta[@]}" | median)
	mb=$(printf '%s\n' "${tb[@]}" | median)
	awk -v w="$what" -v a="$ma" -v b="$mb" -v n="$runs" 'BEGIN {printf "%-8s A %5d ms  B %5d ms  B/A %.3f  (medians of %d, alternating)\n", w, a, b, b/a, n}'
done
