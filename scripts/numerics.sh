#!/usr/bin/env bash
# The numerics tests — Python parity, fused against unfused gradients, oneDNN
# against TensorFlow's default kernels, a cluster against one process,
# transfer learning, SavedModel export, OpenCV preprocessing parity, and that no
# command prints a TensorFlow log line — once per
# CPU kernel family that users' CPUs run, so that a tolerance that holds on
# one family only fails here, not on a user's machine. TensorFlow picks its
# kernels as the library loads; these variables choose them on any x86-64 CPU
# that has the instructions (a cap can only remove instructions):
#   native       oneDNN at this CPU's own instruction set (AMX, AVX512_BF16, ...)
#   avx512_core  oneDNN capped at AVX-512 (skipped, with a line, on CPUs without it)
#   avx2         oneDNN capped at AVX2 (OpenCV's AVX-512 paths off too)
#   eigen        TensorFlow's own kernels (oneDNN off: what TensorFlow runs by
#                default on CPUs without AVX512_VNNI, AVX512_BF16 or AMX)
# The plain `go test ./...` of `make unit` runs them once more under
# TensorFlow's own choice for this CPU.
#   bash scripts/numerics.sh [--skip-default] [FAMILY ...]
# (default: all four; GOTESTFLAGS=-v shows the measured differences).
# --skip-default (make test) leaves out the family TensorFlow picks by itself on
# this CPU — native where the CPU has AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX,
# eigen elsewhere — which `make unit` has just run.
# TFCAT_TEST_FAULT=scale|channel|step makes the tests commit an error of the
# size real bugs make on tfcat's side (internal/testenv.Fault): every family
# must then fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}

# package and test pattern: the tests whose results depend on the kernels.
tests=(
	"./tfgraph ^TestGradientsMatchFiniteDifferences$"
	"./tfsession ^(TestStepsMatchPython|TestGoCheckpointLoadsInPython|TestPythonCheckpointLoadsInGo|TestOneDNNKeepsResults|TestModelGradients|TestBatchNormCheckpointRoundTrip|TestTrainingLearns)$"
	"./savedmodel ."
	"./trainer ^TestTransfer$"
	"./model ."
	"./dataset ^TestParityOpenCV$"
	"./cmd/tfcat ^TestScripts$/^(fusion|cluster|savedmodel|quiet)$"
)

family_env() {
	case $1 in
	native) echo "TF_ENABLE_ONEDNN_OPTS=1" ;;
	avx512_core) echo "TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX512_CORE" ;;
	avx2) echo "TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX2 OPENCV_CPU_DISABLE=AVX512-SKX" ;;
	eigen) echo "TF_ENABLE_ONEDNN_OPTS=0" ;;
	*) echo "numerics: unknown family $1 (native, avx512_core, avx2, eigen)" >&2; return 2 ;;
	esac
}

has_flags() {
	local f
	for f in "$@"; do grep -qw "$f" /proc/cpuinfo || return 1; done
}

skip=
if [[ ${1:-} == --skip-default ]]; then
	shift
	skip=eigen
	grep -qwE 'avx512_vnni|avx512_bf16|avx_vnni|amx_tile|amx_int8|amx_bf16' /proc/cpuinfo && skip=native
fi
families=("$@")
[[ ${#families[@]} -gt 0 ]] || families=(native avx512_core avx2 eigen)
failed=()
for fam in "${families[@]}"; do
	env=$(family_env "$fam")
	if [[ $fam == "$skip" ]]; then
		echo "== numerics [$fam]: run by make unit (TensorFlow's own choice on this CPU)"
		continue
	fi
	case $fam in
	avx512_core) has_flags avx512f avx512bw avx512vl avx512dq || { echo "== numerics [$fam]: skipped, this CPU has no AVX-512"; continue; } ;;
	avx2) has_flags avx2 fma || { echo "== numerics [$fam]: skipped, this CPU has no AVX2"; continue; } ;;
	esac
	echo "== numerics [$fam]: $env"
	start=$SECONDS
	ok=1
	for t in "${tests[@]}"; do
		pkg=${t%% *}
		run=${t#* }
		# NUMERICS_PKGS="./tfsession ./trainer" runs only those packages' tests.
		[[ -z ${NUMERICS_PKGS:-} || " $NUMERICS_PKGS " == *" $pkg "* ]] || continue
		# TestOneDNNKeepsResults sets TF_ENABLE_ONEDNN_OPTS in its children
		# itself: under eigen (no ISA cap) it would repeat the native run.
		[[ $fam == eigen ]] && run=${run//|TestOneDNNKeepsResults/}
		# shellcheck disable=SC2086 # env holds several assignments
		if ! env $env TFCAT_KERNELS="$fam" "$GO" test -count=1 ${GOTESTFLAGS:-} -run "$run" "$pkg" 2>&1 | sed "s/^/[$fam] /"; then
			ok=0
		fi
	done
	if [[ $ok == 1 ]]; then
		echo "== numerics [$fam]: ok in $((SECONDS - start)) s"
	else
		echo "== numerics [$fam]: FAILED in $((SECONDS - start)) s"
		failed+=("$fam")
	fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "numerics: failed on ${failed[*]}" >&2
	exit 1
fi
