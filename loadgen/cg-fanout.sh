#!/bin/bash
# Instructions per fan-out NOTIFY (modify PUBLISH to a presentity with 10 watchers; the NOTIFYs
# and their 200s) of a release presenced under callgrind, set-up phases included then subtracted
# by a second run without the modify phase. Usage: loadgen/cg-fanout.sh [CHECKOUT] [PORT]
set -e
WT=${1:-$(cd "$(dirname "$0")/.." && pwd)}; PORT=${2:-5386}
run() { # $1 = duration of the modify phase
  OUT=$(mktemp -d /tmp/cgfan.XXXX)
  valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.out $WT/target/release/presenced \
    --sip 127.0.0.1:$PORT --http 127.0.0.1:0 --data $OUT/data --log warn > $OUT/pd.log 2>&1 &
  VG=$!
  for i in $(seq 1 100); do grep -q "presenced ready" $OUT/pd.log 2>/dev/null && break; sleep 0.2; done
  timeout 300 $WT/target/release/loadgen run -s $WT/config/loadgen-fanout.toml --target 127.0.0.1:$PORT \
    --presentities 200 --watchers 2000 --publish-rate 200 --subscribe-rate 400 --modify-rate 100 \
    --duration $1 --unsubscribe-at-end false --no-progress 2>&1 | grep -E "NOTIFY: received|errors" >&2
  kill $VG; wait $VG 2>/dev/null || true
  callgrind_annotate $OUT/cg.out 2>/dev/null | grep "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}'
  echo $OUT/cg.out >&2
}
A=$(run 0); B=$(run 10)
echo "Ir per fan-out NOTIFY: $(( (B - A) / 10000 ))   (1,000 modify PUBLISHes x 10 watchers; totals $A / $B)"
