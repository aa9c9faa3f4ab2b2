"""Every line of the migration pages (tests/migrations.py, written into docs/migration/ by
ci/docs.py): the peer's code and optcompat's, run over the same 40 steps where the peer installs,
give the same weights (within ORACLE_TOL).  optcompat's side is what a user types: ``optcompat.X``
of the env's default family."""
import importlib

import numpy as np
import pytest

import migrations
from support import ENV
from support import ORACLE_TOL
from support import applies
from support import has_builtin
from support import problem
from support import steps
from support import worst

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
@pytest.mark.installed("torch")  # the keras3-torch envs (torch 2.15; 2.13.0 with an older Keras)
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



# -- the drop-in faces: the peer's code with its imports changed ------------------------------------

def _face_family(facts, params):
    """The family of the faces' classes (optcompat.tfa / optcompat.keras_adamw.default_family):
    OptimizerV2 beside Keras 2 or as the default, else the default family."""
    if ENV.default in ("keras2", "legacy") and "legacy" in ENV.families:
        return facts.family == "legacy"
    return facts.family == ENV.default


def _side(host, change, imports):
    """Run ``imports`` and the change's code; ``(opt, its namespace)``."""
    namespace = {"K": host.keras.backend}
    exec("\n".join(imports) + "\n" + change.use, namespace)
    return namespace["opt"], namespace


def _peer(host, peer):
    """The peer's module where it installs (this env's release), else None."""
    from support import tensorflow_addons
    from test_per_variable import _keras_adamw

    module = "tensorflow_addons" if peer == "tfa" else "keras_adamw"
    if host.family != "legacy" or importlib.util.find_spec(module) is None:
        return None
    return tensorflow_addons(host) if peer == "tfa" else _keras_adamw(host)


@applies(_face_family)
@pytest.mark.parametrize("change", migrations.CHANGES, ids=[c.peer + ": " + c.what for c in migrations.CHANGES])
def test_the_faces_one_changed_import(host, change):
    """The peer's code with only its imports changed (docs/migration/tfa.md, keras-adamw.md):
    optcompat's side gives the face's class and takes 40 steps that move the weights; where the
    peer installs (TFA: TF 2.2-2.15; keras-adamw: TF 2.2-2.3), its side, unchanged, gives the
    same weights (within ORACLE_TOL) and the same values the code reads (``K_eval``)."""
    face = "optcompat." + change.peer.replace("-", "_")
    for theirs, ours in change.imports:
        assert ours == theirs.replace(change.peer.replace("-", "_").replace("tfa", "tensorflow_addons"), face, 1)
    x0, grads = problem(6)
    opt, mine = _side(host, change, [ours for _, ours in change.imports])
    assert type(opt).__module__ == face
    weights = steps(host, opt, x0, grads, NAMES)[0]
    assert max(np.max(np.abs(a - b)) for a, b in zip(weights[-1], x0)) > 10 * ORACLE_TOL
    if _peer(host, change.peer) is None:
        return
    opt, theirs = _side(host, change, [t for t, _ in change.imports])
    assert type(opt).__module__.split(".")[0] == change.peer.replace("-", "_").replace("tfa", "tensorflow_addons")
    assert worst(weights, steps(host, opt, x0, grads, NAMES)[0]) <= ORACLE_TOL
    for name in set(mine) & set(theirs) - {"opt", "K", "__builtins__"}:
        if not isinstance(mine[name], type) and not callable(mine[name]) and not hasattr(mine[name], "__file__"):
            assert float(mine[name]) == pytest.approx(float(theirs[name]), abs=1e-7), name
