#!/usr/bin/env bash
# One GPU call of the issue-4 training runs (run on the GPU host from the repo root, wheels staged):
#   CLIPS="spinkick" MIN=7.5 NENV=4096 bash scripts/gpu/train_call.sh
# Starts (or resumes, when /tmp/runs/<clip>/latest.pt exists on this warm host) one `mimic train` per clip,
# concurrently, each for MIN minutes; then evaluates each run's best.pt with plots and packs log, config,
# policy-only checkpoint, eval metrics and PNGs into $OUT/<clip>.tgz (< 16 MiB each).
# Inputs come from .gpudata/ (carried; git-ignored): MimicKit's humanoid.xml, clips and configs.
set -u
source scripts/gpu/wheels.sh finish || exit 1
export PYTHONUNBUFFERED=1 WARP_CACHE_PATH=$PWD/.warpcache MIMIC_SHARED=/nonexistent
MIN=${MIN:-7.5}; NENV=${NENV:-4096}; CLIPS=${CLIPS:-spinkick}; AGENT=${AGENT:-.gpudata/deepmimic_humanoid_ppo_agent.yaml}
ENGINE_CFG=${ENGINE_CFG:-.gpudata/newton_engine.yaml}; EXTRA=${EXTRA:-}
mkdir -p /tmp/runs
nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv
for clip in $CLIPS; do
  run=/tmp/runs/$clip
  if [ -f "$run/latest.pt" ]; then
    args="--resume --out-dir $run"
  else
    args="--out-dir $run --engine mjwarp --device cuda --num-envs $NENV --env-config .gpudata/deepmimic_humanoid_env.yaml \
      --agent-config $AGENT --engine-config $ENGINE_CFG --motion .gpudata/humanoid_$clip.pkl --char .gpudata/mk_humanoid.xml $EXTRA"
  fi
  # shellcheck disable=SC2086
  python3 -m mimictools train $args --minutes "$MIN" --no-progress > "/tmp/runs/train_$clip.txt" 2>&1 &
done
( while sleep 60; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) > /tmp/runs/gpu_util.txt 2>&1 &
mon=$!
wait $(jobs -p | grep -v "^$mon$") 2>/dev/null
kill $mon 2>/dev/null
for clip in $CLIPS; do
  run=/tmp/runs/$clip
  echo "=== $clip"; tail -4 "/tmp/runs/train_$clip.txt"
  cp "/tmp/runs/train_$clip.txt" "$run/" 2>/dev/null
  cp /tmp/runs/gpu_util.txt "$run/" 2>/dev/null
  if [ -f "$run/best.pt" ] && [ "${EVAL:-1}" = 1 ]; then
    python3 -m mimictools eval --model "$run/best.pt" --episodes 32 --plot "$run/eval" --out "$run/eval" --json > "$run/eval_metrics.json" 2> "$run/eval_stderr.txt"
    tail -3 "$run/eval_stderr.txt"; head -c 1500 "$run/eval_metrics.json"; echo
  fi
  python3 - "$run" <<'PY'
import sys, torch
run = sys.argv[1]
for name in ("best", "latest"):
    try:
        s = torch.load(f"{run}/{name}.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError:
        continue
    for k in ("critic", "optimizers"):
        s.pop(k, None)
    torch.save(s, f"{run}/{name}_policy.pt")
PY
  (cd "$run" && find . -type f ! -name latest.pt ! -name best.pt ! -name 'iter_*.pt' | tar czf "$OUT/$clip.tgz" -T - && ls -la "$OUT/$clip.tgz")
done
