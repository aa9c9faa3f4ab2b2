"""One training run handed from env to env through optcompat.state's file: 25 steps in each
stage of the chain tox.ini declares (``[optcompat:state-chain]``: TF 1.15's OptimizerV2, with
TF 2 behaviour (``tf115-cp37``) -> TF 2.6's OptimizerV2 -> TF 2.15's Keras 2 -> Keras 3 on JAX
-> Keras 3 on torch), ending within 1e-5 of 125 straight steps (25 per stage) in the first env.

``python ci/matrix.py`` runs it after the matrix, one stage after another, each in its own
env (``OPTCOMPAT_CHAIN_DIR``: the folder the stages hand the file through;
``OPTCOMPAT_CHAIN_STAGE``: ``i/N``); elsewhere it is deselected.  Each stage loads the
previous stage's file -- the optimizer's state and the model's weights
(``restore_variables=True``) -- into a fresh model, trains its 25 steps (its own slice of
the data, batch 16, ``model.fit``) and saves.  Three runs: optcompat's AdamW (amsgrad, an
exponential-decay schedule, decay 0.05) and SGDW (Nesterov momentum, decay 0.01) throughout,
and the host's own Adam in the first stage (TF 1.15's) continued by optcompat's AdamW (decay 0) --
handed on once in the file, once as each OptimizerV2 env's own TF checkpoint (TF 1.15's, read
directly by TF 2.6; TF 2.6's, read directly by TF 2.15's Keras 2).

A second chain (``[optcompat:state-chain-raw]``: TF 2.6 -> TF 2.15 -> Keras 3 on JAX -> TF
2.6; ``OPTCOMPAT_CHAIN_NAME=state-chain-raw``) hands on a custom training loop's run: raw
variables created without a name (``tf.Variable``, ``keras.Variable``), the backend's own
gradients, ``optimizer.apply_gradients``; its generated names (``Variable:0``,
``variable_4``) differ from env to env and are matched by order, shape and dtype.
"""
import json
import os

import numpy as np
import pytest

from support import ENV
from support import applies
from support import data
from support import flat
from support import host_class

state = pytest.importorskip("optcompat.state")

CHAIN_DIR = os.environ.get("OPTCOMPAT_CHAIN_DIR")
STAGE = os.environ.get("OPTCOMPAT_CHAIN_STAGE")  # "i/N"
CHAIN = os.environ.get("OPTCOMPAT_CHAIN_NAME", "state-chain")  # which of tox.ini's chains
STEPS, BATCH = 25, 16
TOL = 1e-5


def in_a_chain(facts, params):
    return bool(CHAIN_DIR and STAGE) and facts.family == ENV.default and CHAIN == "state-chain"


def in_the_raw_chain(facts, params):
    return bool(CHAIN_DIR and STAGE) and facts.family == ENV.default and CHAIN == "state-chain-raw"


# host-adam-checkpoint: every OptimizerV2 stage hands on a TF checkpoint instead of the file, which
# the next env reads directly with optcompat.state: TF 1.15's checkpoint of its own Adam, read in
# TF 2.6, and TF 2.6's of optcompat's AdamW, read in TF 2.15's Keras 2 (whose own restore of an
# OptimizerV2 checkpoint is refused: TF 2.11+)
RUNS = ("adamw", "host-adam", "host-adam-checkpoint", "sgdw")


def hands_on_a_checkpoint(run, family):
    return run == "host-adam-checkpoint" and family == "legacy"


def optimizer(host, run, first):
    if run == "adamw":
        return host.make("AdamW", learning_rate=host.exponential_decay(0.01, 20, 0.8), weight_decay=0.05,
                         amsgrad=True)
    if run == "sgdw":
        return host.make("SGDW", learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    if first:  # host-adam, host-adam-checkpoint
        return host_class(host, "Adam")(learning_rate=0.01)
    return host.make("AdamW", learning_rate=0.01, weight_decay=0.0)


def fit(model, x, y):
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)


