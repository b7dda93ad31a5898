"""Every tour experiment, in its full (not quick) configuration, at seeds 0 to 9.

A claim the tour makes must hold at every one of these seeds, not only at the default seed 0:
each test fails if any seed's numbers do not support the claim, and its message lists the seeds
and the measured numbers. Marked ``slow`` (about 10 minutes in all on 2 cores; the RNN chapter is
most of it), and part of the default ``python -m pytest`` run, so CI runs it; ``-m "not slow"``
leaves it out locally.
"""

import importlib

import pytest

from fastopt.cli.tour import EXPERIMENTS
from fastopt.cli.tour._common import Config

SEEDS = range(10)


@pytest.mark.slow
@pytest.mark.parametrize("number", sorted(EXPERIMENTS), ids=[f"{n}-{EXPERIMENTS[n]}" for n in sorted(EXPERIMENTS)])
def test_claim_holds_at_seeds_0_to_9(number, tmp_path, measured):
    module = importlib.import_module(f"fastopt.cli.tour.{EXPERIMENTS[number]}")
    refuted = {}
    for seed in SEEDS:
        result = module.run(Config(out=tmp_path, seed=seed), lambda fraction, note="": None)
        if not result.verdict.supported:
            refuted[seed] = result.verdict.detail
    measured["tour_seeds"][number] = len(SEEDS) - len(refuted)
    assert not refuted, (f"experiment {number} ({EXPERIMENTS[number]}): the claim is not supported at seeds "
                         f"{sorted(refuted)} of {list(SEEDS)}:\n" + "\n".join(f"  seed {s}: {d}" for s, d in refuted.items()))
