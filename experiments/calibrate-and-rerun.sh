#!/usr/bin/env bash
# Calibrate the model's per-hop costs on the real-kernel replica of the article's
# cluster, then rerun the headline experiment (same-vs-cross-latency) with the
# fitted costs and with the scenario's default costs, and print the cross-node vs
# same-node mean one-way latency at the lowest offered load of both runs.
#
# Needs root, iproute2, nftables, sockperf (see docs/testbed.md). Run it under the
# kernel lock on a shared machine (LOCK: held only while measuring):
#   LOCK=/work/wt/kernel.lock experiments/calibrate-and-rerun.sh [OUT]
#
# Environment:
#   OUT         results directory (first argument, default results/calibrated)
#   QUICK=1     short measurement (2 rounds of 1 s per case) and `run --quick` (the test's mode)
#   LOCK        a lock file taken (flock) around the measurement only (default none)
#   PREFIX      namespace prefix of the replica (default pns-)
#   PODNETSIM   the podnetsim command (default podnetsim)
#   PYTHON      a Python with pandas, for the summary (default python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-${OUT:-results/calibrated}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PODNETSIM=${PODNETSIM:-podnetsim}
PYTHON=${PYTHON:-python3}
PREFIX=${PREFIX:-pns-}
SCENARIO="$ROOT/experiments/scenarios/article.toml"
EXPERIMENT="$ROOT/experiments/same-vs-cross-latency.toml"

if [[ "${QUICK:-0}" == 1 ]]; then
  measure_len=(--duration 1 --repeats 2)
  run_len=(--quick)
else
  measure_len=(--duration 2 --repeats 5)
  run_len=()
fi

# 1. Measure round trips on the replica (built and removed by --up); no SNAT probes.
locked=()
if [[ -n "${LOCK:-}" ]]; then locked=(flock "$LOCK"); fi
"${locked[@]}" $PODNETSIM testbed measure "$SCENARIO" --up --no-pairs --prefix "$PREFIX" \
  "${measure_len[@]}" -o "$OUT/measurements.json"

# 2. Fit the per-hop costs: PARAMS.toml.
$PODNETSIM calibrate "$OUT/measurements.json" -o "$OUT/PARAMS.toml"

# 3. The headline experiment with the fitted costs, and with the default costs.
$PODNETSIM run "$EXPERIMENT" --params "$OUT/PARAMS.toml" --out "$OUT/calibrated" \
  --force --no-plots -q "${run_len[@]}"
$PODNETSIM run "$EXPERIMENT" --out "$OUT/default" --force --no-plots -q "${run_len[@]}"

# 4. Cross-node vs same-node mean one-way latency at the lowest offered load.
"$PYTHON" - "$OUT" <<'PY'
import sys
import pandas as pd

out = sys.argv[1]
x = "flows.probe.rate_gbps"
for costs in ("default", "calibrated"):
    s = pd.read_csv(f"{out}/{costs}/summary.csv")
    low = s[x].min()
    lat = s[s[x] == low].set_index("placement")["latency_mean_us.mean"]
    same, cross = lat["same-node"], lat["cross-node"]
    print(f"{costs:<10} costs at {low} Gbit/s: same-node {same:.2f} us, "
          f"cross-node {cross:.2f} us, cross/same {cross / same:.3f}")
PY
