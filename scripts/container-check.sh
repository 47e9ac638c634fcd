#!/usr/bin/env bash
# Builds the CPU image from the repository's Dockerfile with podman and runs it:
# `tfcat version` as the image's non-root user, the demo's data, a short training
# run and predictions on a mounted folder, and `tfcat serve` answering the host on
# loopback, its HEALTHCHECK, SIGTERM stopping it with exit status 0, and
# scripts/gpu-check.sh as the README runs it on a GPU host (here on /cpu:0). Prints
# the image's size, each layer's size and each step's time; fails at the first
# step that does not hold. Needs root, podman, debootstrap, go and Debian's
# dataset-fashion-mnist (scripts/setup-debian.sh --test installs them).
#
#   scripts/container-check.sh           # reuses the cached stand-in base images
#   scripts/container-check.sh --fresh   # deletes the cache first (podman storage, stand-ins)
#   scripts/container-check.sh --gpu     # the GPU image instead (VARIANT=gpu)
#
# --gpu builds VARIANT=gpu on a CUDA stand-in made from NVIDIA's PyPI wheels (see
# scripts/container-check-gpu.sh, which holds its steps) and checks it short of the
# driver: every CUDA and cuDNN library TensorFlow opens is found by the loader in
# the container (from the loader's own messages, not ldd: TensorFlow dlopens
# them), no GPU is visible only for want of libcuda, `tfcat version` says so in one
# line with no TensorFlow log line, training and prediction run on /cpu:0, and
# `--device /gpu:0` fails with one line; then serve and gpu-check.sh as for the
# CPU image. It downloads about 2.1 GB the first time (the tensorflow wheel and
# NVIDIA's), kept in the wheel cache, and needs a C compiler (cc) and objdump.
#
# No container registry is contacted (every image is local, --pull=never). The
# base images are local stand-ins for the Dockerfile's defaults, made once and
# cached with podman's storage in ~/.cache/tfcat/podman (TFCAT_CACHE overrides
# ~/.cache/tfcat):
#   debian:bookworm-slim  debootstrap --variant=minbase bookworm from the Debian archive
#   golang:X-bookworm     that, plus gcc and make, plus the Go toolchain from the Go
#                         module proxy (the golang.org/toolchain module GOTOOLCHAIN uses)
# The build installs libtensorflow with scripts/install-libtensorflow.sh, as any
# build of the Dockerfile does; the wheel cache (~/.cache/tfcat/wheels) is mounted
# into the build, so a cached wheel is not downloaded again, and an empty one is
# filled; Go's build cache is kept in ~/.cache/tfcat/podman/go-build. Everything
# the check starts (containers, its working folder, the image it built and the
# build's layers) is removed when it ends; the stand-ins stay.
#
# Workarounds for hosts with a hybrid cgroup layout (both harmless elsewhere):
# builds use --isolation=chroot; containers run with --cgroups=disabled, ulimits
# within the host's hard limits, inside a private mount namespace where
# /sys/fs/cgroup/unified is unmounted (crun refuses the hybrid layout). Podman's
# storage is the check's own folder, and no cgroup is created. A build whose HTTPS
# goes through an inspecting proxy gets the host's CA bundle mounted read-only
# (SSL_CERT_FILE, default /etc/ssl/certs/ca-certificates.crt); it is not put in
# the image.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "container-check: $*" >&2; exit 1; }

fresh=false
variant=cpu
for arg in "$@"; do
	case "$arg" in
	--fresh) fresh=true ;;
	--gpu) variant=gpu ;;
	-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$arg' (use --fresh, --gpu or --help)" ;;
	esac
done

[[ $(id -u) -eq 0 ]] || die "needs root (rootful podman and debootstrap)"
needs=(podman debootstrap unshare go tar curl python3 readelf timeout)
[[ $variant == cpu ]] || needs+=(cc objdump)
for c in "${needs[@]}"; do
	command -v "$c" >/dev/null || die "$c not found: run scripts/setup-debian.sh --test (Debian packages podman buildah crun fuse-overlayfs debootstrap)"
done
fmnist=/usr/share/datasets/fashion-mnist
[[ -f $fmnist/t10k-images-idx3-ubyte.gz ]] || die "$fmnist is missing: run scripts/setup-debian.sh (dataset-fashion-mnist)"

