#!/usr/bin/env bash
# One GPU call for the MuJoCo Warp engine (see mjwarp_gpu_run.py for the stages). From the repo root:
#
#   bash scripts/gpu/mjwarp_gpu_run.sh [extra args for mjwarp_gpu_run.py]
#
# Needs warp-lang, mujoco and mujoco-warp importable: installed into /tmp/site by
# `source scripts/gpu/wheels.sh finish` (../shared/gpu/stage-wheels.sh, then scripts/gpu/wheels.sh pack), which this script runs when
# /tmp/site/warp is missing and the staged parts are there. Warp kernel cache: .warpcache/ in the repo;
# a cache brought back by an earlier call (warpcache.tgz or warpcache.tgz.part*, copied into an ignored
# folder .warpcache_in/ and carried) is unpacked first, which saves ~100 s of kernel compilation.
# Everything lands in $OUT (default ./out): results.json, summary.txt, run.log, trace.json.gz, warpcache.tgz*.
set -u
cd "$(dirname "$0")/../.." || exit 2
export PYTHONUNBUFFERED=1
out=${OUT:-$PWD/out}
mkdir -p "$out"
{
  if [ ! -d /tmp/site/warp ] && [ -d .gpuwheels/small ]; then
    # shellcheck disable=SC1091
    source scripts/gpu/wheels.sh finish || echo "wheel install failed (are all warp parts staged?)"
  fi
  if [ -d /tmp/site ]; then export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi
  export WARP_CACHE_PATH=$PWD/.warpcache
  if [ ! -d .warpcache ] && ls .warpcache_in/warpcache.tgz* >/dev/null 2>&1; then
    cat $(ls .warpcache_in/warpcache.tgz* | sort) | tar xzf - && echo "restored Warp kernel cache: $(du -sh .warpcache | cut -f1)"
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader 2>/dev/null
  "${PYTHON:-python3}" scripts/gpu/mjwarp_gpu_run.py --out "$out" "$@"
} 2>&1 | tee "$out/run.log"
