#!/usr/bin/env bash
# Runs a command, and when it fails, repeats the lines that say why at the end
# of the output: CI shows only the last lines of a long log, where a failing
# test's own lines would otherwise be far above.
#   bash scripts/failures.sh COMMAND [ARG ...]
# Repeated: `--- FAIL` lines, test log lines (`name_test.go:NN: ...`), a
# testscript failure with the two lines before it, and panics; at most 40.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [[ $status != 0 ]]; then
	echo "== why it failed (repeated from above):"
	awk '
		/--- FAIL|_test\.go:[0-9]+:|^panic:|\[FAIL\]/ { print; next }
		/FAIL: .*\.txtar:[0-9]+:/ { if (p2 != "") print p2; if (p1 != "") print p1; print; next }
		{ p2 = p1; p1 = $0 }
	' "$log" | cut -c1-400 | head -n 40
fi
exit "$status"
