#!/usr/bin/env bash
# The README's test command: sets up everything (Debian packages, the browser the
# page tests drive, podman for the container check, libtensorflow, the Python
# reference stack) and runs go vet and every test, Python reference checks
# included, then builds the Docker image and runs it in containers
# (scripts/container-check.sh, as root: rootful podman). Nothing is skipped for a
# missing dependency.
#
#   scripts/test.sh               # everything above (CI's command)
#   scripts/test.sh --gpu-image   # only the GPU image's check (container-check.sh --gpu)
#
# The GPU image's check is not part of the default: it downloads about 2.1 GB
# (the tensorflow wheel and NVIDIA's CUDA and cuDNN wheels) into an empty cache and
# builds a 3.3 GB image (5 to 8 minutes with nothing cached, 2 with). Run it after changing what goes into that image: the
# Dockerfile, TENSORFLOW_VERSION, the install scripts and wheel checksums, the
# container-check scripts, and tfcat's GPU reporting or log filtering (tflog).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case "${1:-}" in
"") ;;
--gpu-image)
	bash scripts/setup-debian.sh --test
	if [[ $(id -u) -eq 0 ]]; then
		exec bash scripts/container-check.sh --gpu
	fi
	exec sudo bash scripts/container-check.sh --gpu
	;;
*)
	echo "test.sh: unknown argument '$1' (none, or --gpu-image)" >&2
	exit 2
	;;
esac
bash scripts/setup-debian.sh --test
bash scripts/install-libtensorflow.sh
bash scripts/setup-python.sh
make test
if [[ $(id -u) -eq 0 ]]; then
	bash scripts/container-check.sh
else
	sudo bash scripts/container-check.sh
fi
