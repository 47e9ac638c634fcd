#!/usr/bin/env bash
# Distributed training throughput on this machine: one process, then ps + 1
# and ps + 2 workers on loopback, the tutorial's network on 128x128x3 images,
# --batch per replica, each process with --threads THREADS. Prints a Markdown
# table: steps/s, images/s and the per-step communication overhead (the
# cluster's step time minus one process's at the same per-replica batch).
#   scripts/bench-cluster.sh [STEPS] [BATCH] [THREADS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
steps=${1:-40} batch=${2:-16} threads=${3:-1}
make -s build >/dev/null
tfcat=$PWD/bin/tfcat
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export TF_CPP_MIN_LOG_LEVEL=2
"$tfcat" data fashion-mnist --out "$work/data" --classes tshirt-top,trouser --limit 400 >/dev/null
common=(train --data "$work/data" --size 128 --channels 3 --batch "$batch" --iterations "$steps"
	--threads "$threads" --device /cpu:0 --validation 0.1 --json -q)

# rate FILE: the chief's steps/s at its last step event.
rate() { grep '"event":"step"' "$1" | tail -1 | sed 's/.*"steps_per_sec":\([0-9.e+-]*\).*/\1/'; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$tfcat" "${common[@]}" --model-dir "$work/single" > "$work/single.jsonl"
single=$(rate "$work/single.jsonl")

cluster() { # WORKERS
	local n=$1 ps w chief tasks=() pids=()
	ps=$(port); for i in $(seq 0 $((n - 1))); do w[$i]=$(port); done
	local list; list=$(printf '"127.0.0.1:%s",' "${w[@]}"); list=${list%,}
	local c="\"cluster\":{\"ps\":[\"127.0.0.1:$ps\"],\"worker\":[$list]}"
	TF_CONFIG="{$c,\"task\":{\"type\":\"ps\",\"index\":0}}" "$tfcat" "${common[@]}" --model-dir "$work/ps$n" >/dev/null & pids+=($!)
	for i in $(seq $((n - 1)) -1 1); do
		TF_CONFIG="{$c,\"task\":{\"type\":\"worker\",\"index\":$i}}" "$tfcat" "${common[@]}" --model-dir "$work/w$n-$i" >/dev/null & pids+=($!)
	done
	TF_CONFIG="{$c,\"task\":{\"type\":\"worker\",\"index\":0}}" "$tfcat" "${common[@]}" --model-dir "$work/c$n" > "$work/c$n.jsonl"
	wait "${pids[@]}"
	rate "$work/c$n.jsonl"
}
one=$(cluster 1)
two=$(cluster 2)
python3 - "$single" "$one" "$two" "$batch" "$threads" "$steps" <<'PY'
import sys
single, one, two = map(float, sys.argv[1:4]); b, threads, steps = int(sys.argv[4]), sys.argv[5], sys.argv[6]
print(f"{steps} steps, --batch {b} per replica, --threads {threads} per process, 128x128x3, 2 cores\n")
print("| setup | steps/s | images/s | step time (ms) | communication overhead per step (ms) |")
print("|---|---|---|---|---|")
print(f"| 1 process | {single:.2f} | {single*b:.1f} | {1000/single:.0f} | – |")
print(f"| ps + 1 worker | {one:.2f} | {one*b:.1f} | {1000/one:.0f} | {1000/one-1000/single:.0f} |")
print(f"| ps + 2 workers | {two:.2f} | {two*2*b:.1f} | {1000/two:.0f} | {1000/two-1000/single:.0f} (both replicas share the 2 cores) |")
PY
