#!/usr/bin/env bash
# Installs the CUDA and cuDNN libraries the CUDA-enabled libtensorflow opens at run
# time, from NVIDIA's PyPI wheels, next to libtensorflow: PREFIX/nvidia/PKG/lib (PREFIX
# as for scripts/install-libtensorflow.sh: .libtensorflow/, or TFCAT_LIBTENSORFLOW).
# libtensorflow_cc.so.2 and libtensorflow_framework.so.2 carry the RUNPATH entries
# $ORIGIN/../nvidia/PKG/lib (pip's layout for `tensorflow[and-cuda]`), so the loader
# finds them there with no LD_LIBRARY_PATH and no ldconfig, before any CUDA of the
# host's or of a base image's. A host or image then needs only the NVIDIA driver.
#
#   scripts/install-libtensorflow.sh --gpu && scripts/gpu-cuda-libs.sh
#
# The wheels are named with their sha256 in scripts/libtensorflow.sha256, and must be
# the versions the tensorflow wheel's `and-cuda` extra pins: its METADATA is read (the
# wheel is fetched into the cache first if it is not there) and a pin that differs from
# that file is an error. Downloads are cached with the tensorflow wheel
# (~/.cache/tfcat/wheels; TFCAT_CACHE overrides). A second run with the same libraries
# in place downloads nothing.
#
# Only what TensorFlow 2.18 opens is installed (about 2.1 GB): libcudart, libcublas,
# libcublasLt, libcufft, libcusolver, libcusparse and libcudnn (TensorFlow dlopens each
# by soname), libnvJitLink (cuFFT, cuSPARSE and cuSOLVER need it) and cuDNN's
# sub-libraries (libcudnn.so.9 opens them). Left out, though the extra pins them:
# libcurand (neither TensorFlow library names it), NCCL (collectives across GPUs; tfcat
# trains on one device, or across processes through gRPC), CUPTI (the profiler),
# NVRTC and nvcc (XLA's JIT and cuDNN's runtime fusion, neither of which tfcat uses),
# and libnvblas, libcufftw and libcusolverMg (CPU-BLAS, FFTW and multi-GPU front ends).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "gpu-cuda-libs: $*" >&2; exit 1; }
case "${1:-}" in
"") ;;
-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown argument '$1' (use --help)" ;;
esac

version=$(tr -d ' \n' <"$root/TENSORFLOW_VERSION")
prefix=${TFCAT_LIBTENSORFLOW:-$root/.libtensorflow}
dest=$prefix/nvidia
cache=${TFCAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfcat}/wheels
sums=$root/scripts/libtensorflow.sha256
tf_wheel=$cache/tensorflow-${version}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl

# package  folder (under nvidia/, as in the wheel)  files
libs=(
	"nvidia-cuda-runtime-cu12 cuda_runtime libcudart.so.12"
	"nvidia-cublas-cu12 cublas libcublas.so.12 libcublasLt.so.12"
	"nvidia-cufft-cu12 cufft libcufft.so.11"
	"nvidia-cusolver-cu12 cusolver libcusolver.so.11"
	"nvidia-cusparse-cu12 cusparse libcusparse.so.12"
	"nvidia-nvjitlink-cu12 nvjitlink libnvJitLink.so.12"
	"nvidia-cudnn-cu12 cudnn libcudnn.so.9 libcudnn_adv.so.9 libcudnn_cnn.so.9 libcudnn_engines_precompiled.so.9 libcudnn_engines_runtime_compiled.so.9 libcudnn_graph.so.9 libcudnn_heuristic.so.9 libcudnn_ops.so.9"
)

# The and-cuda pins of the tensorflow wheel, "package==version" a line.
if [[ ! -f $tf_wheel ]]; then
	bash "$root/scripts/install-libtensorflow.sh" --gpu --download-only
