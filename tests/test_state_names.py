"""optcompat.state matches variables by name only where both sides chose one.

A variable created without a name gets one the host generates -- TensorFlow's ``Variable:0``
(``Variable_1:0`` in a graph), Keras 3's ``variable``, ``variable_14`` (counted per process),
under any scope -- and such a name says nothing about which variable it is: a file saved
from raw variables (a custom training loop) loads into raw variables in a new process, where
the counter and the scope differ.  Names both sides chose must still match: a renamed model is
refused, its message says how to accept it, nothing changes, and ``match="order"`` loads it,
the run continuing as the saved one.  (A run of raw variables across families and releases:
tests/test_state_chain.py, the raw chain.)"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from processes import TESTS
from processes import finish
from processes import start
from support import data
from support import flat
from support import seeded
from test_state import assert_unchanged
from test_state import snapshot

state = pytest.importorskip("optcompat.state")

SHAPES = ((4, 8), (8,), (8, 1), (1,))

# what each host names a variable created without a name (checked here against the real
# variables, so that the names optcompat.state takes as generated are the hosts' own)
GENERATED = {"keras3": r"^(.+/)?variable(_[0-9]+)?$", "keras2": r"^(.+/)?Variable(_[0-9]+)?:0$",
             "legacy": r"^(.+/)?Variable(_[0-9]+)?:0$"}


def unnamed(host, values):
    """Variables created without a name, as a custom training loop creates them: tf.Variable
    in TensorFlow's families, keras.Variable in Keras 3."""
    if host.family == "keras3":
        return [host.keras.Variable(v) for v in values]
    return [host.tf.Variable(v) for v in values]


def adamw(host):
    return host.make("AdamW", learning_rate=0.01, weight_decay=0.05)


# the new process: other variables first (Keras 3's counter moves on), then the run's own
# under a scope, the file loaded into them, the same steps as the first process takes after
# saving; what it has after loading and after the steps goes back.  (Self-contained: the
# helpers above, as a user's script has them.)
CHILD = r"""
import sys

import numpy as np

from optcompat import state
from support import make_host

family, path, grads_path, out = sys.argv[1:5]
host = make_host(family)
shapes = %r


def unnamed(values):
    if family == "keras3":
        return [host.keras.Variable(v) for v in values]
    return [host.tf.Variable(v) for v in values]


unnamed([np.ones(s, np.float32) for s in shapes])
with (host.keras.name_scope if family == "keras3" else host.tf.name_scope)("resumed"):
    variables = unnamed([np.zeros(s, np.float32) for s in shapes])
opt = host.make("AdamW", learning_rate=0.01, weight_decay=0.05)
state.load(opt, path, variables, restore_variables=True)
result = {"names": np.array([v.path if family == "keras3" else v.name for v in variables]),
          "iterations": np.array(host.iterations(opt))}
for i, value in enumerate(host.slots(opt)):
    result["loaded_slot_%%d" %% i] = value
for i, v in enumerate(variables):
    result["loaded_value_%%d" %% i] = host.value(v)
with np.load(grads_path) as g:
    for step in range(len(g.files) // len(shapes)):
        host.apply(opt, [g["%%d_%%d" %% (step, i)] for i in range(len(shapes))], variables)
for i, value in enumerate(host.slots(opt)):
    result["slot_%%d" %% i] = value
for i, v in enumerate(variables):
    result["value_%%d" %% i] = host.value(v)
np.savez(out, **result)
""" % (SHAPES,)


