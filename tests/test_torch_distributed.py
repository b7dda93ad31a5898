"""fastopt.torch under torch.distributed: ZeroRedundancyOptimizer and DDP, 2 processes on loopback.

Runs ``examples/torch_distributed.py`` (the example users read is the thing tested) in a
subprocess with a hard timeout: two gloo processes on 127.0.0.1 train a small float64 model for 30
steps, once with ``ZeroRedundancyOptimizer(optimizer_class=fastopt.torch.Adam)`` (each rank steps
only its shard) and once with DDP and a full ``fastopt.torch.Adam`` per rank. Both must end
bit-identical to single-process training with the same optimizer and the same gradient.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "torch_distributed.py"
TIMEOUT_SECONDS = 180  # two processes start torch on a busy 2-core machine: ~15 s normally


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/ is not shipped with the package")
def test_zero_and_ddp_match_single_process_training():
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--world-size", "2", "--steps", "30"],
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=environment,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "zero: max relative difference to single-process training 0.0e+00" in output, output
    assert "ddp: max relative difference to single-process training 0.0e+00" in output, output
    # Each rank really holds only its shard of the state. The two processes share one output
    # pipe, so their lines can interleave: match the messages, not lines.
    shards = re.findall(r"\[rank (\d)\] ZeRO: this rank holds optimizer state for (\d+) of 6 parameters", output)
    assert sorted(rank for rank, _ in shards) == ["0", "1"], output
    assert all(0 < int(owned) < 6 for _, owned in shards), output
    assert sum(int(owned) for _, owned in shards) == 6, output
