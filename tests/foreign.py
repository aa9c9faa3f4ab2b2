"""One training run moved between torch.optim, optax and Keras 3 (tests/test_state_torch.py,
tests/test_state_optax.py): the same parameters, the same gradients on every side, so the run
handed through optcompat.state's file is compared with the straight run of one library.

The gradient of step ``t`` is a function of the parameters' values (float32 NumPy, the same
on every side and backend): ``g = 0.3 tanh(x) + 0.2 n_t``, ``n_t`` a fixed draw per step.
A state that did not carry over (a moment, the step count, the momentum buffer) changes the
steps that follow, and the parameters with them.
"""
import json
import os
import sys

import numpy as np

SHAPES = ((4, 3), (3,), (3, 2), (2,))
NAMES = ("kernel", "bias", "kernel", "bias")
STEPS = 15
TOL = 1e-5

# run -> the Keras 3 optimizer (optcompat's, with the convention of the library it moves to)
KERAS = {
    "adamw-amsgrad": ("AdamW", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.99, epsilon=1e-8, weight_decay=0.05,
                                    amsgrad=True)),
    "adamw-groups": ("AdamW", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.05,
                                   exclude_from_weight_decay=["bias"])),
    "adamw": ("AdamW", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.05)),
    "adam": ("AdamW", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0)),
    "sgd-nesterov": ("SGDW", dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.0)),
    "sgd-momentum": ("SGDW", dict(learning_rate=0.05, momentum=0.8, weight_decay=0.0)),
}


def initial(seed=0):
    rng = np.random.default_rng(seed)
    return [(0.5 * rng.normal(size=s)).astype(np.float32) for s in SHAPES]


def gradient(values, t):
    rng = np.random.default_rng(1000 + t)
    return [(0.3 * np.tanh(v) + 0.2 * rng.normal(size=v.shape)).astype(np.float32) for v in values]


def keras_stage(job):
    """Run Keras 3 (this process's backend) for ``job``: {"run", "in" (a state file or None:
    start from ``initial()``), "out" (where to save), "t0", "steps", "convention",
    "iterations" (the file's step count, where not t0)}; returns the parameters' final values."""
    import keras

    import optcompat
    import optcompat.state

    name, kwargs = KERAS[job["run"]]
    opt = getattr(optcompat, name)(convention=job["convention"], **kwargs)
    values = initial() if job.get("in") is None else [np.zeros(s, np.float32) for s in SHAPES]
    variables = [keras.Variable(v, name=n) for v, n in zip(values, NAMES)]
    if job.get("in") is not None:
        loaded = optcompat.state.load(opt, job["in"], variables, restore_variables=True)
        assert loaded.iterations == job.get("iterations", job["t0"]), (loaded.iterations, job)
    for t in range(job["t0"], job["t0"] + job["steps"]):
        grads = gradient([keras.ops.convert_to_numpy(v) for v in variables], t)
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
    if job.get("out"):
        optcompat.state.save(opt, job["out"], variables)
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


def main(jobs_file):
    """``python tests/foreign.py JOBS.json``: each job's keras_stage, in this process's
    backend (KERAS_BACKEND), the final values written to the job's ``values`` (.npz)."""
    with open(jobs_file) as f:
        jobs = json.load(f)
    for job in jobs:
        values = keras_stage(job)
        if job.get("values"):
            np.savez(job["values"], *values)
    import keras

    print("keras %s on %s: %d jobs" % (keras.__version__, keras.backend.backend(), len(jobs)))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1])
