#!/usr/bin/env bash
# The README's test command: sets up everything (Debian packages, the browser the
# page tests drive, podman for the container check, libtensorflow, the Python
# reference stack) and runs go vet and every test, Python reference checks
# included, then builds the Docker image and runs it in containers
# (scripts/container-check.sh, as root: rootful podman). Nothing is skipped for a
# missing dependency.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-debian.sh --test
bash scripts/install-libtensorflow.sh
bash scripts/setup-python.sh
make test
if [[ $(id -u) -eq 0 ]]; then
	bash scripts/container-check.sh
else
	sudo bash scripts/container-check.sh
fi
