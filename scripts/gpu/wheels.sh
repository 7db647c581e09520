#!/usr/bin/env bash
# MuJoCo Warp's wheels for the offline GPU host, in as few calls as the transfer limit allows.
# ../shared/gpu/stage-wheels.sh downloads the wheels into .gpuwheels/ and splits warp-lang (~150 MB) into 38 MB
# parts; with this repository's tracked tree (~29 MB) a 38 MB part no longer fits one call's 64 MiB. `pack`
# unpacks warp-lang and recompresses it with xz (~106 MB), split into parts sized to what the tree leaves free:
# three calls instead of five. Run from the repo root:
#   bash ../shared/gpu/stage-wheels.sh && bash scripts/gpu/wheels.sh pack   # here: writes .gpuwheels/xN/
#   bash scripts/gpu/wheels.sh stage .gpuwheels/x0     # on the host, one call per part, carrying only that part
#   source scripts/gpu/wheels.sh finish                 # on the host, carrying .gpuwheels/small: installs into
#                                                       # /tmp/site and exports PYTHONPATH (takes either layout)
#   source scripts/gpu/wheels.sh cache                  # on the host: unpacks the Warp kernel cache an earlier call
#                                                       # brought back (carried as .warpcache_in/warpcache.tgz*) into
#                                                       # $WARP_CACHE_PATH unless it is there; CACHE_IN=1 when carried
case "${1:-}" in
  pack)
    set -euo pipefail
    whl=$(realpath .gpuwheels/dl/warp_lang-*.whl)
    tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
    max=$(( 64 * 1024 * 1024 - tree - 3000000 ))   # 3 MB kept free for what else travels
    tmp=$(mktemp -d)
    mkdir "$tmp/site" && (cd "$tmp/site" && unzip -q "$whl" -x 'warp/tests/*' 'warp/examples/*' \
      && tar cf - . | xz -T0 -6 > ../warp_site.tar.xz)
    (cd "$tmp" && sha256sum warp_site.tar.xz) > .gpuwheels/small/warp_site.sha256
    size=$(stat -c %s "$tmp/warp_site.tar.xz")
    rm -rf .gpuwheels/x[0-9]*
    (cd "$tmp" && split -n $(( (size + max - 1) / max )) -d warp_site.tar.xz wx.part.)
    i=0
    for p in "$tmp"/wx.part.*; do mkdir -p ".gpuwheels/x$i"; mv "$p" ".gpuwheels/x$i/"; i=$((i + 1)); done
    rm -rf "$tmp"
    echo "packed: $(ls -d .gpuwheels/x* | tr '\n' ' ')($size bytes of xz; parts of at most $max bytes beside the $tree-byte tree)"
    ;;
  stage)
    mkdir -p /tmp/stage && cp "$2"/* /tmp/stage/ && ls /tmp/stage
    ;;
  finish)
    if [ ! -d /tmp/site/warp ]; then
      if ls /tmp/stage/wx.part.* >/dev/null 2>&1; then
        cat /tmp/stage/wx.part.* > /tmp/warp_site.tar.xz
        (cd /tmp && sha256sum -c "$OLDPWD/.gpuwheels/small/warp_site.sha256") \
          || { echo "warp xz parts missing or corrupt"; return 1 2>/dev/null || exit 1; }
        mkdir -p /tmp/site && xz -d -T0 < /tmp/warp_site.tar.xz | tar xf - -C /tmp/site
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
          .gpuwheels/small/*.whl
      else
        # shellcheck disable=SC1091
        source .gpuwheels/small/host.sh finish || { return 1 2>/dev/null || exit 1; }
      fi
    fi
    export PYTHONPATH=/tmp/site:$PWD
    python3 -c "import warp, mujoco, mujoco_warp, torch; print('warp', warp.__version__, 'mujoco', mujoco.__version__, 'mujoco_warp', mujoco_warp.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    ;;
  cache)
    : "${WARP_CACHE_PATH:?set WARP_CACHE_PATH before: source scripts/gpu/wheels.sh cache}"
    CACHE_IN=0
    if ls .warpcache_in/warpcache.tgz* >/dev/null 2>&1; then
      CACHE_IN=1
      if [ ! -d "$WARP_CACHE_PATH" ]; then
        mkdir -p "$WARP_CACHE_PATH"
        cat $(ls .warpcache_in/warpcache.tgz* | sort) | tar xzf - -C "$WARP_CACHE_PATH" \
          && echo "restored Warp kernel cache: $(du -sh "$WARP_CACHE_PATH" | cut -f1)"
      fi
    fi
    ;;
  *) echo "usage: bash scripts/gpu/wheels.sh pack | stage DIR; source scripts/gpu/wheels.sh finish | cache"; return 2 2>/dev/null || exit 2 ;;
esac
