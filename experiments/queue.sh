#!/usr/bin/env bash
# Trains configs one after another in the background, from a queue file you can append to while it
# runs (one config path per line). A config whose run already has metrics.json is skipped; a killed
# training resumes from its last epoch when it comes up again (experiments/train.py).
#
#   setsid nohup bash experiments/queue.sh [--pids FILE] > experiments/runs/queue.log 2>&1 &
#   echo experiments/configs/X.yaml >> experiments/runs/queue.txt
#
# --pids FILE: the running training's PID is written there (one line; emptied between runs), so
# that others can pause it (SIGSTOP/SIGCONT) for a quiet measurement. The queue waits for more
# work while the queue file is empty, and stops when experiments/runs/queue.stop exists.
set -uo pipefail
cd "$(dirname "$0")/.."
# OpenMP threads sleep instead of spinning while they wait for each other: on a machine whose cores
# are busy with other work, spinning doubled the CPU time per training step and slowed it down
# (experiments/README.md "Training on a shared machine").
export OMP_WAIT_POLICY=PASSIVE
pids=""
[ "${1:-}" = "--pids" ] && pids="$2"
q=experiments/runs/queue.txt
touch "$q"
while [ ! -e experiments/runs/queue.stop ]; do
  cfg=$(head -n 1 "$q")
  if [ -z "$cfg" ]; then sleep 30; continue; fi
  sed -i 1d "$q"
  name=$(/usr/bin/python3 -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["name"])' "$cfg") || continue
  if [ -e "experiments/runs/$name/metrics.json" ]; then echo "$(date +%T) queue: $name already trained"; continue; fi
  mkdir -p "experiments/runs/$name"
  echo "$(date +%T) queue: training $name ($cfg)"
  /usr/bin/python3 -m experiments.train "$cfg" >> "experiments/runs/$name/stdout.log" 2>&1 &
  pid=$!
  [ -n "$pids" ] && echo "$pid" > "$pids"
  wait "$pid"
  rc=$?
  [ -n "$pids" ] && : > "$pids"
  echo "$(date +%T) queue: $name exited with $rc"
done
