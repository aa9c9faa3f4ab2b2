"""A variable's own rates (keras-adamw's ``lr_multipliers`` and ``weight_decays``), in every family
and convention: trajectories against the float64 reference, decays read from a model's regularizers
(``optcompat.weight_decays_from``), saving, strict names and bad values; keras-adamw 1.38 itself as
the oracle where it installs (tf22, tf23)."""
import os
import re

import numpy as np
import pytest

import optcompat
import reference
from support import CONVENTIONS
from support import ENV
from support import ORACLE_TOL
from support import TOL
from support import assert_close
from support import problem
from support import steps
from support import worst

RULES = {"AdamW": reference.adamw, "SGDW": reference.sgdw}

# optimizer -> its arguments; w0 gets its own (l1, l2), w1 the lr multiplier and the global decay
CASES = {
    "adamw-schedule": ("AdamW", dict(learning_rate=("exp", 0.02, 10, 0.5), weight_decay=0.1, amsgrad=True)),
    "adamw-float": ("AdamW", dict(learning_rate=0.01, weight_decay=0.05)),
    "sgdw-momentum": ("SGDW", dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True)),
}
OWN = {"w0": (0.02, 0.05)}
MULTIPLIERS = {"w1": 3.0, "w": 0.5}  # the first pattern a name contains wins: w1 x3, w0 x0.5


def per_variable_reference(name, kwargs, convention, x0, grads):
    """The float64 reference, variable by variable: w0 at lr x 0.5 with its own decays, w1 at lr x 3."""
    kw = dict(kwargs, convention=convention)
    lr = kw.pop("learning_rate")
    schedule = reference.exponential_decay(*lr[1:]) if isinstance(lr, tuple) else None
    out = []
    for i, x in enumerate(x0):
        factor = 3.0 if i == 1 else 0.5
        own = dict(kw)
        if schedule is not None:
            own.update(lr=lambda s, f=factor: schedule(s) * f, lr_0=schedule(0) * factor)
        else:
            own["lr"] = lr * factor
        if i == 0:
            own.update(l1=OWN["w0"][0], weight_decay=OWN["w0"][1])
        out.append(RULES[name](x, [g[i] for g in grads], **own))
    return [[out[i][t] for i in range(len(x0))] for t in range(len(grads))]


def build(host, name, kwargs, **extra):
    kw = dict(kwargs, **extra)
    if isinstance(kw["learning_rate"], tuple):
        kw["learning_rate"] = host.exponential_decay(*kw["learning_rate"][1:])
    return host.make(name, **kw)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_multipliers_and_own_decays_equal_the_reference(host, case, convention):
    name, kwargs = CASES[case]
    x0, grads = problem()
    opt = build(host, name, kwargs, convention=convention, lr_multipliers=MULTIPLIERS, weight_decays=OWN,
                strict_names=True)
    ours = steps(host, opt, x0, grads)[0]
    assert_close(ours, per_variable_reference(name, kwargs, convention, x0, grads), TOL)
    plain = steps(host, build(host, name, kwargs, convention=convention), x0, grads)[0]
    assert worst(ours, plain) > 10 * TOL  # the per-variable rates matter


def test_exclusion_wins_over_own_decays(host):
    """A variable excluded from weight decay gets none, its own decays included."""
    x0, grads = problem()
    ours = steps(host, host.make("AdamW", learning_rate=0.01, weight_decay=0.1, weight_decays=OWN,
                                 exclude_from_weight_decay=["w0"]), x0, grads)[0]
    ref = reference.adamw(x0[0], [g[0] for g in grads], 0.01, weight_decay=0.0)
    assert max(np.max(np.abs(a[0] - b)) for a, b in zip(ours, ref)) <= TOL


