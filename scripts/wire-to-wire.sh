#!/usr/bin/env bash
# Loopback wire-to-wire tick-to-order latency: `hft venue-sim` serves the built-in market and
# takes signed orders; the engine trades it in live mode; the simulator times each order from
# the market-data frame that caused it (traced through the client order id) to the order's
# arrival. Prints the simulator's percentiles and the engine's in-process tick-to-order beside
# them, both in ns.
#
#   scripts/wire-to-wire.sh [SECONDS] [IDLE]     # defaults: 30 s, idle = yield
#
# Builds the release binary if needed. Uses ports 19443 (venue) and 18000 (API) on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
idle=${2:-yield}
key=wireToWireKey0123456789
secret=wireToWireSecret0123456789abcdef
venue=127.0.0.1:19443
api=127.0.0.1:18000

cargo build --release -q -p hft-control
bin=target/release/hft

"$bin" venue-sim --listen "$venue" --rate 200 --api-key "$key" --api-secret "$secret" \
  --balance USDT=1000000 --orders-per-10s 1000 >/tmp/wire-to-wire.venue.log 2>&1 &
venue_pid=$!
engine_pid=
cleanup() {
  [ -n "$engine_pid" ] && kill "$engine_pid" 2>/dev/null || true
  kill "$venue_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
sleep 1

env -i PATH="$PATH" TRADING_MODE=live API_PORT=18000 HFT_API_TOKEN=w2w \
  EXCHANGE_API_KEY="$key" EXCHANGE_API_SECRET="$secret" \
  HFT__LIVE__CONFIRM="I understand this trades real money" \
  HFT__LIVE__API_URL="ws://$venue/ws-api/v3" \
  HFT__FEED__URL="ws://$venue" HFT__FEED__API_URL="ws://$venue/ws-api/v3" \
  HFT__ENGINE__IDLE="$idle" \
  HFT__STRATEGIES__MOMENTUM__LOOKBACK=2 HFT__STRATEGIES__MOMENTUM__THRESHOLD=0.000001 \
  HFT__RISK__ORDER_COOLDOWN_MS=50 HFT__RISK__ORDERS_PER_10S=1000 \
  "$bin" >/tmp/wire-to-wire.engine.log 2>&1 &
engine_pid=$!

sleep "$secs"
echo "wire-to-wire (venue-sim: frame written -> order.place received), ns:"
curl -s "http://$venue/control/latency"; echo
echo "in-process tick_to_order (engine: frame received -> order encoded), ns:"
curl -s "http://$api/latency" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tick_to_order"])'
echo "orders/fills: $(curl -s "http://$api/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["orders"], s["fills"])')"
