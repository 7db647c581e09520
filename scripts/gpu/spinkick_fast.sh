#!/usr/bin/env bash
# Issue 18's time-to-quality run: spinkick with MimicKit's env config, humanoid and engine config (240 Hz physics)
# and data/configs/spinkick_agent.yaml (MimicKit's agent with both learning rates at 6e-4: Test_Return 244 and
# 4.5 cm in 10 minutes on one H100, docs/training.md), trained for TOTAL_MIN minutes of training wall-clock in
# calls of under 10 minutes, each one `--resume`d on the warm host.
#
# One GPU call, from the repo root (the same command every call):
#   bash scripts/gpu/spinkick_fast.sh NENV [TOTAL_MIN]        # NENV: 4096 or 8192; TOTAL_MIN default 10
# carry: .gpudata (MimicKit's humanoid.xml as mk_humanoid.xml, humanoid_spinkick.pkl, deepmimic_humanoid_env.yaml,
#        newton_engine.yaml, and optionally deepmimic_humanoid_spinkick_log.txt for the curve; copied from
#        ../shared/mimickit, git-ignored), .gpuwheels/small, and .warpcache_in (warpcache.tgz* an earlier call
#        brought back: saves ~100 s of kernel compilation).
#
# Call 1 starts the run in $RUN_ROOT/CLIP_NENV/, e.g. humanoid_spinkick_4096/ (RUN_ROOT default /tmp/mimic_runs:
# the device host keeps /tmp between calls on a warm machine, but not the repository's ignored folders); every
# later call resumes it from latest.pt. Each call trains min(what is left of TOTAL_MIN, what fits in this call)
# minutes; `mimic train --minutes` counts this session's training time, log.txt's Wall_Time (hours) the run's
# total, which decides what is left. A `timeout -s TERM` backstop stops training in time if
# start-up was slow (SIGTERM saves latest.pt; the next call resumes). The call that completes TOTAL_MIN also runs
# `mimic eval --plot` on best.pt and `mimic plot-log`. If the host went back between calls (the run folder is
# gone), call 1's logic starts a new run: the script says so.
#
# Back through $OUT (at most 8 files, each < 16 MiB): log.txt, config.yaml, run.json, call.txt (this call's
# output), then on the last call eval.tgz (metrics JSON, eval PNGs, curve PNG) and best_policy.pt (actor +
# normalizer, no optimizer state), and warpcache.tgz (1-2 parts) while files are left and no cache was carried in.
#
# CPU check of the command lines (no GPU; tiny settings, writes runs/spinkick_fast_cpu_CLIP/ and, unless OUT is set,
# runs/spinkick_fast_cpu_out/):
#   CPU_CHECK=1 EVAL_EPISODES=2 bash scripts/gpu/spinkick_fast.sh 4       (twice: the second call resumes)
# SIM_FREQ (default 240), AGENT (default data/configs/spinkick_agent.yaml; e.g. MimicKit's own
# .gpudata/deepmimic_humanoid_ppo_agent.yaml, or data/configs/spinkick_fast_agent.yaml: Adam + adaptive rate) and
# EXTRA (e.g. "--set engine.solver_iterations=4": 14 % more samples/s on the spinkick, the same learning per
# iteration over 7.4 minutes, docs/performance.md session 9) change call 1's train command (a --resume call keeps
# the run's config). On the CPU MuJoCo engine 120 Hz trained worse per sample than 240 Hz (docs/training.md, "120 Hz
# on MuJoCo"): compare both on the GPU (RUN_TAG names a second run folder) before relying on 120. EVAL=0: no
# `mimic eval` on the host. CACHE_OUT=0: bring no Warp kernel cache back (a later call on the same warm host, whose
# cache an earlier call already brought back).
# MOTION (default humanoid_spinkick.pkl): another of MimicKit's humanoid clips, copied into .gpudata, trains the same
# way (issue 18's "two more clips"); the curve adds MimicKit's log only where .gpudata has one for that clip
# (deepmimic_<clip>_log.txt).
set -u
T0=$(date +%s)
NENV=${1:?usage: bash scripts/gpu/spinkick_fast.sh NENV [TOTAL_MIN]   (NENV: 4096 or 8192)}
TOTAL_MIN=${2:-10}
CALL_S=${CALL_S:-570}          # this call's own budget (s): the device run's limit is 600 s
EVAL=${EVAL:-1}                # 0: no `mimic eval` on the GPU host (run it where the policy comes back to)
EVAL_S=${EVAL_S:-$([ "$EVAL" = 1 ] && echo 100 || echo 30)}  # kept free on the last call for eval + plots + packing
PACK_S=${PACK_S:-25}           # kept free on every call for packing
STARTUP_S=${STARTUP_S:-90}     # mimic train's start-up before --minutes counts (~220 with a cold Warp kernel cache)
CPU_CHECK=${CPU_CHECK:-0}
CACHE_OUT=${CACHE_OUT:-1}
EXTRA=${EXTRA:-}
SIM_FREQ=${SIM_FREQ:-240}
AGENT=${AGENT:-data/configs/spinkick_agent.yaml}
MOTION=${MOTION:-humanoid_spinkick.pkl}
CLIP=$(basename "$MOTION" .pkl)
RUN_ROOT=${RUN_ROOT:-/tmp/mimic_runs}
OUT=${OUT:-$PWD/$([ "$CPU_CHECK" = 1 ] && echo runs/spinkick_fast_cpu_out || echo out)}
mkdir -p "$OUT"
RUN=$RUN_ROOT/${CLIP}_$NENV${RUN_TAG:+_$RUN_TAG}
[ "$CPU_CHECK" = 1 ] && RUN=runs/spinkick_fast_cpu_$CLIP
LOG=$OUT/call.txt
main() {
export PYTHONUNBUFFERED=1 MIMIC_SHARED=/nonexistent WARP_CACHE_PATH=${WARP_CACHE_PATH:-/tmp/mimic_warpcache}

if [ "$CPU_CHECK" = 1 ]; then
  DEV="--engine mujoco --device cpu"
  STOP_FIRST="--max-samples 300"; STOP_NEXT="--max-samples 600"
else
  if [ ! -d /tmp/site/warp ]; then
    # shellcheck disable=SC1091
    source scripts/gpu/wheels.sh finish || { echo "wheel install failed (are all warp parts staged?)"; exit 1; }
  fi
  export PYTHONPATH=/tmp/site:$PWD
  DEV="--engine mjwarp --device cuda"
  STOP_FIRST=""; STOP_NEXT=""
  nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader
fi
# shellcheck disable=SC1091
source scripts/gpu/wheels.sh cache   # sets CACHE_IN
for f in mk_humanoid.xml "$MOTION" deepmimic_humanoid_env.yaml newton_engine.yaml; do
  [ -f ".gpudata/$f" ] || { echo "missing .gpudata/$f (copy it from ../shared/mimickit and carry .gpudata)"; exit 2; }
done

# Minutes of training already in the run (log.txt's last Wall_Time, hours), and what is left of TOTAL_MIN.
done_min() {
  python3 - "$RUN/log.txt" <<'PY'
import sys
try:
    rows = [ln.split() for ln in open(sys.argv[1]) if ln.strip()]
    print(f"{60 * float(rows[-1][rows[0].index('Wall_Time')]):.3f}" if len(rows) > 1 else "0")
except (OSError, ValueError, IndexError):
    print("0")
PY
}
DONE=$(done_min)
LEFT_MIN=$(python3 -c "print(max(0.0, $TOTAL_MIN - $DONE))")
ELAPSED=$(( $(date +%s) - T0 ))
# This call's training minutes: what is left of the run, or what fits in the call after STARTUP_S of start-up
# (--minutes counts from the first iteration).
FIT_S=$(( CALL_S - ELAPSED - PACK_S - STARTUP_S ))
THIS_MIN=$(python3 -c "
left, fit, ev = $LEFT_MIN * 60, $FIT_S, $EVAL_S
# finish the run in this call when it fits with the eval; else train what fits, leaving >= 30 s for a last call
s = left if left <= fit - ev else min(fit, left - 30)
print(f'{max(0.0, s) / 60:.2f}')")
echo "run $RUN: $DONE of $TOTAL_MIN training minutes done; this call trains $THIS_MIN min"

if [ -f "$RUN/latest.pt" ]; then
  ARGS=(train --resume --out-dir "$RUN" --no-progress)
  STOP=$STOP_NEXT
else
  [ -d "$RUN" ] && echo "note: $RUN has no latest.pt: starting a new run there"
  [ "$DONE" != 0 ] && echo "note: log.txt shows $DONE min but no checkpoint: starting over"
  # shellcheck disable=SC2206
  ARGS=(train --out-dir "$RUN" $DEV --num-envs "$NENV"
    --env-config .gpudata/deepmimic_humanoid_env.yaml --agent-config "$AGENT"
    --engine-config .gpudata/newton_engine.yaml --motion ".gpudata/$MOTION" --char .gpudata/mk_humanoid.xml
    --set engine.sim_freq="$SIM_FREQ" --no-progress $EXTRA)
  STOP=$STOP_FIRST
fi
if [ "$CPU_CHECK" = 1 ]; then
  # shellcheck disable=SC2206
  ARGS+=($STOP)
elif [ "$THIS_MIN" != 0.00 ]; then
  ARGS+=(--minutes "$THIS_MIN")
fi
if [ "$CPU_CHECK" = 1 ] || [ "$THIS_MIN" != 0.00 ]; then
  LIMIT=$(( CALL_S - ($(date +%s) - T0) - PACK_S ))
  echo "+ timeout -s TERM -k 20 $LIMIT python3 -m mimictools ${ARGS[*]}"
  timeout -s TERM -k 20 "$LIMIT" python3 -m mimictools "${ARGS[@]}"
  echo "train exit $?"
fi

# ---- bring back what fits: log, config, run.json, this call's output; the last call adds eval + policy
for f in log.txt config.yaml run.json; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"; done
DONE=$(done_min)
FINAL=$(python3 -c "print(int($DONE >= $TOTAL_MIN - 0.05))")
[ "$CPU_CHECK" = 1 ] && FINAL=1
NFILES=4  # log.txt, config.yaml, run.json, call.txt
if [ "$FINAL" = 1 ] && [ -f "$RUN/best.pt" ]; then
  echo "run complete ($DONE min): eval of best.pt"
  E=$RUN/eval; mkdir -p "$E"
  if [ "$EVAL" = 1 ]; then
    timeout 150 python3 -m mimictools eval --model "$RUN/best.pt" --episodes "${EVAL_EPISODES:-32}" --plot "$E" --out "$E" --json \
      > "$E/metrics_stdout.json" 2> "$E/eval_stderr.txt"
    echo "eval exit $?"; tail -3 "$E/eval_stderr.txt"
  fi
  logs=("$RUN/log.txt"); labels="ours $(grep -m1 'sim_freq' "$RUN/config.yaml" | tr -dc '0-9') Hz $NENV envs"
  if [ -f ".gpudata/deepmimic_${CLIP}_log.txt" ]; then
    logs+=(".gpudata/deepmimic_${CLIP}_log.txt"); labels="$labels,MimicKit 120 Hz Isaac Gym"
  fi
  python3 -m mimictools plot-log "${logs[@]}" --x minutes --labels "$labels" -o "$E/curve_minutes.png" >/dev/null
  python3 -m mimictools plot-log "${logs[@]}" --x samples --labels "$labels" -o "$E/curve_samples.png" >/dev/null
  (cd "$RUN" && find eval -type f \( -name '*.png' -o -name '*.json' -o -name '*.txt' -o -name '*.csv' \) | tar czf "$OUT/eval.tgz" -T -)
  python3 - "$RUN/best.pt" "$OUT/best_policy.pt" <<'PY'
import sys, torch
s = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
for k in ("critic", "optimizers"):
    s.pop(k, None)
torch.save(s, sys.argv[2])
PY
  NFILES=6
fi
if [ "$CACHE_IN" = 0 ] && [ "$CACHE_OUT" = 1 ] && [ -d "$WARP_CACHE_PATH" ] && [ "$CPU_CHECK" != 1 ]; then
  tar czf /tmp/warpcache.tgz --exclude='*.cu' --exclude='*.cpp' -C "$WARP_CACHE_PATH" .
  LIMIT_B=$(( 15 * 1024 * 1024 ))
  SIZE=$(stat -c %s /tmp/warpcache.tgz)
  NPARTS=$(( (SIZE + LIMIT_B - 1) / LIMIT_B ))
  if [ $(( NFILES + NPARTS )) -le 8 ]; then
    if [ "$NPARTS" = 1 ]; then cp /tmp/warpcache.tgz "$OUT/"; else split -b "$LIMIT_B" -d /tmp/warpcache.tgz "$OUT/warpcache.tgz.part"; fi
    echo "Warp kernel cache: $NPARTS file(s) in \$OUT; put them in .warpcache_in/ and carry it"
  else
    echo "Warp kernel cache ($SIZE bytes, $NPARTS parts) left on the host: not enough of the 8 files left"
  fi
fi
echo "call done in $(( $(date +%s) - T0 )) s; $DONE of $TOTAL_MIN min trained"
ls -la "$OUT"
}
main 2>&1 | tee "$LOG"  # a pipeline: the script ends after tee has written call.txt
exit "${PIPESTATUS[0]}"
