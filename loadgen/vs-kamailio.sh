#!/usr/bin/env bash
# presenced against Kamailio 5.6's presence modules on this machine, with `loadgen compare`: the
# commands behind the README's "Capacity planning" table. Each workload starts both servers
# fresh, runs the same scenario against each one after the other, and stops them.
#
# Usage: loadgen/vs-kamailio.sh [WORKLOAD ...]     (default: publish subscribe fanout)
# Needs: a release build (cargo build --release -p presenced -p loadgen), Kamailio 5.6 with its
# presence modules, and the anchor set-up in ../shared/anchors/kamailio (start/stop scripts).
# Environment: OUT (directory for the reports, default /tmp/vs-kamailio), KAMAILIO_CHILDREN
# (default 2, one UDP worker per core), PRESENCED_ARGS (extra presenced arguments), LOADGEN_ARGS
# (extra loadgen arguments, e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHOR=${ANCHOR:-../shared/anchors/kamailio}
OUT=${OUT:-/tmp/vs-kamailio}
BIN=target/release
RUNDIR=$OUT/kamailio-run
KPORT=5071
PPORT=5281
mkdir -p "$OUT"
[ -x $BIN/presenced ] && [ -x $BIN/loadgen ] || {
  echo "build first: cargo build --release -p presenced -p loadgen" >&2
  exit 2
}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(publish subscribe fanout)
for wl in "${workloads[@]}"; do
  scenario=config/loadgen-$wl.toml
  [ -f "$scenario" ] || { echo "no scenario $scenario" >&2; exit 2; }
  rm -rf "$OUT/data-$wl"
  # shellcheck disable=SC2086
  $BIN/presenced ${PRESENCED_ARGS:-} --sip 127.0.0.1:$PPORT --http 127.0.0.1:18281 \
    --data "$OUT/data-$wl" --log warn > "$OUT/presenced-$wl.log" 2>&1 &
  pd=$!
  "$ANCHOR/start-kamailio.sh" -c "${KAMAILIO_CHILDREN:-2}" -p $KPORT -d "$RUNDIR" > /dev/null
  kp=$(cat "$RUNDIR/kamailio.pid")
  sleep 2
  echo "== $wl: $scenario"
  # shellcheck disable=SC2086
  $BIN/loadgen compare -s "$scenario" --no-progress ${LOADGEN_ARGS:-} \
    --target 127.0.0.1:$PPORT --server-pid $pd --name-a presenced \
    --target-b 127.0.0.1:$KPORT --server-pid-b "$kp" --name-b kamailio \
    | tee "$OUT/$wl.txt" || true
  kill -TERM $pd
  wait $pd 2> /dev/null || true
  "$ANCHOR/stop-kamailio.sh" -d "$RUNDIR" > /dev/null 2>&1 || true
  sleep 2
done
