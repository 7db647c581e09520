#!/usr/bin/env bash
# Issue 17's GPU check, in one call on one GPU: does the distributed path cost anything with one rank?
# From the repo root (wheels staged as for mjwarp_gpu_run.sh):
#
#   NENV=4096 SECONDS_PER=30 bash scripts/gpu/distributed_overhead.sh
#
# Measures the training loop (`mimic bench --train`: rollout + PPO update, CUDA graphs, mjwarp on cuda) three
# times on the same warm GPU, alternating, so that Warp's kernel cache and clocks are the same for each:
#   plain      python -m mimictools bench --train ...
#   torchrun   torchrun --standalone --nproc-per-node 1 -m mimictools bench --train ...
#   plain      (again: the spread between the two plain runs is the noise floor)
# and `mimic train --nproc 1` is the plain run by construction (--nproc 1 launches nothing). Compare
# samples_per_s: torchrun / plain should be 1.00 within the plain/plain spread. With one rank WORLD_SIZE=1 and
# no process group is created (mimictools.rl.distributed.init_from_env), so no collective runs.
# On a machine with N GPUs, `... bench --train --nproc N` reports per-rank and total samples/s and the
# scaling efficiency (a separate issue: multi-GPU machines are withheld for now).
# Results: $OUT/overhead.json (+ the three bench JSON documents) and a summary on stdout.
set -u
cd "$(dirname "$0")/../.." || exit 2
export PYTHONUNBUFFERED=1
out=${OUT:-$PWD/out}
mkdir -p "$out"
if [ ! -d /tmp/site/warp ] && [ -d .gpuwheels/small ]; then
  # shellcheck disable=SC1091
  source scripts/gpu/wheels.sh finish || echo "wheel install failed (are all warp parts staged?)"
fi
if [ -d /tmp/site ]; then export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi
export WARP_CACHE_PATH=$PWD/.warpcache MIMIC_SHARED=/nonexistent
PY=${PYTHON:-python3}
NENV=${NENV:-4096}; SECONDS_PER=${SECONDS_PER:-30}
args=(bench --engine mjwarp --device cuda --num-envs "$NENV" --seconds "$SECONDS_PER" --train --json)
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader 2>/dev/null
"$PY" -m mimictools "${args[@]}" > "$out/plain1.json" 2> "$out/plain1.err"; echo "plain 1: rc $?"
"$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m mimictools "${args[@]}" \
  > "$out/torchrun1.json" 2> "$out/torchrun1.err"; echo "torchrun --nproc-per-node 1: rc $?"
"$PY" -m mimictools "${args[@]}" > "$out/plain2.json" 2> "$out/plain2.err"; echo "plain 2: rc $?"
"$PY" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rates = {}
for name in ("plain1", "torchrun1", "plain2"):
    try:
        text = (out / f"{name}.json").read_text()
        start = 0 if text.startswith("{") else text.index("\n{") + 1  # skip any banner printed before the JSON
        row = json.loads(text[start:])["results"][0]
        rates[name] = row["samples_per_s"]
    except Exception as exc:  # keep going: report what ran
        print(f"{name}: no result ({exc}); see {name}.err")
if len(rates) == 3:
    plain = (rates["plain1"] + rates["plain2"]) / 2
    summary = {
        "samples_per_s": rates,
        "torchrun_over_plain": rates["torchrun1"] / plain,
        "plain_spread": abs(rates["plain1"] - rates["plain2"]) / plain,
    }
    (out / "overhead.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
PY
