#!/usr/bin/env bash
# The static checks of `npm test`, side by side: the type-check, the lint and the Python unit tests
# each use one core, so on a 2-core machine together they take about as long as the longest alone.
# Each one's output is printed whole when it ends; the script fails when any of them failed.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
names=(typecheck lint test:python)
pids=()
for n in "${names[@]}"; do
  npm run --silent "$n" >"$logs/$n.log" 2>&1 &
  pids+=($!)
done
failed=()
for i in "${!names[@]}"; do
  n=${names[$i]}
  if wait "${pids[$i]}"; then status=ok; else status=FAILED; failed+=("$n"); fi
  echo "── npm run $n: $status"
  cat "$logs/$n.log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "checks failed: ${failed[*]}" >&2
  exit 1
fi
