#!/usr/bin/env bash
# Runs one benchmark alone on a machine shared with other work, as the figures in
# docs/benchmarks.md and docs/experiments.md that name it were measured:
# - one such run at a time (a lock file: ALONE_LOCK, default $TMPDIR/segserve-alone.lock);
# - the processes whose PIDs are listed in the file SEGSERVE_PAUSE_PIDS (e.g. a background model
#   training), and their children, stopped while it runs and resumed after, even on Ctrl-C;
# - the command in its own session whose autogroup has nice ALONE_PRIO (default −19, needs root),
#   so that other work (builds, tests) gets only the CPU it leaves. ALONE_PRIO=0 runs it at normal
#   priority: a benchmark that brings its own CPU burners (bench/promotion.mjs).
#
#   bash bench/alone.sh node bench/run.mjs --scenarios matrix …
#   SEGSERVE_PAUSE_PIDS=experiments/runs/training.pids bash bench/alone.sh node bench/hostile.mjs …
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: bash bench/alone.sh <command> [args…]" >&2; exit 2; }
exec 9>"${ALONE_LOCK:-${TMPDIR:-/tmp}/segserve-alone.lock}"
flock 9
pids=""
if [ -n "${SEGSERVE_PAUSE_PIDS:-}" ] && [ -r "$SEGSERVE_PAUSE_PIDS" ]; then pids=$(tr '\n' ' ' < "$SEGSERVE_PAUSE_PIDS"); fi
resume() { for p in $pids; do pkill -CONT -P "$p"; kill -CONT "$p"; done 2>/dev/null; }
trap resume EXIT
trap 'exit 130' INT TERM
for p in $pids; do kill -STOP "$p"; pkill -STOP -P "$p"; done 2>/dev/null
# the variable is this wrapper's own: the services' configuration refuses unknown SEGSERVE_ variables
unset SEGSERVE_PAUSE_PIDS
setsid -w bash -c 'echo "$0" > /proc/self/autogroup 2>/dev/null || echo "bench/alone.sh: could not set the autogroup priority $0 (not root?): running at normal priority" >&2; exec "$@"' "${ALONE_PRIO:--19}" "$@"
