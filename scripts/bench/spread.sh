#!/usr/bin/env bash
# Measures how far two trainings that differ only in summation order end up
# apart — the figures behind the bounds of fusion.txtar and cluster.txtar —
# on this CPU, over kernel families, intra-op thread counts (which split the
# reductions differently, as other CPUs' cache sizes and core counts do) and
# seeds. Each line: the largest |Δp| over 20 test images between
#   fusion       tfcat's default gradients and --fuse-gradients=false
#   replication  one process (batch 32) and ps + chief + worker (16 each)
#   two          one process and two ps + two workers, default gradients
# 20 steps of Adam at lr 1e-3, as in the scripts.
#   bash scripts/bench/spread.sh            (all: ≈ 15 min on 2 cores)
#   FAMILIES="native eigen" THREADS="1 2" SEEDS=3 bash scripts/bench/spread.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tfcat=$root/bin/tfcat
[[ -x $tfcat ]] || { echo "spread: build bin/tfcat first (make build)" >&2; exit 2; }
export TF_CPP_MIN_LOG_LEVEL=2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$tfcat" data fashion-mnist --out data --classes tshirt-top,trouser --limit 60 >/dev/null
"$tfcat" data fashion-mnist --out test --split test --classes tshirt-top,trouser --limit 20 >/dev/null

family_env() {
	case $1 in
	native) echo "TF_ENABLE_ONEDNN_OPTS=1" ;;
	avx512_core) echo "TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX512_CORE" ;;
	avx2) echo "TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX2" ;;
	eigen) echo "TF_ENABLE_ONEDNN_OPTS=0" ;;
	*) echo "spread: unknown family $1" >&2; return 2 ;;
	esac
}

# diff A B: the compare command's largest probability difference.
diff_models() {
	# shellcheck disable=SC2086 # fenv holds several assignments
	env $fenv "$tfcat" compare --model "$1" --model "$2" --data test -f json |
		python3 -c 'import json,sys; print("%.3g" % json.load(sys.stdin)["max_abs_prob_diff"])'
}

# cluster NAME ROLE... : one training per role "type:index" (the last in the
# foreground), all from one TF_CONFIG on fresh loopback ports.
port=$((20000 + RANDOM % 20000))
cluster() {
	local name=$1 spec='' roles=() r
	shift
	declare -A hosts=()
	# addresses listed by index within each type; the roles start in the
	# order given (the chief, or worker 0, last).
	for r in $(printf '%s\n' "$@" | sort -t: -k1,1 -k2,2n); do hosts[${r%:*}]+="\"127.0.0.1:$port\","; port=$((port + 1)); done
	roles=("$@")
	for r in "${!hosts[@]}"; do spec+="\"$r\":[${hosts[$r]%,}],"; done
	local n=${#roles[@]} i
	for ((i = 0; i < n; i++)); do
		r=${roles[$i]}
		local cfg="{\"cluster\":{${spec%,}},\"task\":{\"type\":\"${r%:*}\",\"index\":${r#*:}}}"
		# shellcheck disable=SC2086
		if ((i < n - 1)); then
			env $fenv TF_CONFIG="$cfg" "$tfcat" train $args --batch 16 --cluster-timeout 30s --model-dir "$name-$i" "${extra[@]}" &
		else
			env $fenv TF_CONFIG="$cfg" "$tfcat" train $args --batch 16 --cluster-timeout 30s --model-dir "$name" "${extra[@]}"
		fi
	done
	wait
}

for fam in ${FAMILIES:-native avx512_core avx2 eigen}; do
	fenv=$(family_env "$fam")
	for th in ${THREADS:-1 2 4}; do
		for seed in ${SEEDS:-3 5}; do
			rm -rf ./*-model*
			args="--data data --size 28 --channels 1 --iterations 20 --lr 1e-3 --seed $seed --device /cpu:0 --threads $th -q"
			# shellcheck disable=SC2086
			env $fenv "$tfcat" train $args --batch 32 --model-dir fused-model
			# shellcheck disable=SC2086
			env $fenv "$tfcat" train $args --batch 32 --model-dir unfused-model --fuse-gradients=false
			extra=(--fuse-gradients=false)
			cluster rep-model ps:0 worker:0 chief:0
			extra=()
			cluster two-model ps:0 ps:1 worker:1 worker:0
			echo "$fam threads=$th seed=$seed fusion=$(diff_models fused-model unfused-model) replication=$(diff_models unfused-model rep-model) two=$(diff_models fused-model two-model)"
		done
	done
done
