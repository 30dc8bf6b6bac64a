#!/bin/bash
# Instructions per initial PUBLISH of a release presenced, under callgrind (deterministic,
# unlike wall time on this shared machine). Usage: loadgen/cg-publish.sh [CHECKOUT] [PORT] [COUNT]
#   builds nothing: run `cargo build --release -p presenced -p loadgen` in CHECKOUT first (the repository root by default).
# Prints Ir per PUBLISH for the whole process and the top inclusive functions.
set -e
WT=${1:-$(cd "$(dirname "$0")/.." && pwd)}; PORT=${2:-5380}; N=${3:-6000}
OUT=$(mktemp -d /tmp/cgpub.XXXX)
valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.out $WT/target/release/presenced \
  --sip 127.0.0.1:$PORT --http 127.0.0.1:0 --data $OUT/data --log warn > $OUT/pd.log 2>&1 &
VG=$!
for i in $(seq 1 100); do grep -q "presenced ready" $OUT/pd.log 2>/dev/null && break; sleep 0.2; done
timeout 300 $WT/target/release/loadgen run -s $WT/config/loadgen-publish.toml --target 127.0.0.1:$PORT \
  --presentities $N --publish-rate 500 --no-progress 2>&1 | grep -E "publish_initial|errors"
kill $VG; wait $VG 2>/dev/null || true
TOTAL=$(callgrind_annotate $OUT/cg.out 2>/dev/null | grep "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
echo "Ir per PUBLISH: $((TOTAL / N))   (callgrind file $OUT/cg.out)"
callgrind_annotate --inclusive=yes $OUT/cg.out 2>/dev/null | grep -E "presenced|quick_xml|mimalloc|memcpy|from_utf8" | \
  sed -n 1,45p | awk -v n=$N '{gsub(",","",$1); printf "%8d  %s\n", $1/n, substr($0, index($0,$3))}' | cut -c1-180
