#!/usr/bin/env bash
# Issue 18's throughput measure on one GPU: `mimic bench --train` on what trains (MimicKit's humanoid, the spinkick,
# MimicKit's env config, data/configs/spinkick_agent.yaml), one configuration per argument, ENVS:HZ[:CAP] (CAP: the
# solver cap, engine.solver_iterations), in order while BENCH_S seconds last. Each row has the standing ceiling
# ("train / raw ctrl"), the ceiling on the spinkick's own states ("train / clip ctrl": the engine alone playing the
# clip open-loop from the task's starts, `mimic bench --motion`) and the rollout's physics ("train / rollout physics").
#
# One GPU call, from the repo root:
#   bash scripts/gpu/bench.sh 4096:240 4096:240:4 8192:240:4 8192:120:4
# carry: .gpudata (mk_humanoid.xml, humanoid_spinkick.pkl, deepmimic_humanoid_env.yaml; copied from ../shared/mimickit,
# git-ignored), .gpuwheels/small, .warpcache_in when an earlier call brought a kernel cache back. The first
# configuration on a cold cache compiles the kernels (~110 s, not in its numbers: the bench warms up first).
# Back through $OUT: bench.tgz (per configuration NAME.json, the bench's JSON, and NAME.err, its stderr).
# CPU check (no GPU; tiny settings; OUT default runs/bench_cpu_out): CPU_CHECK=1 bash scripts/gpu/bench.sh 4:240 4:240:4
set -u
T0=$(date +%s)
BENCH_S=${BENCH_S:-570}
SECONDS_PER=${SECONDS_PER:-4}
CPU_CHECK=${CPU_CHECK:-0}
CLIP=${CLIP:-humanoid_spinkick}
OUT=${OUT:-$PWD/$([ "$CPU_CHECK" = 1 ] && echo runs/bench_cpu_out || echo out)}
[ $# -ge 1 ] || { echo "usage: bash scripts/gpu/bench.sh ENVS:HZ[:CAP] ...   e.g. 4096:240 8192:240:4"; exit 2; }
for f in mk_humanoid.xml "$CLIP.pkl" deepmimic_humanoid_env.yaml; do
  [ -f ".gpudata/$f" ] || { echo "missing .gpudata/$f (copy it from ../shared/mimickit and carry .gpudata)"; exit 2; }
done
export PYTHONUNBUFFERED=1 MIMIC_SHARED=/nonexistent WARP_CACHE_PATH=${WARP_CACHE_PATH:-/tmp/mimic_warpcache}
if [ "$CPU_CHECK" = 1 ]; then
  DEV="--engine mujoco --device cpu"; SECONDS_PER=${SECONDS_PER_CPU:-1}
else
  # shellcheck disable=SC1091
  source scripts/gpu/wheels.sh finish || { echo "wheel install failed (are all warp parts staged?)"; exit 1; }
  # shellcheck disable=SC1091
  source scripts/gpu/wheels.sh cache
  DEV="--engine mjwarp --device cuda"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
git log -1 --format='tree of commit %h (%cs)' 2>/dev/null
B="python3 -m mimictools bench $DEV --seconds $SECONDS_PER --train --json --char .gpudata/mk_humanoid.xml
   --motion .gpudata/$CLIP.pkl --env-config .gpudata/deepmimic_humanoid_env.yaml
   --agent-config data/configs/spinkick_agent.yaml"
D=/tmp/mimic_bench && rm -rf "$D" && mkdir -p "$D" "$OUT"
for conf in "$@"; do
  IFS=: read -r envs hz cap <<< "$conf"
  name=${envs}_${hz}${cap:+_cap$cap}
  left=$(( BENCH_S - ($(date +%s) - T0) - 20 ))
  [ "$left" -lt 60 ] && { echo "skip $name: $left s left"; continue; }
  flags="--num-envs $envs --sim-freq $hz${cap:+ --solver-iterations $cap}"
  echo "+ [$(( $(date +%s) - T0 )) s] mimic bench ... $flags"
  # shellcheck disable=SC2086
  timeout "$left" $B $flags > "$D/$name.json" 2> "$D/$name.err"
  echo "  exit $? at $(( $(date +%s) - T0 )) s"
  python3 - "$D/$name.json" <<'PY'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["results"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"  no JSON: {e}")
keys = ("samples_per_s", "clip_control_steps_per_s", "train_over_raw_control_rate", "train_over_clip_control_rate",
        "train_over_rollout_physics_rate", "step_ms", "solver_iters")
for r in rows:
    print("  " + json.dumps({k: r.get(k) for k in keys}, separators=(",", ":")))
PY
done
tar czf "$OUT/bench.tgz" -C "$D" . && echo "bench.tgz in $OUT"
