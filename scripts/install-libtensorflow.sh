#!/usr/bin/env bash
# Installs TensorFlow's C library and the headers graft's cgo code needs into a
# prefix (default: .libtensorflow/ in the repository; TFCAT_LIBTENSORFLOW overrides).
#
#   scripts/install-libtensorflow.sh          # CPU library from the tensorflow-cpu wheel
#   scripts/install-libtensorflow.sh --gpu    # CUDA library from the tensorflow wheel
#   LIBTENSORFLOW_DIR=/opt/libtensorflow scripts/install-libtensorflow.sh
#                                             # link an existing libtensorflow instead
#   scripts/install-libtensorflow.sh --gpu --download-only
#                                             # only fill the wheel cache (scripts/gpu-cuda-libs.sh
#                                             # reads the CUDA pins from the wheel)
#
# The version comes from TENSORFLOW_VERSION and the wheel's sha256 from
# scripts/libtensorflow.sha256. Downloads are cached in ~/.cache/tfcat/wheels
# (TFCAT_CACHE overrides); the cache helps but is never required.
# A second run with the library in place downloads nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "install-libtensorflow: $*" >&2; exit 1; }

variant=cpu
download_only=false
for arg in "$@"; do
	case "$arg" in
	--gpu) variant=gpu ;;
	--cpu) variant=cpu ;;
	--download-only) download_only=true ;;
	-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$arg' (use --cpu, --gpu, --download-only or --help)" ;;
	esac
done

version=$(tr -d ' \n' <"$root/TENSORFLOW_VERSION")
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$root/TENSORFLOW_VERSION does not hold a version like 2.18.0"
prefix=${TFCAT_LIBTENSORFLOW:-$root/.libtensorflow}
stamp="$prefix/.tfcat-stamp"

# The wheel is pinned to one Python tag and one platform tag: only its C library
# is used, so the Python that runs this script does not matter.
pytag=cp311
plat=manylinux_2_17_x86_64
if [[ $variant == gpu ]]; then dist=tensorflow; else dist=tensorflow-cpu; fi
wheel="${dist//-/_}-${version}-${pytag}-${pytag}-${plat}.manylinux2014_x86_64.whl"

# want_stamp describes what is installed, so a changed request reinstalls.
if [[ -n ${LIBTENSORFLOW_DIR:-} ]]; then
	want_stamp="dir $LIBTENSORFLOW_DIR $version"
else
	want_stamp="wheel $wheel"
fi
if ! $download_only && [[ -f $stamp && $(cat "$stamp") == "$want_stamp" && -e $prefix/lib/libtensorflow.so && -e $prefix/include/tensorflow/c/c_api.h ]]; then
	echo "libtensorflow $version ($variant) already installed in $prefix"
	exit 0
fi

check_headers() {
	# The headers graft includes must compile on their own.
	local inc=$1
	command -v cc >/dev/null || die "no C compiler (cc) found; install gcc"
	printf '#include "tensorflow/c/c_api.h"\n#include "tensorflow/c/eager/c_api.h"\nint main(void){return 0;}\n' |
		cc -fsyntax-only -I"$inc" -x c - || die "headers in $inc are incomplete"
}

if $download_only && [[ -n ${LIBTENSORFLOW_DIR:-} ]]; then
	die "--download-only fetches the wheel; LIBTENSORFLOW_DIR names a library instead"
fi
$download_only || mkdir -p "$prefix/lib" "$prefix/include"

if [[ -n ${LIBTENSORFLOW_DIR:-} ]]; then
	# An official libtensorflow archive (lib/ + include/) or a build of one's own.
	src=$LIBTENSORFLOW_DIR
	[[ -e $src/lib/libtensorflow.so.2 || -e $src/lib/libtensorflow.so ]] ||
		die "LIBTENSORFLOW_DIR=$src has no lib/libtensorflow.so.2 (expected TensorFlow's C archive layout)"
	[[ -f $src/include/tensorflow/c/c_api.h ]] || die "LIBTENSORFLOW_DIR=$src has no include/tensorflow/c/c_api.h"
	rm -rf "$prefix/lib" "$prefix/include"
	ln -s "$src/lib" "$prefix/lib"
	ln -s "$src/include" "$prefix/include"
	check_headers "$prefix/include"
	printf '%s\n' "$want_stamp" >"$stamp"
	echo "libtensorflow linked from $src into $prefix (expected version $version; 'tfcat version' checks it)"
	exit 0
