# shellcheck shell=bash
# The GPU part of scripts/container-check.sh, which sources this file for --gpu after
# defining its helpers (pm, in_image, step, die, tmp, cache, image, ...): the CUDA
# stand-in base and the checks only the GPU image has. Not run on its own.
#
# The CUDA stand-in. The Dockerfile's GPU_BASE default is NVIDIA's cuDNN runtime image
# (Ubuntu, CUDA's libraries under /usr/local/cuda-X.Y/targets/x86_64-linux/lib, which an
# ld.so.conf.d entry puts in the loader's cache, and cuDNN in /usr/lib/x86_64-linux-gnu,
# where NVIDIA's libcudnn9 package installs it). It cannot be pulled here, so the check
# builds the image on a stand-in: the Debian stand-in plus the libraries
# scripts/gpu-cuda-libs.sh takes from NVIDIA's PyPI wheels at the versions
# `tensorflow[and-cuda]` pins, laid out in those same places and found the same way,
# through /etc/ld.so.cache after ldconfig, with no LD_LIBRARY_PATH. That is the path
# the loader takes in the official image, so what the check sees is what a GPU host's
# container does short of the driver. (The wheels' own layout, next to libtensorflow
# where its RUNPATH looks, is what gpu-cuda-libs.sh gives a host without CUDA; the image
# leaves the CUDA libraries to its base.) The stand-in has only the libraries TensorFlow
# opens; the official image has all of CUDA's runtime libraries, and CUDA 12.6.1's
# where the stand-in has the 12.5 ones TensorFlow 2.18 pins (same sonames). Its
# environment is the official base's: NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES,
# LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64. It has no libcuda.so.1:
# that is the driver's, mounted by the NVIDIA Container Toolkit on a GPU host (the
# official image's forward-compatibility libcuda in /usr/local/cuda/compat is not in the
# loader's path either, and needs a GPU to do anything).
#
# The stand-in is named after a hash of what makes it (this file's cuda_standin, the
# library list of gpu-cuda-libs.sh, the wheels' checksums), so a changed recipe makes a
# new one instead of reusing a cached one.

sums=$root/scripts/libtensorflow.sha256
cuda_runtime_version=$(sed -n 's/^[0-9a-f]*  nvidia_cuda_runtime_cu12-\([0-9.]*\)-.*/\1/p' "$sums")
cudnn_version=$(sed -n 's/^[0-9a-f]*  nvidia_cudnn_cu12-\([0-9.]*\)-.*/\1/p' "$sums")
[[ $cuda_runtime_version =~ ^12\.[0-9]+\. && $cudnn_version =~ ^9\.[0-9]+\. ]] ||
	die "$sums names no CUDA 12 runtime and cuDNN 9 wheels (got '$cuda_runtime_version', '$cudnn_version')"
cuda_series=${cuda_runtime_version%.*} # 12.5.82 -> 12.5
cudnn_minor=$(cut -d. -f2 <<<"$cudnn_version")

# gpu_base_default: the Dockerfile's GPU_BASE, whose distribution's C and C++ runtime
# the image's own files must not outgrow (the stand-in is Debian).
gpu_base_default=$(sed -n 's/^ARG GPU_BASE=//p' "$root/Dockerfile")
[[ -n $gpu_base_default ]] || die "Dockerfile has no 'ARG GPU_BASE=' line"