def test_config_roundtrip(host):
    opt = host.make("SGDW", weight_decay=0.1, lr_multipliers={"dense": 2.0, "bias": 1.0},
                    weight_decays={"dense/kernel": 0.3, "other:0": (0.1, 0.0)}, strict_names=True)
    config = opt.get_config()
    assert config["lr_multipliers"] == {"dense": 2.0, "bias": 1.0}
    assert config["weight_decays"] == {"dense/kernel": [0.0, 0.3], "other:0": [0.1, 0.0]}
    assert config["strict_names"] is True
    again = type(opt).from_config(config)
    assert again.get_config()["weight_decays"] == config["weight_decays"]
    assert list(again.get_config()["lr_multipliers"]) == ["dense", "bias"]  # the order decides


def test_strict_names_refuses_a_pattern_matching_nothing(host):
    """strict_names=True: a pattern or name that matches no variable is refused when the
    optimizer is built, naming it, and nothing is built."""
    x0, grads = problem()
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    for bad in (dict(lr_multipliers={"kernel": 2.0}), dict(weight_decays={"w0/kernel": 0.1})):
        opt = host.make("AdamW", strict_names=True, **bad)
        with pytest.raises(ValueError, match="strict_names.*%s" % list(list(bad.values())[0])[0]):
            host.apply(opt, grads[0], variables)
        assert [host.value(v) for v in variables][0].tolist() == x0[0].tolist()
        assert host.iterations(opt) == 0
    opt = host.make("AdamW", lr_multipliers={"kernel": 2.0})  # not strict: no variable matches, no change
    host.apply(opt, grads[0], variables)


BAD = [
    (dict(lr_multipliers={"dense": -1.0}), ValueError, "lr_multipliers"),
    (dict(lr_multipliers={"dense": float("nan")}), ValueError, "lr_multipliers"),
    (dict(lr_multipliers=[("dense", 2.0)]), TypeError, "lr_multipliers"),
    (dict(lr_multipliers={3: 2.0}), TypeError, "lr_multipliers"),
    (dict(weight_decays={"dense/kernel": -0.1}), ValueError, "weight_decays"),
    (dict(weight_decays={"dense/kernel": (0.1, 0.2, 0.3)}), ValueError, "weight_decays"),
    (dict(weight_decays={"dense/kernel": "0.1"}), TypeError, "weight_decays"),
    (dict(strict_names=1), TypeError, "strict_names"),
]