@applies(in_a_chain)
@pytest.mark.parametrize("run", RUNS)
def test_a_run_crosses_the_chain(host, run):
    i, n = (int(p) for p in STAGE.split("/"))
    folder = os.path.join(CHAIN_DIR, run)
    os.makedirs(folder, exist_ok=True)
    x, y = data(n=n * STEPS * BATCH, seed=3)
    if i == 0:  # the straight run, in the first env
        straight = host.dense_model(seed=0)
        straight.compile(optimizer=optimizer(host, run, first=True), loss="mse")
        fit(straight, x, y)
        assert host.iterations(straight.optimizer) == n * STEPS
        np.save(os.path.join(folder, "straight.npy"), flat(straight))
    model = host.dense_model(seed=0 if i == 0 else 1)
    model.compile(optimizer=optimizer(host, run, first=i == 0), loss="mse")
    handed_on = None
    if i > 0:
        with open(os.path.join(folder, "stage-%d.json" % (i - 1))) as f:
            before = json.load(f)
        previous = os.path.join(folder, "stage-%d.npz" % (i - 1))
        handed_on = "optcompat.state file"
        if hands_on_a_checkpoint(run, before["env_family"]):
            assert not os.path.exists(previous), "an OptimizerV2 stage hands on its TF checkpoint only"
            previous = os.path.join(folder, "stage-%d-checkpoint" % (i - 1))
            handed_on = "TF checkpoint of %s" % before["optimizer"]
        assert os.path.exists(previous) or os.path.exists(previous + ".index"), \
            "stage %d did not write %s: run the chain in order" % (i - 1, previous)
        loaded = state.load(model.optimizer, previous, model.trainable_variables, restore_variables=True)
        assert loaded.iterations == i * STEPS
    rows = slice(i * STEPS * BATCH, (i + 1) * STEPS * BATCH)
    fit(model, x[rows], y[rows])
    assert host.iterations(model.optimizer) == (i + 1) * STEPS
    saved = state.save(model.optimizer, os.path.join(folder, "stage-%d.npz" % i), model.trainable_variables)
    if hands_on_a_checkpoint(run, host.family):
        os.remove(os.path.join(folder, "stage-%d.npz" % i))  # the next env has the checkpoint only
        assert host.tf is not None, "an OptimizerV2 stage writes a TF checkpoint: it needs TensorFlow"
        checkpoint = host.tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        checkpoint.write(os.path.join(folder, "stage-%d-checkpoint" % i))
    record = {"stage": i, "env_family": host.family, "optimizer": saved.header["optimizer"],
              "iterations": saved.iterations, "versions": saved.header["versions"], "loaded_from": handed_on}
    if i == n - 1:
        straight = np.load(os.path.join(folder, "straight.npy"))
        record["max_abs_diff_vs_straight"] = float(np.max(np.abs(flat(model) - straight)))
        record["moved"] = float(np.max(np.abs(flat(host.dense_model(seed=0)) - straight)))
        assert record["moved"] > 100 * TOL  # the run went somewhere
        assert record["max_abs_diff_vs_straight"] < TOL, record
    with open(os.path.join(folder, "stage-%d.json" % i), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)


@applies(in_a_chain)
def test_the_upgrading_page_runs_across_the_chain(host):
    """docs/upgrading.md as a user follows it: its "before" block in the first env (TF 1.15's
    own Adam, with TF 2 behaviour), its "after" block in every later Keras 3 env, on the file the
    first wrote."""
    from test_upgrading_doc import block
    from test_upgrading_doc import run_in

    i, n = (int(p) for p in STAGE.split("/"))
    folder = os.path.join(CHAIN_DIR, "docs-page")
    os.makedirs(folder, exist_ok=True)
    if i == 0:
        run_in(folder, block("Before the upgrade"))
    elif host.family == "keras3":
        run_in(folder, block("After the upgrade"))
    else:
        pytest.skip("docs/upgrading.md's after block is written for Keras 3 (this stage is %s)" % host.family)
    record = {"stage": i, "optimizer": "docs/upgrading.md " + ("before" if i == 0 else "after"),
              "iterations": state.read(os.path.join(folder, "run.npz")).iterations}
    with open(os.path.join(folder, "stage-%d.json" % i), "w") as f:
        json.dump(record, f)


