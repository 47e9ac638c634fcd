#!/usr/bin/env bash
# tfcat against the Python tutorial, side by side (scripts/bench/run.py): sets up
# the test environment (Python TensorFlow, OpenCV), builds tfcat, prepares the
# data and prints the table of ratios. Arguments go to run.py, e.g.
#   scripts/bench.sh --repeats 5 --markdown
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup-debian.sh >/dev/null
bash scripts/install-libtensorflow.sh >/dev/null
bash scripts/setup-python.sh >/dev/null
make --no-print-directory build >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "tfcat $(bin/tfcat version --json | sed 's/.*"tfcat":"\([^"]*\)".*/\1/'), TensorFlow $(tr -d '\n' < TENSORFLOW_VERSION) (same library on both sides)"
exec .venv/bin/python scripts/bench/run.py --tfcat "$root/bin/tfcat" "$@"