cuda_standin() {
	if pm image exists "$cuda_image"; then
		echo "cached: $cuda_image"
		return
	fi
	local ctx=$tmp/cuda-ctx log=$tmp/cuda.log lib=/usr/local/cuda-$cuda_series/targets/x86_64-linux/lib
	mkdir -p "$ctx/cuda" "$ctx/cudnn"
	echo "CUDA $cuda_runtime_version and cuDNN $cudnn_version libraries: scripts/gpu-cuda-libs.sh (wheels cached in $wheels)"
	if ! TFCAT_CACHE=$cache TFCAT_LIBTENSORFLOW=$ctx bash "$root/scripts/gpu-cuda-libs.sh" >"$log" 2>&1; then
		show_log "$log"
		die "scripts/gpu-cuda-libs.sh failed"
	fi
	sed 's/^/  /' "$log"
	mv "$ctx"/nvidia/cudnn/lib/* "$ctx/cudnn/"
	mv "$ctx"/nvidia/*/lib/* "$ctx/cuda/"
	rm -rf "$ctx/nvidia"
	cat >"$ctx/Containerfile" <<-EOF
		FROM $debian_image
		COPY cuda/ $lib/
		COPY cudnn/ /usr/lib/x86_64-linux-gnu/
		RUN ln -s cuda-$cuda_series /usr/local/cuda \\
		 && echo /usr/local/cuda/targets/x86_64-linux/lib >/etc/ld.so.conf.d/000_cuda.conf \\
		 && printf '/usr/local/nvidia/lib\n/usr/local/nvidia/lib64\n' >/etc/ld.so.conf.d/nvidia.conf \\
		 && ldconfig
		ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility \\
		    CUDA_VERSION=$cuda_runtime_version NV_CUDNN_VERSION=$cudnn_version \\
		    LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \\
		    PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		LABEL com.nvidia.cudnn.version=$cudnn_version
	EOF
	if ! pm build --isolation=chroot --pull=never --layers=false -t "$cuda_image" "$ctx" >"$log" 2>&1; then
		show_log "$log"
		die "building $cuda_image failed"
	fi
	rm -rf "$ctx"
	echo "made $cuda_image ($(pm image inspect --format '{{.Size}}' "$cuda_image" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}
cuda_image=localhost/tfcat-standin/cuda:$cuda_series-cudnn$cudnn_version-$(
	{
		declare -f cuda_standin
		sed -n '/^libs=(/,/^)/p' "$root/scripts/gpu-cuda-libs.sh"
		grep '  nvidia_' "$sums"
	} | sha256sum | cut -c1-12
)

# The probe: TensorFlow's own loader entry point, tsl::internal::DsoLoader::
# MaybeTryDlopenGPULibraries (what the GPU device factory calls before it uses a GPU;
# exported by libtensorflow_cc.so.2), called with no GPU, so that TensorFlow opens every
# CUDA and cuDNN library it needs as it would on a GPU host. Then cuDNN's version and
# the version checks of its sub-libraries TensorFlow calls (each opens one), and
# cuDNN's engine and heuristics libraries, which cuDNN opens only when a GPU runs a
# graph, by soname as it does. It is compiled here and mounted into the container:
# nothing of it goes into the image.
probe_source='
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
int main(int argc, char **argv) {
	if (argc != 2) return 2;
	void *tf = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!tf) { fprintf(stderr, "probe: %s\n", dlerror()); return 2; }
	/* Returns an absl::Status: through a hidden pointer (the C++ ABI for a class
	   with a destructor); its value is not read, the loader lines tell. */
	void (*try_gpu)(uintptr_t *) = (void (*)(uintptr_t *))dlsym(tf, "_ZN3tsl8internal9DsoLoader26MaybeTryDlopenGPULibrariesEv");
	if (!try_gpu) { fprintf(stderr, "probe: %s\n", dlerror()); return 2; }
	uintptr_t status[8] = {0};
	try_gpu(status);
	void *dnn = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_NOLOAD);
	if (!dnn) { printf("cudnn: not loaded\n"); return 0; }
	size_t (*version)(void) = (size_t (*)(void))dlsym(dnn, "cudnnGetVersion");
	printf("cudnn version %zu\n", version ? version() : 0);
	const char *checks[] = {"cudnnGraphVersionCheck", "cudnnOpsVersionCheck", "cudnnCnnVersionCheck", "cudnnAdvVersionCheck"};
	for (int i = 0; i < 4; i++) {
		int (*check)(void) = (int (*)(void))dlsym(dnn, checks[i]);
		printf("cudnn %s %d\n", checks[i], check ? check() : -1);
	}
	const char *engines[] = {"libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9"};
	for (int i = 0; i < 3; i++) {
		void *h = dlopen(engines[i], RTLD_NOW | RTLD_LOCAL);
		printf("cudnn engine %s %s\n", engines[i], h ? "loaded" : dlerror());
	}
	return 0;
}'