# -- the raw chain: a custom training loop ---------------------------------------------------
RAW_SHAPES = ((4, 8), (8,), (8, 1), (1,))


def raw_variables(host, seed):
    """A two-layer network's variables, created without names as a custom loop creates them."""
    rng = np.random.default_rng(seed)
    values = [(0.5 * rng.normal(size=s)).astype(np.float32) for s in RAW_SHAPES]
    if host.family == "keras3":
        return [host.keras.Variable(v) for v in values]
    return [host.tf.Variable(v) for v in values]


def _loss(ops, params, x, y):
    matmul, tanh, mean = ops
    w1, b1, w2, b2 = params
    return mean((matmul(tanh(matmul(x, w1) + b1), w2) + b2 - y) ** 2)


def gradients(host, variables, x, y):
    """d mse / d variables, by the backend's own automatic differentiation."""
    if host.backend == "tensorflow":
        tf = host.tf
        with tf.GradientTape() as tape:
            loss = _loss((tf.matmul, tf.tanh, tf.reduce_mean), variables, tf.constant(x), tf.constant(y))
        return tape.gradient(loss, variables)
    if host.backend == "jax":
        import jax
        import jax.numpy as jnp

        return jax.grad(lambda p: _loss((jnp.matmul, jnp.tanh, jnp.mean), p, x, y))([v.value for v in variables])
    import torch

    params = [v.value for v in variables]
    loss = _loss((torch.matmul, torch.tanh, torch.mean), params, torch.from_numpy(x), torch.from_numpy(y))
    return list(torch.autograd.grad(loss, params))


def raw_optimizer(host):
    return host.make("AdamW", learning_rate=host.exponential_decay(0.01, 20, 0.8), weight_decay=0.05)


def train_raw(host, opt, variables, x, y):
    for start in range(0, len(x), BATCH):
        grads = gradients(host, variables, x[start:start + BATCH], y[start:start + BATCH])
        opt.apply_gradients(zip(grads, variables))


def raw_flat(host, variables):
    return np.concatenate([host.value(v).ravel() for v in variables])


@applies(in_the_raw_chain)
def test_a_raw_variable_run_crosses_the_chain(host):
    i, n = (int(p) for p in STAGE.split("/"))
    folder = os.path.join(CHAIN_DIR, "raw-adamw")
    os.makedirs(folder, exist_ok=True)
    x, y = data(n=n * STEPS * BATCH, seed=4)
    if i == 0:  # the straight run, in the first env
        straight = raw_variables(host, seed=0)
        opt = raw_optimizer(host)
        train_raw(host, opt, straight, x, y)
        assert host.iterations(opt) == n * STEPS
        np.save(os.path.join(folder, "straight.npy"), raw_flat(host, straight))
    variables = raw_variables(host, seed=0 if i == 0 else 1)
    opt = raw_optimizer(host)
    names = [v.path if host.family == "keras3" else v.name for v in variables]
    record = {"stage": i, "env_family": host.family, "names_here": names}
    if i > 0:
        previous = os.path.join(folder, "stage-%d.npz" % (i - 1))
        assert os.path.exists(previous), "stage %d did not write %s: run the chain in order" % (i - 1, previous)
        loaded = state.load(opt, previous, variables, restore_variables=True)
        assert loaded.iterations == i * STEPS
        record["names_in_file"] = [spec["name"] for spec in loaded.variables]
    rows = slice(i * STEPS * BATCH, (i + 1) * STEPS * BATCH)
    train_raw(host, opt, variables, x[rows], y[rows])
    assert host.iterations(opt) == (i + 1) * STEPS
    saved = state.save(opt, os.path.join(folder, "stage-%d.npz" % i), variables)
    record.update(optimizer=saved.header["optimizer"], iterations=saved.iterations,
                  versions=saved.header["versions"])
    if i == n - 1:
        straight = np.load(os.path.join(folder, "straight.npy"))
        record["max_abs_diff_vs_straight"] = float(np.max(np.abs(raw_flat(host, variables) - straight)))
        record["moved"] = float(np.max(np.abs(raw_flat(host, raw_variables(host, seed=0)) - straight)))
        assert record["moved"] > 100 * TOL  # the run went somewhere
        assert record["max_abs_diff_vs_straight"] < TOL, record
    with open(os.path.join(folder, "stage-%d.json" % i), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)