fi
[[ -f $tf_wheel ]] || die "no $tf_wheel after install-libtensorflow.sh --gpu --download-only"
pins=$(python3 - "$tf_wheel" <<-'EOF'
		import re, sys, zipfile
		with zipfile.ZipFile(sys.argv[1]) as z:
		    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
		    for line in z.read(meta).decode().splitlines():
		        m = re.match(r"Requires-Dist: (nvidia-[\w-]+) ?==([\w.]+) ?; extra == .and-cuda.", line)
		        if m:
		            print(f"{m[1]}=={m[2]}")
	EOF
) || die "reading the and-cuda pins from $tf_wheel failed"
[[ -n $pins ]] || die "$tf_wheel pins no nvidia-* wheel for its and-cuda extra"

# wheels: the file name of each package's wheel in scripts/libtensorflow.sha256;
# reqs: the same as package==version.
wheels=()
reqs=()
for entry in "${libs[@]}"; do
	read -r pkg _ <<<"$entry"
	stem=${pkg//-/_}
	w=$(awk -v s="$stem-" 'index($2, s) == 1 { print $2 }' "$sums")
	[[ -n $w && $(wc -l <<<"$w") -eq 1 ]] || die "$sums names no single wheel of $pkg"
	ver=${w#"$stem-"}
	ver=${ver%%-*}
	grep -qx "$pkg==$ver" <<<"$pins" ||
		die "$sums has $pkg $ver, the tensorflow $version wheel pins $(grep "^$pkg==" <<<"$pins" || echo nothing): update $sums"
	wheels+=("$w")
	reqs+=("$pkg==$ver")
done

stamp=$dest/.tfcat-stamp
want_stamp="${wheels[*]}"
if [[ -f $stamp && $(cat "$stamp") == "$want_stamp" ]]; then
	echo "CUDA libraries for TensorFlow $version already installed in $dest"
	exit 0
fi

mkdir -p "$cache" "$prefix"
for i in "${!wheels[@]}"; do
	w=${wheels[$i]}
	want_sum=$(awk -v w="$w" '$2 == w { print $1 }' "$sums")
	if [[ -f $cache/$w && $(sha256sum "$cache/$w" | cut -d' ' -f1) == "$want_sum" ]]; then
		continue
	fi
	echo "downloading $w from PyPI ..."
	rm -f "$cache/$w"
	python3 -m pip download --quiet --no-deps --only-binary=:all: --no-cache-dir \
		--python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
		-d "$cache" "${reqs[$i]}" || die "download of ${reqs[$i]} failed (is PyPI reachable?)"
	[[ -f $cache/$w ]] || die "pip did not produce $cache/$w"
	got=$(sha256sum "$cache/$w" | cut -d' ' -f1)
	if [[ $got != "$want_sum" ]]; then
		rm -f "$cache/$w"
		die "checksum mismatch for $w: got $got, want $want_sum (file removed)"
	fi
done

# Extracted beside the destination and moved into place, as install-libtensorflow.sh
# does: an interrupted run leaves no half-written library.
tmp=$(mktemp -d "$prefix/.cuda.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for i in "${!libs[@]}"; do
	read -r _ folder files <<<"${libs[$i]}"
	# shellcheck disable=SC2086 # the file names are one word each
	python3 - "$cache/${wheels[$i]}" "$tmp/$folder/lib" $files <<-'EOF' || die "extracting ${wheels[$i]} failed"
		import os, sys, zipfile
		wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
		folder = os.path.basename(os.path.dirname(out))
		os.makedirs(out, exist_ok=True)
		with zipfile.ZipFile(wheel) as z:
		    for name in names:
		        with z.open(f"nvidia/{folder}/lib/{name}") as src, open(os.path.join(out, name), "wb") as f:
		            while chunk := src.read(1 << 20):
		                f.write(chunk)
	EOF
done
printf '%s\n' "$want_stamp" >"$tmp/.tfcat-stamp"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "CUDA libraries for TensorFlow $version installed in $dest ($(du -sh "$dest" | cut -f1)):"
for entry in "${libs[@]}"; do
	read -r pkg folder files <<<"$entry"
	echo "  nvidia/$folder/lib: $files"
done
