"""A short run of the loader fuzzer (``fuzz.py``) in the default suite: a few seconds per loader, a fixed
seed; every case must load or end in our own error. ``nox -s fuzz`` runs >= 20 K cases per loader."""

from __future__ import annotations

import random

import fuzz
import pytest

SECONDS_PER_LOADER = 2.5


@pytest.mark.parametrize("kind", fuzz.KINDS)
def test_short_fuzz_finds_only_our_errors(kind, tmp_path):
    stats = fuzz.run_fuzz(kind, cases=400, seconds=SECONDS_PER_LOADER, seed=7, work_dir=tmp_path)
    assert stats.cases >= 20  # the loop really ran (a bound, not a timing claim)
    assert stats.our_errors > 0  # the mutations reach the validators
    assert not stats.findings, stats.findings[:5]


def test_mutations_change_the_input():
    rng = random.Random(0)
    seed = b'{"Loop": "wrap", "Frames": [[0.1, 2, 3]]}'
    outs = [fuzz.mutate(rng, seed, [seed], text=True) for _ in range(50)]
    assert len(set(outs)) > 40 and outs.count(seed) < 3