def test_raw_variables_reload_in_a_new_process(host, tmp_path):
    rng = np.random.default_rng(5)
    values = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(6)]
    variables = unnamed(host, values)
    opt = adamw(host)
    for g in grads[:3]:
        host.apply(opt, g, variables)
    path = str(tmp_path / "raw.npz")
    saved = state.save(opt, path, variables)
    names = [spec["name"] for spec in saved.variables]
    assert all(re.match(GENERATED[host.family], n) for n in names), names
    at_save = host.slots(opt)
    grads_path = str(tmp_path / "grads.npz")
    np.savez(grads_path, **{"%d_%d" % (t, i): g[i] for t, g in enumerate(grads[3:]) for i in range(len(SHAPES))})

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = str(tmp_path / "child.npz")
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    finish(start(script, [[host.family, path, grads_path, out]], environ), timeout=300, what="the new process")
    for g in grads[3:]:
        host.apply(opt, g, variables)

    with np.load(out) as child:
        there = [str(n) for n in child["names"]]
        # generated names, other than the file's (the scope; in Keras 3 the counter too)
        assert all(re.match(GENERATED[host.family], n) for n in there), there
        assert all(a != b for a, b in zip(names, there)), (names, there)
        assert int(child["iterations"]) == 3
        for i, value in enumerate(at_save):
            np.testing.assert_array_equal(child["loaded_slot_%d" % i], value)
        for i, value in enumerate(saved.values):
            np.testing.assert_array_equal(child["loaded_value_%d" % i], value)
        # and the run goes on as in the first process
        for i, value in enumerate(host.slots(opt)):
            np.testing.assert_allclose(child["slot_%d" % i], value, rtol=0, atol=1e-6)
        for i, v in enumerate(variables):
            np.testing.assert_allclose(child["value_%d" % i], host.value(v), rtol=0, atol=1e-6)
    assert max(np.max(np.abs(host.value(v) - x)) for v, x in zip(variables, values)) > 1e-3  # it moved

    out = subprocess.run([sys.executable, "-m", "optcompat.state", "inspect", path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("(generated name)") == len(SHAPES), out.stdout


# -- a renamed model ---------------------------------------------------------------------------
def renamed_model(host, seed):
    """host.dense_model's shapes, its variables named w1, b1, w2, b2 (not kernel, bias)."""
    k = host.keras
    matmul = host.ops.matmul if host.family == "keras3" else host.tf.matmul

    class Affine(k.layers.Layer):
        def __init__(self, units, weight_names, **kwargs):
            super(Affine, self).__init__(**kwargs)
            self.units, self.weight_names = units, weight_names

        def build(self, input_shape):
            self.w = self.add_weight(name=self.weight_names[0], shape=(int(input_shape[-1]), self.units),
                                     initializer="zeros")
            self.b = self.add_weight(name=self.weight_names[1], shape=(self.units,), initializer="zeros")

        def call(self, x):
            return matmul(x, self.w) + self.b

    model = k.Sequential([k.Input((4,)), Affine(8, ("w1", "b1")), k.layers.Activation("tanh"),
                          Affine(1, ("w2", "b2"))])
    return seeded(model, seed)


def fit(model, epochs):
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)


def test_a_renamed_model_is_refused_unless_match_order(host, tmp_path):
    source = host.dense_model(seed=0)
    source.compile(optimizer=adamw(host), loss="mse")
    fit(source, 2)
    path = str(tmp_path / "run.npz")
    state.save(source.optimizer, path, source.trainable_variables)

    model = renamed_model(host, seed=2)
    model.compile(optimizer=adamw(host), loss="mse")
    fit(model, 1)  # built, its slots and step count not zero
    assert [v.shape for v in model.trainable_variables] == [v.shape for v in source.trainable_variables]
    before = snapshot(host, model)
    assert host.iterations(model.optimizer) == 4 and any(np.any(s != 0) for s in before[5:])
    with pytest.raises(state.StateError, match=r"'.*kernel.*' in the file, but '.*w1.*' here.*match=\"order\""):
        state.load(model.optimizer, path, model.trainable_variables, restore_variables=True)
    assert_unchanged(before, snapshot(host, model))  # weights, step count, every slot

    s = state.load(model.optimizer, path, model.trainable_variables, restore_variables=True, match="order")
    assert s.iterations == host.iterations(model.optimizer) == 8
    np.testing.assert_array_equal(flat(model), flat(source))
    fit(source, 1)
    fit(model, 1)
    assert np.max(np.abs(flat(model) - flat(source))) < 1e-6


@pytest.mark.parametrize("match", ["name", "ORDER", "", None, 1])
def test_match_takes_names_or_order(host, match, tmp_path):
    source = host.dense_model(seed=0)
    source.compile(optimizer=adamw(host), loss="mse")
    fit(source, 1)
    path = str(tmp_path / "run.npz")
    state.save(source.optimizer, path, source.trainable_variables)
    model = host.dense_model(seed=2)
    model.compile(optimizer=adamw(host), loss="mse")
    fit(model, 1)
    before = snapshot(host, model)
    expected = r"`match` must be one of 'names', 'order'.*received %s" % re.escape(repr(match))
    with pytest.raises(ValueError, match=expected):
        state.load(model.optimizer, path, model.trainable_variables, match=match)
    assert_unchanged(before, snapshot(host, model))
    with pytest.raises(ValueError, match=expected):  # before the file is read: no such file
        state.load(model.optimizer, str(tmp_path / "missing.npz"), model.trainable_variables, match=match)


@pytest.mark.parametrize("direction", ["raw-to-model", "model-to-raw"])
def test_a_generated_name_matches_a_chosen_one(host, direction, tmp_path):
    """A custom loop's variables (generated names) and a model's (kernel, bias: chosen): a
    generated name says nothing to compare, so the default loads by order, shape and dtype."""
    model = host.dense_model(seed=0)
    model.compile(optimizer=adamw(host), loss="mse")
    fit(model, 1)
    rng = np.random.default_rng(7)
    raw = unnamed(host, [rng.normal(size=s).astype(np.float32) for s in SHAPES])
    opt = adamw(host)
    for _ in range(2):
        host.apply(opt, [rng.normal(size=s).astype(np.float32) for s in SHAPES], raw)
    path = str(tmp_path / "run.npz")
    if direction == "raw-to-model":
        source, target = (opt, raw), (model.optimizer, model.trainable_variables)
    else:
        source, target = (model.optimizer, model.trainable_variables), (opt, raw)
    saved = state.save(source[0], path, source[1])
    s = state.load(target[0], path, target[1], restore_variables=True)
    assert s.iterations == host.iterations(target[0]) == (2 if direction == "raw-to-model" else 4)
    for v, value in zip(target[1], saved.values):
        np.testing.assert_array_equal(host.value(v), value)
    for a, b in zip(host.slots(target[0]), host.slots(source[0])):
        np.testing.assert_array_equal(a, b)


def made_without_names(host):
    """Variables made without a name each way the docs (docs/upgrading.md) list: TensorFlow:
    tf.Variable, tf.keras.backend.variable, a layer's add_weight() in a model; Keras 3:
    keras.Variable, under a name scope, a layer's add_weight() in a model."""
    k = host.keras

    class Scaled(k.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(2,), initializer="ones")

        def call(self, x):
            return x * self.w

    inputs = k.Input((2,))
    layer_weight = k.Model(inputs, Scaled()(inputs)).trainable_variables[0]
    if host.family == "keras3":
        with k.name_scope("outer"):
            scoped = k.Variable(np.ones(2, np.float32))
        return [k.Variable(np.ones(2, np.float32)), scoped, layer_weight]
    return [host.tf.Variable(np.ones(2, np.float32)), k.backend.variable(np.ones(2, np.float32)), layer_weight]


def test_the_names_hosts_generate_match_each_other(host, tmp_path):
    """Each way of making a variable without a name gives a name of GENERATED's form, and a
    file saved from one set loads into another set made in the same ways (other names)."""
    first, second = made_without_names(host), made_without_names(host)
    names = [[v.path if host.family == "keras3" else v.name for v in vs] for vs in (first, second)]
    assert all(re.match(GENERATED[host.family], n) for n in names[0] + names[1]), names
    opt = adamw(host)
    host.apply(opt, [np.full(2, 0.5, np.float32)] * 3, first)
    path = str(tmp_path / "run.npz")
    state.save(opt, path, first)
    # loaded in reverse order: each one's name is another's, generated all the same
    target = adamw(host)
    s = state.load(target, path, list(reversed(second)), restore_variables=True)
    assert s.iterations == host.iterations(target) == 1
    for v, w in zip(reversed(second), first):
        np.testing.assert_array_equal(host.value(v), host.value(w))
