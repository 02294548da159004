#!/usr/bin/env bash
# Runs the GoogleTest binary and ends with one plain summary line ("gtest: N passed, M failed"),
# which CI reads; the exit code is the binary's.
set -uo pipefail
bin=$1; shift
log=$(mktemp)
"$bin" --gtest_color=no "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
rm -f "$log"
echo "gtest: ${passed:-0} passed, ${failed:-0} failed"
if [ "$rc" -ne 0 ] && [ -z "$failed" ]; then echo "test binary exited with status $rc"; fi
exit "$rc"
