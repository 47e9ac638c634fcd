#!/usr/bin/env bash
# Fuzz one target for a fixed time: scripts/fuzz.sh PACKAGE TARGET DURATION
# (make fuzz calls it with Go's flags in GOFUZZFLAGS).
#
# Go's fuzzing coordinator can end a run with "context deadline exceeded" and a
# failure when -fuzztime runs out while a worker is still executing or
# minimizing an input; it then writes no reproducer. A real failure always
# writes one, under PACKAGE/testdata/fuzz/TARGET. So: a failure that wrote a
# reproducer fails; a deadline failure without one is reported and the target
# fuzzed once more, and a second failure of any kind fails.
set -uo pipefail
pkg=$1 target=$2 duration=$3
go=${GO:-go}
corpus="$pkg/testdata/fuzz/$target"
read -r -a flags <<< "${GOFUZZFLAGS:-}"
list() { ls -1 "$corpus" 2>/dev/null | sort; }
for attempt in 1 2; do
	before=$(list)
	out=$(mktemp)
	"$go" test "${flags[@]}" -fuzz="^$target\$" -fuzztime="$duration" "./$pkg/" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	added=$(comm -13 <(echo "$before") <(list))
	if [[ $rc -eq 0 ]]; then
		rm -f "$out"
		exit 0
	fi
	if [[ -n $added ]]; then
		echo "fuzz: $target failed; reproducer: $corpus/$added" >&2
		rm -f "$out"
		exit 1
	fi
	if [[ $attempt -eq 1 ]] && grep -q 'context deadline exceeded' "$out"; then
		echo "fuzz: $target ended at its deadline with Go's 'context deadline exceeded' and no reproducer (a known fuzzing-coordinator race); fuzzing it once more" >&2
		rm -f "$out"
		continue
	fi
	rm -f "$out"
	exit "$rc"
done
