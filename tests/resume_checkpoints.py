"""Resume checkpoints in a fresh process (run by tests/test_checkpoints.py).

    python resume_checkpoints.py MANIFEST.json

The manifest lists ``{"checkpoint", "config", "save_backend", "load_backend", "out"}`` jobs.
Each job builds a new optimizer (with deliberately different hyperparameters, which the
checkpoint must overwrite) on ``load_backend``, loads the checkpoint, trains the remaining steps
and writes the final parameters and state to ``out`` (an .npz).
"""

import json
import sys

import checkpoint_io as io

import fastopt


def main(manifest):
    with open(manifest) as handle:
        jobs = json.load(handle)
    for job in jobs:
        name, options = io.CONFIGS[job["config"]]
        _, grads = io.problem(job["config"], fastopt.BACKENDS.index(job["save_backend"]))
        state_dict, params = io.load(job["checkpoint"])
        params = [p.copy() for p in params]  # writeable, owned
        opt = io.make_optimizer(name, options, params, job["load_backend"], lr=123.0)
        opt.load_state_dict(state_dict)
        io.train(opt, grads, io.SAVED_AT)
        io.save_npz(job["out"], opt.state_dict(), params)
    print(f"resumed {len(jobs)} checkpoints")


if __name__ == "__main__":
    main(sys.argv[1])
