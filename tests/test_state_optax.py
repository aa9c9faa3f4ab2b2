"""optcompat.state with optax: a run of optax's adamw / sgd (plain, inject_hyperparams, a
mask, a chain spelled out) moved into Keras 3 on JAX and back, a Keras run continued in optax,
and every refusal with the state passed in left as it was (load returns a new state).

The references are optax's own straight runs (45 steps of the same gradients) and Keras's
(tests/foreign.py holds the parameters, the gradients and the Keras side).
"""
import json
import os

import numpy as np
import pytest

from foreign import STEPS
from foreign import TOL
from foreign import gradient
from foreign import initial
from foreign import keras_stage
from support import corrupted_copy
from support import truncated_copy

optax = pytest.importorskip("optax", reason="optax is not installed: the optax state tests need it")
jax = pytest.importorskip("jax", reason="jax is not installed: the optax state tests need it")
state = pytest.importorskip("optcompat.state")
on_jax = pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                            reason="Keras 3 on jax (KERAS_BACKEND=jax) runs the Keras side of these")


def tx(run):
    if run == "adamw":
        return optax.adamw(0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.05)
    if run == "adamw-injected":
        return optax.inject_hyperparams(optax.adamw)(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-8,
                                                         weight_decay=0.05)
    if run == "adamw-masked":  # the biases not decayed
        return optax.adamw(0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.05,
                           mask=lambda p: [x.ndim > 1 for x in p])
    if run == "adamw-chain":  # optax.adamw spelled out, under a chain of our own
        return optax.chain(optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8), optax.add_decayed_weights(0.05),
                           optax.scale(-0.01))
    if run == "adam":
        return optax.adam(0.01, b1=0.9, b2=0.999, eps=1e-8)
    if run == "sgd-nesterov":
        return optax.sgd(0.05, momentum=0.9, nesterov=True)
    if run == "sgd-momentum":
        return optax.sgd(0.05, momentum=0.8)
    raise KeyError(run)


# run -> the Keras side (tests/foreign.py's KERAS)
KERAS_RUN = {"adamw": "adamw", "adamw-injected": "adamw", "adamw-masked": "adamw-groups", "adamw-chain": "adamw",
             "sgd-nesterov": "sgd-nesterov", "sgd-momentum": "sgd-momentum", "adam": "adam"}


def params():
    return [jax.numpy.asarray(v) for v in initial()]


def optax_steps(t, ps, opt_state, t0, n):
    for i in range(t0, t0 + n):
        grads = [jax.numpy.asarray(g) for g in gradient([np.asarray(p) for p in ps], i)]
        updates, opt_state = t.update(grads, opt_state, ps)
        ps = optax.apply_updates(ps, updates)
    return ps, opt_state


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))


@on_jax
@pytest.mark.parametrize("run", sorted(KERAS_RUN))
def test_an_optax_run_moves_through_keras_and_back(run, tmp_path):
    """optax 15 steps -> optcompat on Keras 3 (jax) 15 steps -> optax 15 steps, equal to 45
    straight optax steps within 1e-5."""
    t = tx(run)
    ps, opt_state = optax_steps(t, params(), t.init(params()), 0, STEPS)
    first = str(tmp_path / "optax.npz")
    saved = state.save(opt_state, first, ps)
    assert saved.header["convention"] == "optax" and saved.header["family"] == "optax"
    assert saved.iterations == (0 if run.startswith("sgd") else STEPS)  # optax's sgd keeps no count
    if run == "adamw-injected":
        assert saved.header["hyperparameters"]["learning_rate"] == pytest.approx(0.01)
    second = str(tmp_path / "keras.npz")
    keras_stage({"run": KERAS_RUN[run], "in": first, "out": second, "t0": STEPS, "steps": STEPS,
                 "convention": "optax", "iterations": saved.iterations})
    straight, _ = optax_steps(t, params(), t.init(params()), 0, 3 * STEPS)
    fresh = t.init(params())
    before = jax.tree_util.tree_leaves(fresh)
    loaded = state.load(fresh, second, params())
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(fresh)
    for a, b in zip(before, jax.tree_util.tree_leaves(fresh)):  # the state passed in is as it was
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree_util.tree_leaves(loaded), before):
        assert a.dtype == b.dtype and a.shape == b.shape
    values = [np.asarray(v) for v in state.read(second).values]
    ps, after = optax_steps(t, [jax.numpy.asarray(v) for v in values], loaded, 2 * STEPS, STEPS)
    diff, moved = max_diff(ps, straight), max_diff(straight, initial())
    print("%s via Keras 3 on jax: max abs diff vs 45 straight optax steps %.3g (moved %.3g)" % (run, diff, moved))
    assert moved > 100 * TOL
    assert diff < TOL, (run, diff)