@pytest.mark.parametrize("kwargs,error,argument", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_values_are_refused(host, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        host.make("AdamW", **kwargs)


# -- decays from a model's regularizers ---------------------------------------------------------

def regularized_model(host):
    k = host.keras
    r = k.regularizers
    inp = k.Input((5, 3))
    x = k.layers.LSTM(4, kernel_regularizer=r.L1L2(0.01, 0.02), recurrent_regularizer=r.L1L2(0.0, 0.03),
                      name="lstm")(inp)
    x = k.layers.Dense(6, kernel_regularizer=r.L1L2(0.0, 0.05), bias_regularizer=r.L1L2(0.02, 0.0), name="dense")(x)
    out = k.layers.Dense(1, kernel_regularizer=r.L1L2(0.0, 0.0), name="head")(x)
    model = k.Model(inp, out)
    model.set_weights([np.random.default_rng(i).normal(size=w.shape).astype(np.float32) * 0.3
                       for i, w in enumerate(model.get_weights())])
    return model


def names(model):
    by_layer = {}
    for v in model.trainable_variables:
        by_layer.setdefault(getattr(v, "path", None) or v.name, v)
    return by_layer


def test_weight_decays_from_reads_and_zeroes_the_regularizers(host):
    model = regularized_model(host)
    found = optcompat.weight_decays_from(model)
    by_role = {}
    for name, decay in found.items():
        role = ("recurrent" if "recurrent" in name else "kernel" if "kernel" in name else "bias")
        by_role[(name.split("/")[0].rstrip("_0123456789"), role)] = tuple(round(d, 6) for d in decay)
    assert by_role == {("lstm", "kernel"): (0.01, 0.02), ("lstm", "recurrent"): (0.0, 0.03),
                       ("dense", "kernel"): (0.0, 0.05), ("dense", "bias"): (0.02, 0.0)}, found
    assert set(found) <= set(names(model))  # keyed as the optimizer finds variables
    lstm_cell, dense = model.get_layer("lstm").cell, model.get_layer("dense")
    assert float(lstm_cell.kernel_regularizer.l1) == 0.0 and float(dense.kernel_regularizer.l2) == 0.0
    model(np.ones((2, 5, 3), np.float32))  # the penalties the layers add are now 0
    assert not model.losses or float(np.sum([host.value(v) for v in model.losses])) == 0.0


def layer_weights(model):
    """The layers' weights, flat (TF 2.9-2.10's model.get_weights() also lists the optimizer's)."""
    return np.concatenate([np.ravel(w) for layer in model.layers for w in layer.get_weights()])


def test_weight_decays_from_a_model_in_fit(host):
    """The decays read from the regularizers, in a compiled fit: equal to the same dict written by
    hand from the layers' variables (with the penalties zeroed as weight_decays_from does)."""
    x = np.random.default_rng(0).normal(size=(32, 5, 3)).astype(np.float32)
    y = x[:, -1, :1]

    def by_hand(model):
        optcompat.weight_decays_from(model)  # only to zero the penalties
        cell, dense = model.get_layer("lstm").cell, model.get_layer("dense")
        key = lambda v: getattr(v, "path", None) or v.name  # noqa: E731
        return {key(cell.kernel): (0.01, 0.02), key(cell.recurrent_kernel): 0.03, key(dense.kernel): 0.05,
                key(dense.bias): (0.02, 0.0)}

    results = []
    for read in (optcompat.weight_decays_from, by_hand):
        model = regularized_model(host)
        model.compile(optimizer=host.make("AdamW", learning_rate=0.01, weight_decay=0.0, weight_decays=read(model),
                                          lr_multipliers={"lstm": 0.5}, strict_names=True),
                      loss="mean_squared_error")
        assert not model.losses or float(np.sum([host.value(v) for v in model.losses])) == 0.0
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        results.append(layer_weights(model))
    untouched = regularized_model(host)
    assert np.max(np.abs(results[0] - layer_weights(untouched))) > 1e-3
    assert np.max(np.abs(results[0] - results[1])) <= 1e-6


# -- keras-adamw itself ---------------------------------------------------------------------------

def _keras_adamw(host):
    from support import import_peer

    os.environ["TF_KERAS"] = "1"  # keras-adamw picks its tf.keras code at import
    return import_peer(host, "keras_adamw", "keras-adamw 1.38 runs on TF 2.2-2.3 (tox envs tf22, tf23)")


@pytest.mark.families("legacy")
@pytest.mark.installed("keras_adamw")
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_equals_keras_adamw_with_multipliers_regularizer_decays_and_restarts(host, name):
    """keras-adamw 1.38 with cosine annealing (autorestart), lr_multipliers and decays from the
    model's L1 / L2 regularizers (its get_weight_decays), over three restart periods: optcompat's
    CosineAnnealing, lr_multipliers and weight_decays_from(model) normalized by
    normalized_weight_decay, convention="keras-adamw", within 2e-6."""
    keras_adamw = _keras_adamw(host)
    from keras_adamw.utils import get_weight_decays

    from optcompat.schedules import for_family

    period, multipliers = 12, {"lstm": 0.5, "head": 2.0}
    lr = 0.01 if name == "AdamW" else 0.05
    extra = {} if name == "AdamW" else dict(momentum=0.9)
    theirs_model, ours_model = regularized_model(host), regularized_model(host)
    theirs = getattr(keras_adamw, name)(learning_rate=lr, weight_decays=get_weight_decays(theirs_model),
                                        use_cosine_annealing=True, total_iterations=period,
                                        lr_multipliers=multipliers, init_verbose=False, **extra)
    decays = {k: tuple(optcompat.normalized_weight_decay(d, period) for d in v)
              for k, v in optcompat.weight_decays_from(ours_model).items()}
    ours = getattr(host.module, name)(
        learning_rate=for_family(host.family).CosineAnnealing(lr, period), weight_decay=0.0, weight_decays=decays,
        lr_multipliers=multipliers, convention="keras-adamw", strict_names=True, **extra)
    rng = np.random.default_rng(0)
    start = ours_model.get_weights()
    for _ in range(3 * period):
        grads = [host.tensor(rng.normal(size=v.shape).astype(np.float32)) for v in theirs_model.trainable_variables]
        theirs.apply_gradients(zip(grads, theirs_model.trainable_variables))
        ours.apply_gradients(zip(grads, ours_model.trainable_variables))
    error = max(np.max(np.abs(a - b)) for a, b in zip(theirs_model.get_weights(), ours_model.get_weights()))
    assert max(np.max(np.abs(a - b)) for a, b in zip(ours_model.get_weights(), start)) > 0.05
    assert error <= ORACLE_TOL, error


@pytest.mark.families("legacy")
@pytest.mark.installed("keras_adamw")
def test_keras_adamw_model_argument_reads_zeroed_penalties(host):
    """A fact the README records: keras-adamw 1.38's ``AdamW(model=model)`` (its default
    ``zero_penalties=True``) zeroes the regularizers before reading them, so it decays nothing;
    its get_weight_decays(model) reads them (what optcompat.weight_decays_from does, zeroing after)."""
    keras_adamw = _keras_adamw(host)
    model = regularized_model(host)
    opt = keras_adamw.AdamW(model=model, total_iterations=12, init_verbose=False)
    assert opt.weight_decays == {}


# -- the docs' keras-adamw mapping (docs/migration/keras-adamw.md), run as written ------------------

def readme_block():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "migration", "keras-adamw.md")) as f:
        found = [b for b in re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
                 if b.startswith("# From keras-adamw")]
    assert len(found) == 1, "docs/migration/keras-adamw.md has no single python block starting '# From keras-adamw'"
    return found[0]


