"""Every line of the migration pages (tests/migrations.py, written into docs/migration/ by
ci/docs.py): the peer's code and optcompat's, run over the same 40 steps where the peer installs,
give the same weights (within ORACLE_TOL).  optcompat's side is what a user types: ``optcompat.X``
of the env's default family."""
import importlib

import numpy as np
import pytest

import migrations
from support import ENV, ORACLE_TOL, has_builtin, problem, steps, worst

NAMES = ("kernel", "bias")


def ids(peer):
    return [r.what for r in migrations.ROWS if r.peer == peer]


def rows(peer):
    return [r for r in migrations.ROWS if r.peer == peer]


def ours(host, row, x0, grads):
    import optcompat
    import optcompat.schedules  # noqa: F401  (the rows name optcompat.schedules.X)

    opt = eval(row.ours, {"optcompat": optcompat, "keras": host.keras})
    assert type(opt).__name__ in ("AdamW", "SGDW") and opt.convention == migrations.PEERS[row.peer][2]
    return steps(host, opt, x0, grads, NAMES)[0]


def statements(code, namespace):
    """Run the peer's code: an expression gives ``opt``, statements set it."""
    try:
        namespace["opt"] = eval(code, namespace)
    except SyntaxError:
        exec(code, namespace)
    return namespace["opt"], namespace.get("sched")


def check(host, row, theirs, x0, grads):
    mine = ours(host, row, x0, grads)
    error = worst(mine, theirs)
    assert error <= ORACLE_TOL, "%s: %r vs %r: %.3g apart over %d steps" % (
        row.peer, row.theirs, row.ours, error, len(grads))
    moved = max(np.max(np.abs(a - b)) for a, b in zip(theirs[-1], x0))
    assert moved > 10 * ORACLE_TOL  # the weights moved, or equality proves nothing


# the rows write keras.optimizers.AdamW: Keras 2 has it there from TF 2.12 (2.11: .experimental only)
@pytest.mark.applies(lambda facts, params: facts.family == ENV.default and has_builtin(facts, "AdamW")
                     and has_builtin(facts, "SGD(weight_decay)")
                     and not (facts.family == "keras2" and facts.at(tensorflow="<2.12")))
@pytest.mark.parametrize("row", rows("keras"), ids=ids("keras"))
def test_keras_rows(host, row):
    """Keras's own AdamW / SGD and optcompat's, the same arguments, the default convention."""
    x0, grads = problem(3)
    opt, _ = statements(row.theirs, {"keras": host.keras})
    check(host, row, steps(host, opt, x0, grads, NAMES)[0], x0, grads)


@pytest.mark.applies(lambda facts, params: facts.family == ENV.default)
@pytest.mark.installed("torch")  # the keras3-torch envs (torch 2.13.0)
@pytest.mark.parametrize("row", rows("torch"), ids=ids("torch"))
def test_torch_rows(host, row):
    """torch.optim's optimizers (and scheduler), stepped on torch parameters, and optcompat's
    AdamW / SGDW with convention="torch"."""
    import torch

    x0, grads = problem(4)
    kernel, bias = (torch.nn.Parameter(torch.tensor(x)) for x in x0)
    opt, sched = statements(row.theirs, {"torch": torch, "params": [kernel, bias], "kernel": kernel,
                                         "bias": bias})
    theirs = []
    for g in grads:
        kernel.grad, bias.grad = (torch.tensor(gi) for gi in g)
        opt.step()
        if sched is not None:
            sched.step()
        theirs.append([kernel.detach().numpy().copy(), bias.detach().numpy().copy()])
    check(host, row, theirs, x0, grads)


@pytest.mark.applies(lambda facts, params: facts.family == ENV.default)
@pytest.mark.skipif(importlib.util.find_spec("optax") is None,
                    reason="optax is not installed (the keras3-jax env installs optax 0.2.8)")
@pytest.mark.parametrize("row", rows("optax"), ids=ids("optax"))
def test_optax_rows(host, row):
    """optax's transformations, applied to a params dict, and optcompat's AdamW / SGDW with
    convention="torch"."""
    import jax
    import jax.numpy as jnp
    import optax

    x0, grads = problem(5)
    params = {n: jnp.asarray(x) for n, x in zip(NAMES, x0)}
    tx, _ = statements(row.theirs, {"optax": optax, "jax": jax})
    state = tx.init(params)
    theirs = []
    for g in grads:
        updates, state = tx.update({n: jnp.asarray(gi) for n, gi in zip(NAMES, g)}, state, params)
        params = optax.apply_updates(params, updates)
        theirs.append([np.asarray(params[n]) for n in NAMES])
    check(host, row, theirs, x0, grads)

