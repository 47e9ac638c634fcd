#!/usr/bin/env bash
# The README's first command: sets up what tfcat needs, builds it, and runs the
# main job on the embedded default data.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-debian.sh
bash scripts/install-libtensorflow.sh
make --no-print-directory build
bin/tfcat version
