#!/usr/bin/env bash
# Issue 18's "two more clips, each alone on the GPU": MimicKit's humanoid clips one after the other, 10 training
# minutes each with the spinkick's configuration (scripts/gpu/spinkick_fast.sh: data/configs/spinkick_agent.yaml,
# 240 Hz, 4096 envs), in whatever this call has left. The same command every call, from the repo root:
#   CLIPS="humanoid_backflip humanoid_run" bash scripts/gpu/clips.sh
# (first call on a cold host: STARTUP_S=200 CACHE_OUT=1). A clip complete in an earlier call on this warm host is
# skipped; a clip with less than 170 s of the call left waits for the next call. carry: .gpudata (the clips'
# .pkl files beside spinkick_fast.sh's files), .gpuwheels/small, .warpcache_in if an earlier call brought one.
# Back in $OUT: one CLIP.tgz per clip (log.txt, config.yaml, run.json, call.txt; when complete also eval.tgz with
# the curves and best_policy.pt, for `mimic eval` on the CPU) and the Warp kernel cache beside them (CACHE_OUT=1).
T0=$(date +%s); BUDGET=${BUDGET:-585}
OUT=${OUT:-$PWD/out}
for clip in ${CLIPS:-humanoid_backflip humanoid_run}; do
  [ -f "/tmp/done_$clip" ] && { echo "== $clip complete in an earlier call"; continue; }
  left=$(( BUDGET - ($(date +%s) - T0) ))
  [ "$left" -lt 170 ] && { echo "== $clip waits for the next call: $left s left in this one"; continue; }
  echo "== $clip: CALL_S=$left"
  rm -rf "/tmp/o_$clip" && mkdir -p "/tmp/o_$clip"
  env RUN_TAG=clip EVAL=0 CACHE_OUT="${CACHE_OUT:-0}" STARTUP_S="${STARTUP_S:-60}" OUT="/tmp/o_$clip" CALL_S="$left" \
    MOTION="$clip.pkl" bash scripts/gpu/spinkick_fast.sh 4096 "${TOTAL_MIN:-10}"
  grep -q "run complete" "/tmp/o_$clip/call.txt" && touch "/tmp/done_$clip"
  mv /tmp/o_"$clip"/warpcache.tgz* "$OUT/" 2>/dev/null
  tar czf "$OUT/$clip.tgz" -C "/tmp/o_$clip" .
done
ls -la "$OUT"