# The Go toolchain in the golang stand-in: a release of the Dockerfile's GO_VERSION.
go_toolchain=go1.26.11
df_go=$(sed -n 's/^ARG GO_VERSION=//p' "$root/Dockerfile")
[[ -n $df_go ]] || die "Dockerfile has no 'ARG GO_VERSION=' line"
[[ $go_toolchain == "go$df_go."* ]] || die "the golang stand-in's toolchain $go_toolchain is not a go$df_go release (Dockerfile's GO_VERSION): update go_toolchain in ${BASH_SOURCE[0]}"

tf_version=$(tr -d ' \n' <"$root/TENSORFLOW_VERSION")
tfcat_version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)

cache=${TFCAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfcat}
store=$cache/podman
wheels=$cache/wheels
debian_image=localhost/tfcat-standin/debian:bookworm-slim
golang_image=localhost/tfcat-standin/golang:${go_toolchain#go}-bookworm
image=localhost/tfcat:check-$variant-$$
mirror=${TFCAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${TFCAT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

podman_cmd=(podman --root "$store/storage" --runroot "$store/run" --cgroup-manager cgroupfs
	--events-backend file --runtime crun)
# podman_ns runs podman in a private mount namespace without the cgroup v2 part of
# a hybrid layout, which crun refuses; the host's mounts are untouched.
podman_ns=(unshare -m --propagation private bash -c '
	if mountpoint -q /sys/fs/cgroup/unified && [[ -d /sys/fs/cgroup/memory ]]; then
		umount /sys/fs/cgroup/unified || exit 1
	fi
	exec "$@"' podman_ns "${podman_cmd[@]}")
pm() { "${podman_cmd[@]}" "$@"; }
pm_ns() { "${podman_ns[@]}" "$@"; }
hard_nofile=$(ulimit -Hn)
hard_nproc=$(ulimit -Hu)
[[ $hard_nofile == unlimited || $hard_nofile -gt 20000 ]] && hard_nofile=20000
[[ $hard_nproc == unlimited || $hard_nproc -gt 32768 ]] && hard_nproc=32768
run_flags=(--pull=never --cgroups=disabled --ulimit "nofile=$hard_nofile:$hard_nofile" --ulimit "nproc=$hard_nproc:$hard_nproc")

# One check at a time per cache: the end of one prunes layers another may be using.
mkdir -p "$cache"
exec 9>"$cache/podman.lock"
if ! flock -n 9; then
	echo "waiting for another container-check using $store ..."
	flock -w 3600 9 || die "another container-check has held $store for an hour"
fi
if $fresh && [[ -d $store ]]; then
	echo "== --fresh: deleting $store"
	pm_ns rm --all --force >/dev/null 2>&1 || true
	pm rmi --all --force >/dev/null 2>&1 || true
	rm -rf "$store"
fi
mkdir -p "$store/storage" "$store/run" "$store/tmp" "$store/go-build" "$wheels"

tmp=$(mktemp -d "$store/tmp/check.XXXXXX")
containers=()
serve_pid=
cleanup() {
	local rc=$?
	set +e
	if [[ -n $serve_pid ]]; then
		kill "$serve_pid" 2>/dev/null
		wait "$serve_pid" 2>/dev/null
	fi
	for c in "${containers[@]}"; do
		pm_ns rm --force --ignore "$c" >/dev/null 2>&1
	done
	if pm image exists "$image" 2>/dev/null; then
		pm rmi --force "$image" >/dev/null 2>&1
	fi
	# The build's intermediate layers go too (they are a gigabyte); the stand-ins stay.
	pm image prune --force >/dev/null 2>&1
	rm -rf "$tmp"
	if [[ $rc -ne 0 ]]; then
		echo "container-check: FAILED in step: ${current_step:-setup}" >&2
		echo "container-check: $passed passed, 1 failed"
	fi
	exit "$rc"
}
passed=0
current_step=
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME FUNCTION: runs a step and records its time.
times=()
step() {
	current_step=$1
	echo "== $1"
	local t0=$EPOCHREALTIME
	"$2"
	local s
	s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	times+=("$(printf '%-28s %7ss' "$1" "$s")")
	echo "-- $1: ${s}s"
	passed=$((passed + 1))
	current_step=
}

# show_log FILE: the end of a log, when a step fails.
show_log() {
	echo "---- last lines of $1" >&2
	tail -n 60 "$1" >&2
	echo "----" >&2
}

debian_standin() {
	if pm image exists "$debian_image"; then
		echo "cached: $debian_image"
		return
	fi
	local rootfs=$tmp/rootfs log=$tmp/debootstrap.log
	echo "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
	# In a private mount namespace: the /proc and /sys debootstrap mounts vanish with it.
	if ! unshare -m --propagation private debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
		show_log "$log"
		die "debootstrap failed"
	fi
	# As Docker's debian:bookworm-slim: the archive, updates and security sources,
	# no documentation, no package cache or lists.
	rm -f "$rootfs/etc/apt/sources.list"
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $security_mirror
		Suites: bookworm-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/groff/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/lintian/*
		path-exclude /usr/share/linda/*
	EOF
	cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
	EOF
	find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$rootfs"/usr/share/{man,groff,info,locale,lintian,linda}/* \
		"$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
		"$rootfs"/var/log/* "$rootfs"/tmp/*
	tar --numeric-owner -C "$rootfs" -c . |
		pm import --change 'CMD ["bash"]' \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			- "$debian_image" >/dev/null || die "podman import of the debootstrap root failed"
	rm -rf "$rootfs"
	echo "made $debian_image"
}

golang_standin() {
	if pm image exists "$golang_image"; then
		echo "cached: $golang_image"
		return
	fi
	local ctx=$tmp/golang-ctx dir log=$tmp/golang.log
	mkdir -p "$ctx"
	echo "Go $go_toolchain from the Go module proxy (golang.org/toolchain)"
	dir=$(cd "$tmp" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "golang.org/toolchain@v0.0.1-$go_toolchain.linux-amd64" |
		python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error", "no Dir")))') ||
		die "downloading $go_toolchain from the Go module proxy failed"
	cp -r "$dir" "$ctx/go"
	# The module zip keeps no file modes; GOTOOLCHAIN sets them as here.
	chmod -R u+w,a+rX "$ctx/go"
	chmod a+x "$ctx"/go/bin/* "$ctx"/go/pkg/tool/*/*
	"$ctx/go/bin/go" version | grep -q " $go_toolchain " || die "$ctx/go/bin/go is not $go_toolchain"
	# As Docker's golang:X-bookworm: a C toolchain, make, and Go in /usr/local/go.
	cat >"$ctx/Containerfile" <<-EOF
		FROM $debian_image
		RUN apt-get update \\
		 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make pkg-config \\
		 && rm -rf /var/lib/apt/lists/*
		COPY go /usr/local/go
		ENV GOLANG_VERSION=${go_toolchain#go} GOTOOLCHAIN=local GOPATH=/go \\
		    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		WORKDIR /go
	EOF
	if ! pm build --isolation=chroot --pull=never --layers=false -t "$golang_image" "$ctx" >"$log" 2>&1; then
		show_log "$log"
		die "building $golang_image failed"
	fi
	rm -rf "$ctx"
	echo "made $golang_image"
}

build_image() {
	local log=$tmp/build.log ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt} gpu_base=$debian_image
	[[ $variant == cpu ]] || gpu_base=$cuda_image
	local args=(
		--isolation=chroot --pull=never --layers --format docker
		--build-arg "VARIANT=$variant"
		--build-arg "GO_IMAGE=$golang_image"
		--build-arg "CPU_BASE=$debian_image"
		# podman 4.3's buildah skips base-cpu as unused (it does not follow
		# FROM base-${VARIANT}): build every stage; for the CPU image base-gpu
		# is the Debian stand-in, which it does not use.
		--skip-unused-stages=false --build-arg "GPU_BASE=$gpu_base"
		--build-arg "TENSORFLOW_VERSION=$tf_version"
		--build-arg "TFCAT_VERSION=$tfcat_version"
		--volume "$wheels:/root/.cache/tfcat/wheels"
		--volume "$store/go-build:/root/.cache/go-build"
	)
	if [[ -f $ca ]]; then
		args+=(--volume "$ca:/run/tfcat-build-ca.crt:ro"
			--build-arg SSL_CERT_FILE=/run/tfcat-build-ca.crt
			--build-arg PIP_CERT=/run/tfcat-build-ca.crt)
	fi
	echo "podman build -f Dockerfile --build-arg VARIANT=$variant -t $image (log: $log)"
	if ! timeout 2400 "${podman_cmd[@]}" build "${args[@]}" -t "$image" "$root" >"$log" 2>&1; then
		show_log "$log"
		die "podman build failed"
	fi
	grep -E 'already installed|installed in|downloading' "$log" | sed 's/^/  build: /' || true
}

# in_image ARGS...: a container of the check's image, removed afterwards; no network.
in_image() {
	timeout 600 "${podman_ns[@]}" run --rm --network none --no-healthcheck "${run_flags[@]}" "$@"
}

# no_tf_logs FILE WHAT: WHAT (a command whose stderr is FILE) wrote no TensorFlow or
# absl log line: tfcat keeps them off unless asked (TF_CPP_MIN_LOG_LEVEL, TFCAT_TF_LOGS).
tf_log_re='^([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+: [IWEF] |[IWEF][0-9]{4} [0-9:.]+ +[0-9]+ |WARNING: All log messages before absl)'
no_tf_logs() {
	if grep -Eq "$tf_log_re" "$1"; then
		grep -E "$tf_log_re" "$1" | head -n 5 >&2
		die "$2 wrote TensorFlow log lines to stderr (above)"
	fi
}

# The image's size budget: the CPU image is libtensorflow on Debian; the GPU image
# adds the CUDA-enabled libtensorflow (1.04 GB stripped) and the stand-in's CUDA and
# cuDNN libraries (2.1 GB, only those TensorFlow opens).
budget_mb=700
[[ $variant == cpu ]] || budget_mb=3500

image_facts() {
	local size user labels tools libs mnt
	size=$(pm image inspect --format '{{.Size}}' "$image")
	image_size_mb=$(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1e6 }')
	echo "image size: $image_size_mb MB ($size bytes)"
	# Newest first, as podman lists them, the base image's at the bottom; the
	# instructions that add no file (ENV, LABEL, ...) are left out. (podman 4.3's
	# --format prints sizes rounded even with --human=false; its JSON has bytes.)
	echo "layers:"
	pm history --format json "$image" | python3 -c '
import json, re, sys
for layer in json.load(sys.stdin):
    size = layer.get("size", 0)
    if size > 0:
        how = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", layer.get("CreatedBy", ""))
        print("  %8.1f MB  %s" % (size / 1e6, re.sub(r"\s+", " ", how)[:110]))' ||
		die "podman history failed"
	# The base's share: its layers are the bottom ones above (a stand-in made with
	# --layers=false is one layer, listed under its last instruction).
	local base=$debian_image
	[[ $variant == cpu ]] || base=$cuda_image
	pm image inspect --format '{{.Size}}' "$base" |
		awk -v b="$base" -v t="$size" '{ printf "base %s: %.0f MB; the Dockerfile'"'"'s layers: %.0f MB\n", b, $1 / 1e6, (t - $1) / 1e6 }'
	[[ $image_size_mb -lt $budget_mb ]] || die "the image is $image_size_mb MB, over the $budget_mb MB budget"

	user=$(pm image inspect --format '{{.Config.User}}' "$image")
	[[ $user == 10001:10001 ]] || die "the image's user is '$user', want 10001:10001"
	labels=$(pm image inspect --format '{{index .Labels "org.opencontainers.image.version"}}|{{index .Labels "com.github.tfcat.tensorflow.version"}}|{{index .Labels "org.opencontainers.image.source"}}' "$image")
	echo "labels (version|tensorflow|source): $labels"
	[[ $labels == "$tfcat_version|$tf_version|https://"* ]] || die "labels '$labels' are not '$tfcat_version|$tf_version|<source>'"
	pm image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q tfcat-healthcheck ||
		die "the image has no HEALTHCHECK running tfcat-healthcheck"

	# No build tools and no Go toolchain in the final stage.
	# shellcheck disable=SC2016 # expanded in the container
	tools=$(in_image --entrypoint bash "$image" -c '
		for t in go gofmt gcc cc c++ ld as make strip python3 pip3 nvcc ptxas apt-get; do command -v "$t" || true; done
		ls -d /usr/local/go /go /src /root/.cache /opt/tfcat/lib/libtensorflow/include 2>/dev/null || true')
	[[ $tools == /usr/bin/apt-get ]] || die "the final image has build tools or sources: $(echo "$tools" | tr '\n' ' ')"

	# The libraries are stripped (readelf on the image's files, from the host).
	libs=/opt/tfcat/lib/libtensorflow/lib
	mnt=$(pm image mount "$image") || die "podman image mount failed"
	local f n bad=
	for f in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
		n=$(readelf -S --wide "$mnt$libs/$f" | grep -c '\.debug_' || true)
		printf '  %-30s %4d MB, %d debug sections\n' "$f" "$(($(stat -L -c %s "$mnt$libs/$f") / 1000000))" "$n"
		[[ $n -eq 0 ]] || bad+=" $f"
	done
	pm image unmount "$image" >/dev/null
	[[ -z $bad ]] || die "not stripped:$bad"
	[[ $variant == cpu ]] || gpu_image_facts
}

version_nonroot() {
	local out uid err=$tmp/version.err
	uid=$(in_image --entrypoint id "$image" -u)
	[[ $uid == 10001 ]] || die "the image runs as uid $uid, not 10001"
	out=$(in_image "$image" 2>"$err") # the image's CMD: version
	echo "$out"
	cat "$err"
	grep -q "^TensorFlow $tf_version " <<<"$out" || die "tfcat version does not report TensorFlow $tf_version"
	no_tf_logs "$err" "tfcat version"
	if [[ $variant == gpu ]]; then
		[[ $(grep -c GPU <<<"$out") -eq 1 ]] && grep -qx 'GPUs: none visible' <<<"$out" ||
			die "tfcat version does not say in one line that no GPU is visible"
		# Asked for, TensorFlow's reason is shown.
		echo "at TF_CPP_MIN_LOG_LEVEL=1, tfcat version's stderr:"
		in_image --env TF_CPP_MIN_LOG_LEVEL=1 "$image" version 2>&1 >/dev/null | grep 'cuInit' ||
			die "at TF_CPP_MIN_LOG_LEVEL=1 tfcat version does not pass on TensorFlow's cuInit line"
	fi
}

work=$tmp/work
work_mount=()
demo_data() {
	mkdir -p "$work"
	chown 10001:10001 "$work"
	work_mount=(--volume "$work:/work" --volume "$fmnist:$fmnist:ro")
	in_image "${work_mount[@]}" "$image" data fashion-mnist --out /work/train --classes tshirt-top,trouser --limit 300
	in_image "${work_mount[@]}" "$image" data fashion-mnist --out /work/test --split test --classes tshirt-top,trouser --limit 50
	local n
	n=$(find "$work/train" "$work/test" -name '*.png' | wc -l)
	[[ $n -eq 700 ]] || die "expected 700 PNG files in the mounted folder, found $n"
}

# The GPU image trains and predicts on the CPU, named: there is no GPU here.
device=()
[[ $variant == cpu ]] || device=(--device /cpu:0)

train() {
	local err=$tmp/train.err
	in_image "${work_mount[@]}" "$image" train --data /work/train --size 28 --channels 1 \
		--iterations 150 --lr 1e-3 --model-dir /work/model "${device[@]}" 2>"$err" || { cat "$err" >&2; die "train failed"; }
	cat "$err"
	no_tf_logs "$err" "tfcat train"
	[[ -f $work/model/checkpoint && -f $work/model/dogs-cats-model.meta ]] || die "train wrote no checkpoint into the mounted folder"
}

predict() {
	local csv=$work/predictions.csv
	in_image "${work_mount[@]}" "$image" predict -q --model /work/model -f csv "${device[@]}" /work/test >"$csv"
	head -n 3 "$csv"
	# file,class,p...: the class folder is the truth.
	awk -F, 'NR > 1 { n++; k = split($1, p, "/"); if (p[k - 1] == $2) ok++ }
		END { printf "predict: %d images, %d right (%.1f%%)\n", n, ok, 100 * ok / n; exit !(n == 100 && ok >= 90) }' "$csv" ||
		die "predict did not classify the 100 test images (at least 90 right)"
}

serve() {
	local port name log=$tmp/serve.log png reply t0 t1 rc health
	in_image "${work_mount[@]}" "$image" export -q --model /work/model --out /work/export
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	name=tfcat-check-serve-$$
	containers+=("$name")
	# Host network, listening on loopback only: the host's curl is the client.
	# No systemd here to time the HEALTHCHECK: the step runs it itself.
	pm_ns run --rm --name "$name" --network host "${run_flags[@]}" --health-interval disable \
		"${work_mount[@]}" "$image" serve --model /work/export --name fmnist --addr "127.0.0.1:$port" --grpc-addr 127.0.0.1:0 >"$log" 2>&1 &
	serve_pid=$!
	local up=false
	for _ in $(seq 120); do
		if curl -fsS "http://127.0.0.1:$port/v1/models/fmnist" >/dev/null 2>&1; then
			up=true
			break
		fi
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.5
	done
	$up || { show_log "$log"; die "tfcat serve did not answer on 127.0.0.1:$port within 60s"; }
	curl -fsS "http://127.0.0.1:$port/v1/models/fmnist"
	echo
	png=$(find "$work/test/trouser" -name '*.png' | sort | head -n 1)
	reply=$(curl -fsS --max-time 30 --data-binary "@$png" "http://127.0.0.1:$port/v1/models/fmnist:classify-image") ||
		die "POST :classify-image failed"
	echo "classify-image ${png#"$work"/}: $reply"
	grep -q '"class":"trouser"' <<<"$reply" || die "the reply does not classify $png as trouser"
	pm_ns exec "$name" tfcat-healthcheck || die "tfcat-healthcheck in the serve container failed"
	health=$(pm_ns healthcheck run "$name" 2>&1) || die "podman healthcheck run (the image's HEALTHCHECK) says: $health"
	echo "podman healthcheck run: ${health:-healthy}"

	t0=$EPOCHREALTIME
	pm_ns kill --signal TERM "$name" >/dev/null
	rc=0
	wait "$serve_pid" || rc=$?
	serve_pid=
	t1=$EPOCHREALTIME
	# (podman's complaint that there is no systemd to time health checks is left out)
	grep -v 'unable to get systemd connection' "$log" | sed 's/^/  serve: /'
	[[ $rc -eq 0 ]] || die "tfcat serve exited with status $rc after SIGTERM, not 0"
	grep -q 'tfcat: stopped' "$log" || die "tfcat serve did not report a clean stop"
	awk -v a="$t0" -v b="$t1" 'BEGIN { d = b - a; printf "SIGTERM: exit status 0 after %.1fs\n", d; exit !(d < 15) }' ||
		die "tfcat serve took 15s or more to stop after SIGTERM"
}

# The README's GPU-host command for scripts/gpu-check.sh, here in the CPU image
# with /cpu:0 as the second device: the script and the image work together.
gpu_check_script() {
	in_image --volume "$root/scripts:/scripts:ro" --volume "$fmnist:$fmnist:ro" \
		--env TFCAT=tfcat --env TFCAT_GPU_DEVICE=/cpu:0 --entrypoint bash "$image" /scripts/gpu-check.sh 20
}

# The GPU image's stand-in and steps; shared helpers stay here.
if [[ $variant == gpu ]]; then
	# shellcheck source=scripts/container-check-gpu.sh
	source "$root/scripts/container-check-gpu.sh"
fi

t_all=$EPOCHREALTIME
step "debian stand-in" debian_standin
step "golang stand-in" golang_standin
[[ $variant == cpu ]] || step "cuda stand-in" cuda_standin
step "build image" build_image
step "image facts" image_facts
[[ $variant == cpu ]] || step "CUDA libraries (loader)" cuda_loader
step "version (non-root)" version_nonroot
step "data (mounted folder)" demo_data
step "train" train
step "predict" predict
[[ $variant == cpu ]] || step "--device /gpu:0" gpu_device
step "serve + SIGTERM" serve
step "gpu-check.sh on /cpu:0" gpu_check_script
total=$(awk -v a="$t_all" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

echo
echo "image $image ($variant): $image_size_mb MB (tfcat $tfcat_version, TensorFlow $tf_version)"
printf '%s\n' "${times[@]}"
printf '%-28s %7ss\n' total "$total"
echo "container-check: $passed passed, 0 failed"
