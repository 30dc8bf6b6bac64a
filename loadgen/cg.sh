#!/bin/bash
# Instructions per operation of a release presenced under callgrind: counts, not seconds, so two
# revisions compare on a shared, noisy machine. Builds nothing: run
# `cargo build --release -p presenced -p loadgen` first.
#
# Usage: loadgen/cg.sh publish|subscribe|fanout [COUNT] [PORT]
#   publish    per initial PUBLISH (COUNT presentities, default 6000, at 500/s)
#   subscribe  per SUBSCRIBE with its first NOTIFY and that NOTIFY's 200 (COUNT watchers, 3000)
#   fanout     per fan-out NOTIFY (a tenth of a modify PUBLISH, the NOTIFY and its 200): a run
#              with 10 s of modifies (1,000 PUBLISHes to 200 presentities x 10 watchers) minus
#              the same run without them
# Prints the figure and, for publish and subscribe, the top inclusive functions per operation.
# The whole-process count includes start-up (entity records reserved for
# presence.expected_presentities: about 20 M instructions), so compare per-function figures or
# use a large COUNT.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORKLOAD=${1:?publish|subscribe|fanout}; PORT=${3:-5380}

# callgrind_run OUT LOADGEN-ARGS...: the server under callgrind for one loadgen run
callgrind_run() {
  local out=$1; shift
  valgrind --tool=callgrind --callgrind-out-file=$out/cg.out $ROOT/target/release/presenced \
    --sip 127.0.0.1:$PORT --http 127.0.0.1:0 --data $out/data --log warn > $out/pd.log 2>&1 &
  local vg=$!
  for _ in $(seq 1 100); do grep -q "presenced ready" $out/pd.log 2>/dev/null && break; sleep 0.2; done
  timeout 300 $ROOT/target/release/loadgen run --target 127.0.0.1:$PORT --no-progress "$@" 2>&1 |
    grep -E "^(publish|subscribe|PUBLISH|SUBSCRIBE)|NOTIFY: received|errors" >&2
  kill $vg; wait $vg 2>/dev/null || true
}
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'; }
top() { # FILE N
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E "presenced|mimalloc|memcpy|from_utf8" |
    sed -n 1,45p | awk -v n=$2 '{gsub(",","",$1); printf "%8d  %s\n", $1/n, substr($0, index($0,$3))}' | cut -c1-180
}

OUT=$(mktemp -d /tmp/cg-$WORKLOAD.XXXX)
case $WORKLOAD in
  publish)
    N=${2:-6000}
    callgrind_run $OUT -s $ROOT/config/loadgen-publish.toml --presentities $N --publish-rate 500
    echo "Ir per PUBLISH: $(( $(total $OUT/cg.out) / N ))   (callgrind file $OUT/cg.out)"
    top $OUT/cg.out $N ;;
  subscribe)
    N=${2:-3000}
    callgrind_run $OUT -s $ROOT/config/loadgen-subscribe.toml --presentities 1000 --watchers $N \
      --subscribe-rate 500
    echo "Ir per SUBSCRIBE: $(( $(total $OUT/cg.out) / N ))   (callgrind file $OUT/cg.out)"
    top $OUT/cg.out $N ;;
  fanout)
    fan() { # DIR DURATION
      mkdir -p $1
      callgrind_run $1 -s $ROOT/config/loadgen-fanout.toml --presentities 200 --watchers 2000 \
        --publish-rate 200 --subscribe-rate 400 --modify-rate 100 --duration $2 \
        --unsubscribe-at-end false
    }
    fan $OUT/base 0; fan $OUT/modify 10
    A=$(total $OUT/base/cg.out); B=$(total $OUT/modify/cg.out)
    echo "Ir per fan-out NOTIFY: $(( (B - A) / 10000 ))   (totals $A / $B, callgrind files in $OUT)" ;;
  *) echo "unknown workload $WORKLOAD" >&2; exit 2 ;;
esac
