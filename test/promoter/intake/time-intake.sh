#!/usr/bin/env bash
# How long intake + verification take through the real promoter (not part of `npm test`):
# a nats-server, `segserve promoter` (local driver, bundled policy), then `segserve publish` of
# a version, timed until the verification is done (the rollout leaves Verifying).
#
#   bash test/promoter/intake/time-intake.sh                         # facade-ads/2, first model
#   bash test/promoter/intake/time-intake.sh models/facade-ads/3 models/facade-ads/2   # v3 vs stable v2
set -euo pipefail
cd "$(dirname "$0")/../../.."
MODEL=${1:-models/facade-ads/2}
STABLE=${2:-}
W=$(mktemp -d /tmp/segserve-time-intake-XXXX)
NATS_BIN=$(command -v nats-server || echo /usr/sbin/nats-server)
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
"$NATS_BIN" -js -a 127.0.0.1 -p "$PORT" -sd "$W/js" > "$W/nats.log" 2>&1 & NATS=$!
PROM=
trap '[ -n "$PROM" ] && kill $PROM 2>/dev/null && wait $PROM 2>/dev/null; kill $NATS; rm -rf "$W/js"' EXIT
until grep -q "Server is ready" "$W/nats.log"; do sleep 0.2; done
export SEGSERVE_NATS_URL=nats://127.0.0.1:$PORT
SEGSERVE=(node packages/cli/dist/bin.js)
"${SEGSERVE[@]}" keys generate --out "$W/seed" > /dev/null
SIGNER=$("${SEGSERVE[@]}" keys public --seed-file "$W/seed")
env SEGSERVE_SIGNERS="$SIGNER" SEGSERVE_METRICS_PORT=0 ${STABLE:+SEGSERVE_INITIAL_STABLE=$STABLE} MALLOC_ARENA_MAX=2 \
  "${SEGSERVE[@]}" promoter > "$W/promoter.log" 2>&1 & PROM=$!
until grep -q '"msg":"running"' "$W/promoter.log" 2>/dev/null; do sleep 0.2; kill -0 $PROM || { cat "$W/promoter.log"; exit 1; }; done
ms() { date +%s%3N; }
T0=$(ms)
CI=true "${SEGSERVE[@]}" publish --model "$MODEL" --seed-file "$W/seed" > "$W/publish.out"
T1=$(ms)
until grep -q '"msg":"phase".*"phase":"\(Canary\|Promoting\|Failed\)"' "$W/promoter.log" || grep -q '"status":"rejected"' "$W/promoter.log"; do sleep 0.1; done
T2=$(ms)
at() { grep -m1 "$1" "$W/promoter.log" | sed -E 's/.*"time":"([^"]+)".*/\1/'; }
echo "model $MODEL${STABLE:+ against the stable $STABLE}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "publish (upload + signed result):      $((T1 - T0)) ms"
echo "publish → verification done:           $((T2 - T0)) ms"
echo "  handed to the runner:                $(at 'handing the candidate')"
echo "  candidate measured:                  $(at 'candidate measured')"
grep -E '"msg":"(candidate measured|stable measured|phase|decision)"' "$W/promoter.log" | cut -c1-260
echo "logs: $W"
