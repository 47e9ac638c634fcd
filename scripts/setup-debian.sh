#!/usr/bin/env bash
# Installs the Debian packages tfcat's build, demo and tests use, when missing:
#   dataset-fashion-mnist  real images for the demo, tests and benchmarks
#   libjpeg62-turbo-dev    libjpeg-turbo, which tfcat's JPEG decoder links (OpenCV's decoder)
#   gcc, unzip             cgo and the wheel tools
# With --test (scripts/test.sh), also what only the tests use:
#   chromium               the headless browser that opens tfcat report's page and
#                          tfcat serve's page in the tests (internal/browser)
#   fonts-dejavu-core      a font for the browser's screenshots
#   podman buildah crun fuse-overlayfs debootstrap curl binutils
#                          scripts/container-check.sh: builds and runs the image
set -euo pipefail
pkgs=(dataset-fashion-mnist libjpeg62-turbo-dev gcc)
[[ ${1:-} == --test ]] && pkgs+=(chromium fonts-dejavu-core podman buildah crun fuse-overlayfs debootstrap curl binutils)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && { echo "Debian packages present: ${pkgs[*]}"; exit 0; }
sudo=
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || { echo "setup-debian: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