# -- the torch chain: torch.optim -> Keras 3 on tensorflow -> torch.optim ---------------------
def in_the_torch_chain(facts, params):
    return bool(CHAIN_DIR and STAGE) and facts.family == ENV.default and CHAIN == "state-chain-torch"


@applies(in_the_torch_chain)
@pytest.mark.parametrize("run", ("adamw-amsgrad", "sgd-nesterov", "sgd-momentum"))
def test_a_torch_run_crosses_keras_on_tensorflow(host, run):
    """``[optcompat:state-chain-torch]`` (keras3-torch -> keras3-tf -> keras3-torch): torch's
    AdamW (amsgrad) / SGD (momentum; Nesterov) 15 steps, optcompat on Keras 3's tensorflow backend 15
    (convention "torch"), torch 15: within 1e-5 of 45 straight torch steps (tests/foreign.py;
    tests/test_state_torch.py runs the torch and jax backends in one env)."""
    import importlib.util

    import foreign

    i, n = (int(p) for p in STAGE.split("/"))
    folder = os.path.join(CHAIN_DIR, run)
    os.makedirs(folder, exist_ok=True)
    previous = os.path.join(folder, "stage-%d.npz" % (i - 1))
    out = os.path.join(folder, "stage-%d.npz" % i)
    record = {"stage": i}
    if importlib.util.find_spec("torch") is not None and host.backend != "tensorflow":
        import torch

        from test_state_torch import make
        from test_state_torch import params
        from test_state_torch import torch_steps
        from test_state_torch import values

        if i == 0:
            straight = params()
            torch_steps(make(run, straight), straight, 0, n * foreign.STEPS)
            np.savez(os.path.join(folder, "straight.npz"), *values(straight))
        ps = params() if i == 0 else [torch.nn.Parameter(torch.zeros(s)) for s in foreign.SHAPES]
        opt = make(run, ps)
        if i > 0:
            state.load(opt, previous, ps, restore_variables=True)
        torch_steps(opt, ps, i * foreign.STEPS, foreign.STEPS)
        saved = state.save(opt, out, ps)
        final = values(ps)
    else:
        assert host.family == "keras3" and host.backend == "tensorflow", "the Keras stage runs on tensorflow"
        iterations = state.read(previous).iterations
        final = foreign.keras_stage({"run": run, "in": previous, "out": out, "t0": i * foreign.STEPS,
                                     "steps": foreign.STEPS, "convention": "torch", "iterations": iterations})
        saved = state.read(out)
    record.update(optimizer=saved.header["optimizer"], iterations=saved.iterations,
                  versions=saved.header["versions"])
    if i == n - 1:
        with np.load(os.path.join(folder, "straight.npz")) as npz:
            straight = [npz["arr_%d" % k] for k in range(len(npz.files))]
        record["max_abs_diff_vs_straight"] = max(float(np.max(np.abs(a - b))) for a, b in zip(final, straight))
        record["moved"] = max(float(np.max(np.abs(a - b))) for a, b in zip(foreign.initial(), straight))
        assert record["moved"] > 100 * TOL
        assert record["max_abs_diff_vs_straight"] < TOL, record
    with open(os.path.join(folder, "stage-%d.json" % i), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