# cuda_loader: what the loader opens in the image, from TensorFlow's own loader messages
# (dso_loader, at TF_CPP_VMODULE=dso_loader=1) and the dynamic loader's (LD_DEBUG=libs),
# for the probe and for `tfcat version`. Every library asked for must be found, except
# the driver's (libcuda.so.1, libnvidia-ml.so.1), which is what tfcat version's "no GPU"
# must come from: TensorFlow's cuInit failing with 303, the driver library not loaded.
cuda_loader() {
	local dir=$tmp/loader
	mkdir -p "$dir"
	chown 10001:10001 "$dir"
	cc -O2 -o "$dir/probe" -x c - <<<"$probe_source" || die "compiling the loader probe failed"
	local env=(--env LD_DEBUG=libs,files --env TF_CPP_MIN_LOG_LEVEL=0 --env TF_CPP_VMODULE=dso_loader=1 --env TFCAT_TF_LOGS=1)
	in_image --volume "$dir:/loader" "${env[@]}" --env LD_DEBUG_OUTPUT=/loader/ld-probe \
		--entrypoint /loader/probe "$image" /opt/tfcat/lib/libtensorflow/lib/libtensorflow_cc.so.2 \
		>"$dir/probe.out" 2>"$dir/probe.err" || { cat "$dir/probe.err" >&2; die "the loader probe failed"; }
	in_image --volume "$dir:/loader" "${env[@]}" --env LD_DEBUG_OUTPUT=/loader/ld-version \
		"$image" version >"$dir/version.out" 2>"$dir/version.err" || { cat "$dir/version.err" >&2; die "tfcat version failed"; }
	python3 - "$dir" "$cudnn_minor" <<-'EOF'
		import glob, re, sys
		d, cudnn_minor = sys.argv[1], int(sys.argv[2])
		driver = re.compile(r"^lib(cuda|nvidia-[\w-]+)\.so(\.\d+)*$")  # the NVIDIA driver's, not the image's
		cuda = re.compile(r"^lib(cuda|cublas|cufft|curand|cusolver|cusparse|cudnn|nvJitLink|nvrtc|nccl|cupti|nvidia-)")

		def loader(prefix):
		    """soname -> (path or None, [asked by]) from LD_DEBUG=libs,files output."""
		    found, asked, last_try = {}, {}, None
		    for f in glob.glob(f"{d}/{prefix}.*"):
		        for line in open(f, errors="replace"):
		            line = line.split(":", 1)[-1].strip()
		            if m := re.match(r"file=(\S+) \[0\];\s+(?:dynamically loaded|needed) by (\S+)", line):
		                asked.setdefault(m[1], []).append(m[2].rsplit("/", 1)[-1])
		            elif m := re.match(r"trying file=(\S+)", line):
		                last_try = m[1]
		            elif m := re.match(r"file=(\S+) \[0\];\s+generating link map", line):
		                found[m[1]] = last_try
		    if not asked:
		        sys.exit(f"no LD_DEBUG output for {prefix} in {d}")
		    out = {}
		    for name, by in asked.items():
		        if name.startswith("/") or not cuda.match(name):
		            continue
		        path = found.get(name)
		        # cuDNN asks for libcudnn_X.so.9.3.0 and .so.9.3 before .so.9: one library.
		        major = re.sub(r"^(.*\.so\.\d+)(\.\d+)+$", r"\1", name)
		        if path is None and major != name and found.get(major):
		            continue
		        out[name] = (path, sorted(set(by)))
		    return out

		def judge(what, libs):
		    bad = []
		    for name, (path, by) in sorted(libs.items()):
		        state = path or ("not found: the NVIDIA driver's, absent here" if driver.match(name) else "NOT FOUND")
		        print(f"  {name:40} {state}   (asked by {', '.join(by)})")
		        if path is None and not driver.match(name):
		            bad.append(name)
		    if bad:
		        sys.exit(f"{what}: the loader did not find {', '.join(bad)}")

		err = open(f"{d}/probe.err", errors="replace").read()
		opened = re.findall(r"dso_loader\.cc:\d+\] Successfully opened dynamic library (\S+)", err)
		failed = re.findall(r"dso_loader\.cc:\d+\] Could not load dynamic library '([^']+)'; dlerror: ([^;\n]*)", err)
		print("TensorFlow's loader (tsl DsoLoader::MaybeTryDlopenGPULibraries, its dso_loader messages):")
		for name in dict.fromkeys(opened):
		    print(f"  {name:40} opened")
		for name, why in failed:
		    print(f"  {name:40} COULD NOT LOAD: {why}")
		print("The dynamic loader (LD_DEBUG=libs), every CUDA/cuDNN library asked for while TensorFlow opened them:")
		libs = loader("ld-probe")
		judge("TensorFlow's CUDA libraries", libs)
		if failed:
		    sys.exit(f"TensorFlow could not load {', '.join(n for n, _ in failed)}")
		need = {"libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12", "libcufft.so.11", "libcusolver.so.11",
		        "libcusparse.so.12", "libnvJitLink.so.12", "libcudnn.so.9"}
		if missing := need - set(opened) - {n for n, (p, _) in libs.items() if p}:
		    sys.exit(f"TensorFlow's loader never opened {', '.join(sorted(missing))}: did the probe run its loader?")

		out = open(f"{d}/probe.out").read()
		m = re.search(r"cudnn version (\d+)", out)
		v = int(m[1]) if m else 0
		print(f"cuDNN {v // 10000}.{v % 10000 // 100}.{v % 100} (TensorFlow 2.18 needs 9.x with x >= {cudnn_minor})")
		if v // 10000 != 9 or v % 10000 // 100 < cudnn_minor:
		    sys.exit(f"cuDNN version {v}: TensorFlow refuses it")
		checks = re.findall(r"cudnn (cudnn\w+VersionCheck) (-?\d+)", out)
		print("  " + ", ".join(f"{c}: {s}" for c, s in checks))
		if len(checks) != 4 or any(s != "0" for _, s in checks):
		    sys.exit("a cuDNN sub-library did not load (status 0 wanted)")
		engines = re.findall(r"cudnn engine (\S+) (.*)", out)
		print("  " + ", ".join(f"{e}: {how}" for e, how in engines))
		if len(engines) != 3 or any(how != "loaded" for _, how in engines):
		    sys.exit("a cuDNN engine library did not load")

		print("tfcat version (TFCAT_TF_LOGS=1, TF_CPP_MIN_LOG_LEVEL=0):")
		judge("tfcat version", loader("ld-version"))
		verr = open(f"{d}/version.err", errors="replace").read()
		m = re.search(r"failed call to cuInit: .*", verr)
		print(f"  TensorFlow: {m[0] if m else 'no cuInit line'}")
		if not m or not m[0].endswith("(303)"):
		    sys.exit("TensorFlow's cuInit did not fail for want of the driver library (303)")
		if "GPUs: none visible" not in open(f"{d}/version.out").read():
		    sys.exit("tfcat version does not say 'GPUs: none visible'")
		print("  tfcat: GPUs: none visible -- for want of libcuda.so.1 (the driver) alone")
	EOF
}