@pytest.mark.applies(lambda facts, params: facts.family == ENV.default)  # optcompat.AdamW: the default family
def test_readme_keras_adamw_block_runs(host):
    """The migration page's block on a regularized LSTM model, then three restart periods of fit; where
    keras-adamw installs, its own optimizer given what the block's comment says trains the same
    model to the same weights."""
    period, steps_per_epoch = 12, 6
    x = np.random.default_rng(0).normal(size=(48, 5, 3)).astype(np.float32)
    y = x[:, -1, :1] - x[:, 0, 1:2]
    model = regularized_model(host)
    exec(readme_block(), {"model": model, "T": period})
    assert model.optimizer.convention == "keras-adamw"
    start = model.get_weights()
    model.fit(x, y, batch_size=8, epochs=3 * period // steps_per_epoch, shuffle=False, verbose=0)
    assert host.iterations(model.optimizer) == 3 * period
    assert max(np.max(np.abs(a - b)) for a, b in zip(model.get_weights(), start)) > 1e-3
    if host.family != "legacy" or not host.facts.has("keras_adamw"):
        return
    keras_adamw = _keras_adamw(host)
    from keras_adamw.utils import get_weight_decays

    theirs = regularized_model(host)
    theirs.compile(optimizer=keras_adamw.AdamW(learning_rate=1e-3, weight_decays=get_weight_decays(theirs),
                                               use_cosine_annealing=True, total_iterations=period,
                                               lr_multipliers={"lstm": 0.5}, init_verbose=False),
                   loss="mean_squared_error")
    for layer in (theirs.get_layer("lstm").cell, theirs.get_layer("dense")):  # as weight_decays_from did
        for attribute in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer"):
            regularizer = getattr(layer, attribute, None)
            if regularizer is not None:
                regularizer.l1, regularizer.l2 = 0.0, 0.0
    theirs.fit(x, y, batch_size=8, epochs=3 * period // steps_per_epoch, shuffle=False, verbose=0)
    error = max(np.max(np.abs(a - b)) for a, b in zip(model.get_weights(), theirs.get_weights()))
    assert error <= 1e-5, error