@on_jax
@pytest.mark.parametrize("run", ("adamw", "sgd-nesterov"))
def test_a_keras_run_continues_in_optax(run, tmp_path):
    """optcompat's AdamW / SGDW (convention="optax") on Keras 3, 15 steps, continued in optax
    for 15: equal to Keras's own 30 straight steps."""
    path = str(tmp_path / "keras.npz")
    keras_stage({"run": run, "in": None, "out": path, "t0": 0, "steps": STEPS, "convention": "optax"})
    straight = keras_stage({"run": run, "in": None, "out": None, "t0": 0, "steps": 2 * STEPS,
                            "convention": "optax"})
    t = tx(run)
    opt_state = state.load(t.init(params()), path, params())
    ps = [jax.numpy.asarray(v) for v in state.read(path).values]
    ps, _ = optax_steps(t, ps, opt_state, STEPS, STEPS)
    diff = max_diff(ps, straight)
    print("%s: Keras 3 (jax) 15 steps + optax 15 vs Keras 30 straight: %.3g" % (run, diff))
    assert max_diff(straight, initial()) > 100 * TOL
    assert diff < TOL


def test_an_injected_state_gets_the_files_count_and_rates(tmp_path):
    t = tx("adamw-injected")
    ps, opt_state = optax_steps(t, params(), t.init(params()), 0, 4)
    path = str(tmp_path / "s.npz")
    state.save(opt_state, path, ps)
    _rewrite(path, path, lambda h: h["hyperparameters"].update(learning_rate=0.02))
    other = state.load(t.init(params()), path, params())
    assert int(other.count) == 4 and int(other.inner_state[0].count) == 4
    assert float(other.hyperparams["learning_rate"]) == pytest.approx(0.02)
    for a, b in zip(jax.tree_util.tree_leaves(other.inner_state[0].mu),
                    jax.tree_util.tree_leaves(opt_state.inner_state[0].mu)):
        np.testing.assert_array_equal(a, b)


# -- refusals: nothing changes (the state passed in; load returns no state) -----------------
def _rewrite(path, out, edit):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(arrays.pop("header")).decode())
    edit(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(out, **arrays)
    return out


def _saved(tmp_path, run="adamw"):
    t = tx(run)
    ps, opt_state = optax_steps(t, params(), t.init(params()), 0, 3)
    path = str(tmp_path / ("%s.npz" % run))
    state.save(opt_state, path, ps)
    return path


def _amsgrad_file(p, t):
    """Keras's AdamW(amsgrad=True) with optax's convention: slots m, v, vhat."""
    if os.environ.get("KERAS_BACKEND") != "jax":
        pytest.skip("Keras 3 on jax (KERAS_BACKEND=jax) writes this file")
    out = str(t / "amsgrad.npz")
    keras_stage({"run": "adamw-amsgrad", "in": None, "out": out, "t0": 0, "steps": 2, "convention": "optax"})
    return out




BAD = {
    "other-kind": (lambda p, t: _saved(t, "sgd-nesterov"), None, "SGD-kind"),
    "other-slots": (_amsgrad_file, None, "amsgrad differs"),
    "other-convention": (lambda p, t: _rewrite(p, str(t / "torch.npz"), lambda h: h.update(convention="torch")),
                         None, "convention 'torch', but the optimizer uses 'optax'"),
    "fewer-leaves": (lambda p, t: p, lambda: params()[:-1], "4 variables, but 3 were given"),
    "other-shapes": (lambda p, t: p, lambda: [jax.numpy.zeros((4, 2)), jax.numpy.zeros(2),
                                              jax.numpy.zeros((3, 2)), jax.numpy.zeros(2)], "in the file, but"),
    "other-dtype": (lambda p, t: p, lambda: [x.astype(jax.numpy.bfloat16) for x in params()], "bfloat16 here"),
    "truncated": (lambda p, t: truncated_copy(p, str(t / "cut.npz")), None, "truncated or corrupted"),
    "corrupted": (lambda p, t: corrupted_copy(p, str(t / "flipped.npz")), None, "corrupted"),
    "newer-format": (lambda p, t: _rewrite(p, str(t / "new.npz"), lambda h: h.update(format_version=99)), None,
                     "version 99, newer than"),
}


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_refused_load_changes_nothing(bad, tmp_path):
    make_file, make_params, match = BAD[bad]
    path = make_file(_saved(tmp_path), tmp_path)
    t = tx("adamw")
    target = (make_params or params)()
    ps, opt_state = optax_steps(t, params(), t.init(params()), 0, 2)
    if make_params is not None:  # a state of those params
        opt_state = t.init(target)
    before = [np.asarray(x).copy() for x in jax.tree_util.tree_leaves(opt_state)]
    with pytest.raises(state.StateError, match=match):
        state.load(opt_state, path, target)
    after = jax.tree_util.tree_leaves(opt_state)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_restore_variables_amsgrad_and_two_adams_are_refused(tmp_path):
    path = _saved(tmp_path)
    t = tx("adamw")
    with pytest.raises(ValueError, match="restore_variables"):
        state.load(t.init(params()), path, params(), restore_variables=True)
    amsgrad = optax.amsgrad(0.01)
    with pytest.raises(state.StateError, match="maximum of the bias-corrected second moment"):
        state.save(amsgrad.init(params()), str(tmp_path / "amsgrad.npz"), params())
    two = optax.chain(optax.adam(0.01), optax.adam(0.01))
    with pytest.raises(state.StateError, match="holds 2 optimizer states"):
        state.save(two.init(params()), str(tmp_path / "two.npz"), params())
    assert not (tmp_path / "two.npz").exists()
