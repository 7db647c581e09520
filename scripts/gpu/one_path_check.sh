#!/usr/bin/env bash
# Issue 11's GPU check, one call after the wheels are staged (../shared/gpu/stage-wheels.sh and scripts/gpu/wheels.sh pack,
# then one call per .gpuwheels/xN): the gpu-marked tests of the one step path (eager == graph replay, no host syncs, CUDA
# update graph), `mimic bench --engine mjwarp --train` of this tree and of the code before issue 11 (.basecode/:
# `git archive 9fcfdeb mimictools data | tar -x -C .basecode`), then a spinkick run with MimicKit's configs
# for the rest of the call, to compare with docs/results/spinkick_h100_graphs/log.txt (same card type).
# Carry .gpuwheels/small, .gpudata (MimicKit's humanoid.xml as mk_humanoid.xml, humanoid_spinkick.pkl and the
# three configs, copied from ../shared/mimickit: git-ignored, never committed) and .basecode.
# Results: $OUT/r.tgz.
# Also the check of a later change to the step path against the tree before it (issue 18's fewer ops per step):
# `git archive 7843a02 mimictools data | tar -x -C .basecode`, then SIM_FREQ=120 SPINKICK=0 bash this script.
# Options (environment): SIM_FREQ (bench physics rate, default: the bundled config's 240), NENV (4096),
# SPINKICK (1 = the spinkick run after the benches, 0 = none); TRAIN_BENCH="HZ,HZ NENV AGENT_YAML" adds, after the
# before/after pair, this tree's `mimic bench --train --agent-config AGENT_YAML` at NENV envs at each rate (issue
# 18: the throughput of the configuration that trains), e.g. TRAIN_BENCH="240,120 16384 data/configs/spinkick_16k_agent.yaml".
set -u
T0=$(date +%s)
source scripts/gpu/wheels.sh finish || exit 1
# the Warp kernel cache in /tmp: the host keeps /tmp between calls on a warm machine, not the repo's ignored folders
export PYTHONUNBUFFERED=1 WARP_CACHE_PATH=${WARP_CACHE_PATH:-/tmp/mimic_warpcache} MIMIC_SHARED=/nonexistent
mkdir -p /tmp/r
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader | tee /tmp/r/gpu.txt
# -o addopts=: serially, without pyproject's `-n auto` (pytest-xdist need not be on the GPU machine)
timeout 260 python3 -m pytest -q -x -p no:cacheprovider -o addopts= -m gpu -rs tests/rl/test_rl_step.py tests/rl/test_rl_ppo.py \
  tests/tasks/test_task_deepmimic_cuda.py tests/engines/test_engine_contract.py -k "mjwarp or cuda" > /tmp/r/pytest_gpu.txt 2>&1
echo "pytest exit $?"; tail -6 /tmp/r/pytest_gpu.txt
# one line from a `mimic bench --train --json` file: summary FILE LABEL
summary() {
  python3 -c "import json, sys; r = json.load(open(sys.argv[1]))['results'][0]; print(sys.argv[2], 'raw_ctrl', round(r['raw_physics_steps_per_s'] / r['substeps']), 'train', round(r['samples_per_s']), 'rollout', round(r['rollout_samples_per_s']), 'update_s', round(r['update_s_per_iter'], 4), 'train/raw', round(r['train_over_raw_control_rate'], 3), 'step_ms', r.get('step_ms'))" "$1" "$2"
}
for v in new old; do
  if [ $v = old ]; then export PYTHONPATH=/tmp/site:$PWD/.basecode; else export PYTHONPATH=/tmp/site:$PWD; fi
  timeout 100 python3 -m mimictools bench --engine mjwarp --device cuda --num-envs ${NENV:-4096} --seconds 6 --train ${SIM_FREQ:+--sim-freq $SIM_FREQ} --json > /tmp/r/bench_gpu_$v.json 2> /tmp/r/bench_gpu_$v.err
  summary /tmp/r/bench_gpu_$v.json $v || tail -3 /tmp/r/bench_gpu_$v.err
done
export PYTHONPATH=/tmp/site:$PWD
if [ -n "${TRAIN_BENCH:-}" ]; then
  read -r TB_FREQS TB_NENV TB_AGENT <<< "$TRAIN_BENCH"
  for hz in ${TB_FREQS//,/ }; do
    timeout 150 python3 -m mimictools bench --engine mjwarp --device cuda --num-envs "$TB_NENV" --seconds 6 --train \
      --sim-freq "$hz" --agent-config "$TB_AGENT" --json > /tmp/r/bench_train_${hz}hz_${TB_NENV}.json 2> /tmp/r/bench_train_${hz}hz_${TB_NENV}.err
    summary /tmp/r/bench_train_${hz}hz_${TB_NENV}.json "${hz}Hz_${TB_NENV}envs" || tail -3 /tmp/r/bench_train_${hz}hz_${TB_NENV}.err
  done
fi
if [ "${SPINKICK:-1}" = 1 ]; then
LEFT=$(( 560 - ($(date +%s) - T0) - 45 ))
MIN=$(python3 -c "print(max(0.5, $LEFT/60 - 0.5))")
echo "spinkick for $MIN min"
timeout $LEFT python3 -m mimictools train --out-dir /tmp/r/spinkick --engine mjwarp --device cuda --num-envs 4096 \
  --env-config .gpudata/deepmimic_humanoid_env.yaml --agent-config .gpudata/deepmimic_humanoid_ppo_agent.yaml \
  --engine-config .gpudata/newton_engine.yaml --motion .gpudata/humanoid_spinkick.pkl --char .gpudata/mk_humanoid.xml \
  --minutes $MIN --no-progress > /tmp/r/train_spinkick.txt 2>&1
tail -4 /tmp/r/train_spinkick.txt
rm -f /tmp/r/spinkick/*.pt; rm -rf /tmp/r/spinkick/tensorboard
fi
tar czf $OUT/r.tgz -C /tmp r; ls -la $OUT
