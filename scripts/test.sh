#!/usr/bin/env bash
# The README's test command: sets up everything (Debian packages, the browser the
# page tests drive, libtensorflow, the Python reference stack) and runs go vet and
# every test, Python reference checks included. Nothing is skipped for a missing
# dependency.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-debian.sh --test
bash scripts/install-libtensorflow.sh
bash scripts/setup-python.sh
make test