fi

sums="$root/scripts/libtensorflow.sha256"
want_sum=$(awk -v w="$wheel" '$2 == w { print $1 }' "$sums")
[[ -n $want_sum ]] || die "no sha256 for $wheel in $sums: add it when TENSORFLOW_VERSION changes"

cache=${TFCAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfcat}/wheels
mkdir -p "$cache"
have_sum() { [[ -f $cache/$wheel ]] && [[ $(sha256sum "$cache/$wheel" | cut -d' ' -f1) == "$want_sum" ]]; }

if ! have_sum; then
	command -v python3 >/dev/null || die "python3 is needed to download the $dist wheel (or set LIBTENSORFLOW_DIR)"
	python3 -m pip --version >/dev/null 2>&1 || die "pip is missing: install it (apt-get install python3-pip) or set LIBTENSORFLOW_DIR"
	echo "downloading $wheel from PyPI ..."
	rm -f "$cache/$wheel"
	python3 -m pip download --quiet --no-deps --only-binary=:all: --no-cache-dir \
		--python-version 3.11 --implementation cp --platform "$plat" \
		-d "$cache" "$dist==$version" ||
		die "download of $dist==$version failed (is PyPI reachable?)"
	[[ -f $cache/$wheel ]] || die "pip did not produce $cache/$wheel"
	got=$(sha256sum "$cache/$wheel" | cut -d' ' -f1)
	if [[ $got != "$want_sum" ]]; then
		rm -f "$cache/$wheel"
		die "checksum mismatch for $wheel: got $got, want $want_sum (file removed)"
	fi
fi

if $download_only; then
	echo "$wheel is in $cache"
	exit 0
fi

# Extract into a temporary folder beside the prefix, then move into place, so an
# interrupted install never leaves a half-written library behind.
tmp=$(mktemp -d "$prefix/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 - "$cache/$wheel" "$tmp" <<'EOF' || die "extracting $wheel failed"
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
libs = {"tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"}
# The header closure of c_api.h and eager/c_api.h (checked by compiling below).
inc_prefixes = ("tensorflow/include/tensorflow/c/",
                "tensorflow/include/tensorflow/core/platform/ctstring",
                "tensorflow/include/tsl/platform/ctstring",
                "tensorflow/include/xla/tsl/c/")
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        n = info.filename
        if n in libs:
            dst = os.path.join(out, "lib", os.path.basename(n))
        elif n.startswith(inc_prefixes) and not n.endswith("/"):
            dst = os.path.join(out, "include", n[len("tensorflow/include/"):])
        else:
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with z.open(info) as src, open(dst, "wb") as f:
            while chunk := src.read(1 << 20):
                f.write(chunk)
EOF
[[ -f $tmp/lib/libtensorflow_cc.so.2 && -f $tmp/lib/libtensorflow_framework.so.2 ]] || die "$wheel lacks libtensorflow_cc.so.2 or libtensorflow_framework.so.2"
# The link names cgo's -ltensorflow and the loader need.
ln -s libtensorflow_cc.so.2 "$tmp/lib/libtensorflow.so"
ln -s libtensorflow_cc.so.2 "$tmp/lib/libtensorflow.so.2"
ln -s libtensorflow_framework.so.2 "$tmp/lib/libtensorflow_framework.so"
check_headers "$tmp/include"

rm -rf "$prefix/lib" "$prefix/include"
mv "$tmp/lib" "$prefix/lib"
mv "$tmp/include" "$prefix/include"
printf '%s\n' "$want_stamp" >"$stamp"
echo "libtensorflow $version ($variant) installed in $prefix"