# gpu_image_facts: the CUDA libraries in the image (none added by tfcat's layers: they
# are the base's), no CUDA toolkit, and the C and C++ runtime versions the image's own
# files need, against the default base's distribution (the stand-in is Debian).
gpu_image_facts() {
	local mnt f n total=0 bad= need glibc glibcxx have_glibc have_glibcxx
	mnt=$(pm image mount "$image") || die "podman image mount failed"
	while IFS= read -r -d '' f; do
		n=$(readelf -S --wide "$f" | grep -c '\.debug_' || true)
		[[ $n -eq 0 ]] || bad+=" ${f#"$mnt"}"
		total=$((total + $(stat -c %s "$f")))
	done < <(find "$mnt/usr/local/cuda-$cuda_series/" "$mnt/usr/lib/x86_64-linux-gnu/" -name 'lib*.so*' -type f \
		\( -path '*/cuda-*' -o -name 'libcudnn*' \) -print0)
	printf '  CUDA and cuDNN libraries (the base'"'"'s): %d MB, no debug sections\n' $((total / 1000000))
	[[ -z $bad ]] || { pm image unmount "$image" >/dev/null; die "CUDA libraries with debug information:$bad"; }
	if [[ -n $(find "$mnt/usr/local/cuda-$cuda_series/" "$mnt/opt/tfcat" \( -name '*.a' -o -name '*.h' -o -name nvcc -o -name ptxas \) -print -quit) ]]; then
		pm image unmount "$image" >/dev/null
		die "the image has CUDA toolkit files (headers, static libraries, nvcc or ptxas)"
	fi
	need=$(for f in "$mnt/usr/local/bin/tfcat" "$mnt"/opt/tfcat/lib/extra/*.so* "$mnt"/opt/tfcat/lib/libtensorflow/lib/*.so.2; do
		objdump -T "$f" | grep -oE '\b(GLIBC|GLIBCXX)_[0-9.]+\b'
	done | sort -u)
	pm image unmount "$image" >/dev/null
	glibc=$(grep '^GLIBC_' <<<"$need" | sort -V | tail -n 1)
	glibcxx=$(grep '^GLIBCXX_' <<<"$need" | sort -V | tail -n 1)
	case "$gpu_base_default" in
	*-ubuntu22.04) have_glibc=GLIBC_2.35 have_glibcxx=GLIBCXX_3.4.30 ;; # glibc 2.35, libstdc++ of GCC 12
	*-ubuntu24.04) have_glibc=GLIBC_2.39 have_glibcxx=GLIBCXX_3.4.33 ;; # glibc 2.39, libstdc++ of GCC 14
	*) die "no glibc and libstdc++ versions known for $gpu_base_default: add them to ${BASH_SOURCE[0]}" ;;
	esac
	echo "  tfcat, libjpeg and libtensorflow need $glibc and $glibcxx; ${gpu_base_default##*-} has $have_glibc and $have_glibcxx"
	[[ $(printf '%s\n' "$glibc" "$have_glibc" | sort -V | tail -n 1) == "$have_glibc" ]] ||
		die "the image's files need $glibc, newer than $gpu_base_default's $have_glibc"
	[[ $(printf '%s\n' "$glibcxx" "$have_glibcxx" | sort -V | tail -n 1) == "$have_glibcxx" ]] ||
		die "the image's files need $glibcxx, newer than $gpu_base_default's $have_glibcxx"
}

# gpu_device: asking for the GPU that is not there is one line and exit status 1.
gpu_device() {
	local rc=0 err=$tmp/gpu-device.err
	in_image "${work_mount[@]}" "$image" train --data /work/train --size 28 --channels 1 \
		--iterations 5 --device /gpu:0 --model-dir /work/gpu-model >/dev/null 2>"$err" || rc=$?
	echo "exit status $rc; stderr:"
	cat "$err"
	[[ $rc -eq 1 ]] || die "train --device /gpu:0 exited with status $rc, want 1"
	[[ $(wc -l <"$err") -eq 1 ]] || die "train --device /gpu:0 wrote $(wc -l <"$err") lines to stderr, want 1"
	grep -q '/gpu:0.*no GPU' "$err" || die "the error line does not name /gpu:0 and the missing GPU"
}
