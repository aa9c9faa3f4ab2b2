"""Bad input is refused with the argument named, before anything is created or changed."""
import importlib
import math

import numpy as np
import pytest

import optcompat
from support import data
from support import flat
from support import host_class

BAD_COMMON = [
    ("learning_rate", -1e-3, ValueError), ("learning_rate", float("nan"), ValueError),
    ("learning_rate", float("inf"), ValueError), ("learning_rate", "0.1", TypeError),
    ("learning_rate", True, TypeError),
    ("weight_decay", -0.1, ValueError), ("weight_decay", float("nan"), ValueError),
    ("convention", "pytorch", ValueError), ("convention", None, ValueError),
    ("clipnorm", -1.0, ValueError), ("clipvalue", 0.0, ValueError),
    ("global_clipnorm", float("nan"), ValueError),
    ("exclude_from_weight_decay", "bias", TypeError),
]
BAD = {
    "AdamW": BAD_COMMON + [
        ("weight_decay", None, TypeError),  # (SGDW takes None, as Keras's SGD)
        ("beta_1", 1.0, ValueError), ("beta_1", -0.1, ValueError), ("beta_2", 1.5, ValueError),
        ("beta_2", float("nan"), ValueError), ("epsilon", -1e-7, ValueError),
        ("amsgrad", 1, TypeError), ("amsgrad", "yes", TypeError),
    ],
    "SGDW": BAD_COMMON + [
        ("momentum", 1.0, ValueError), ("momentum", -0.5, ValueError),
        ("nesterov", 0, TypeError), ("nesterov", None, TypeError),
    ],
}
RANGE_WORDS = {"beta_1": "[0, 1)", "beta_2": "[0, 1)", "momentum": "[0, 1)",
               "convention": "'keras'", "learning_rate": "[0", "weight_decay": "[0", "epsilon": "[0"}


@pytest.mark.parametrize("name,arg,value,error",
                         [(n, a, v, e) for n, cases in BAD.items() for a, v, e in cases],
                         ids=lambda x: str(x))
def test_bad_constructor_argument_is_refused(host, name, arg, value, error):
    with pytest.raises(error) as info:
        host.make(name, **{arg: value})
    msg = str(info.value)
    assert "`%s`" % arg in msg, msg
    if arg in RANGE_WORDS:
        assert RANGE_WORDS[arg] in msg, msg


def test_two_clipping_arguments_are_refused(host):
    with pytest.raises(ValueError, match="clipnorm"):
        host.make("AdamW", clipnorm=1.0, clipvalue=1.0)


def test_good_arguments_are_kept(host):
    opt = host.make("AdamW", learning_rate=3, weight_decay=0, beta_1=0, epsilon=0, convention="tfa")
    assert (opt.beta_1, opt.epsilon, opt.convention) == (0.0, 0.0, "tfa")
    assert math.isclose(float(host.value(opt.learning_rate)), 3.0)


def _state(host, opt, variables):
    return [host.value(v) for v in variables] + host.slots(opt)


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_bad_gradient_changes_nothing(host, name, bad):
    opt = host.make(name, learning_rate=0.1, weight_decay=0.1, **({"momentum": 0.9} if name == "SGDW" else {}))
    variables = [host.variable(np.ones((2, 3), np.float32), name="a"),
                 host.variable(np.ones((4,), np.float32), name="b")]
    good = [np.full((2, 3), 0.5, np.float32), np.full((4,), 0.5, np.float32)]
    host.apply(opt, good, variables)  # built, slots non-zero
    before = _state(host, opt, variables)
    # (a float gradient of another float dtype is cast in Keras 3, as its own optimizers do)
    wrong = np.full((5,), 0.5, np.float32) if bad == "shape" else np.full((4,), 1, np.int32)
    with pytest.raises(ValueError if bad == "shape" else TypeError, match="variable '[^']*b[^']*'"):
        host.apply(opt, [good[0], wrong], variables)
    after = _state(host, opt, variables)
    assert len(before) == len(after)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)


def test_a_type_error_is_also_the_value_error_keras_raises(host):
    """``AdamW(weight_decay=None)``: Keras's own AdamW raises ValueError, Python's convention
    is TypeError; optcompat's error is both, so code written for either catches it."""
    with pytest.raises(TypeError) as info:
        host.make("AdamW", weight_decay=None)
    assert isinstance(info.value, ValueError) and "`weight_decay`" in str(info.value)


def test_sgdw_without_weight_decay(host):
    """SGDW's default, as Keras's SGD: ``weight_decay=None``, no decay, None in its config."""
    opt = host.make("SGDW", learning_rate=0.1)
    assert opt.get_config()["weight_decay"] is None
    variables = [host.variable(np.ones((3,), np.float32))]
    host.apply(opt, [np.full((3,), 0.5, np.float32)], variables)
    np.testing.assert_allclose(host.value(variables[0]), np.full((3,), 0.95), rtol=1e-6)


def test_config_gives_back_the_values_given(host):
    """``get_config`` gives the floats the user gave, not a float32 variable's rounding of
    them (``0.009999999776482582`` for ``0.01``), in every family."""
    opt = host.make("AdamW", learning_rate=0.003, weight_decay=0.01, beta_1=0.85, beta_2=0.99)
    host.apply(opt, [np.full((3,), 0.5, np.float32)], [host.variable(np.ones((3,), np.float32))])
    config = opt.get_config()
    assert (config["learning_rate"], config["weight_decay"], config["beta_1"], config["beta_2"]) == \
        (0.003, 0.01, 0.85, 0.99)
    opt.learning_rate = 0.25  # set later: the value set
    assert opt.get_config()["learning_rate"] == 0.25


@pytest.mark.families("keras3")
def test_a_float_gradient_of_another_dtype_is_cast_as_the_host_does(host):
    """Keras 3's own optimizers cast each gradient to its variable's dtype (its own tests
    apply float32 gradients to float64 variables): optcompat's do the same, with the
    numbers of the float32 gradient."""
    def step(opt, gradient):
        x = host.variable(np.ones((4,), np.float32))
        host.apply(opt, [gradient], [x])
        return host.value(x)

    g = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    cast = step(host.make("AdamW", learning_rate=0.1), g.astype(np.float16))
    np.testing.assert_array_equal(cast, step(host.make("AdamW", learning_rate=0.1), g))
    np.testing.assert_allclose(cast, step(host.host_adamw(learning_rate=0.1), g.astype(np.float16)), atol=1e-6)


def test_normalized_weight_decay():
    """lambda_norm * sqrt(b / (B T)) (the paper's Appendix B.1), = sqrt(1 / iterations);
    keras-adamw's use of it is checked against keras-adamw (test_tf_specifics)."""
    import optcompat

    assert optcompat.normalized_weight_decay(0.05, batch_size=128, samples_per_epoch=50000, epochs=200) \
        == pytest.approx(0.05 * (128 / (50000 * 200)) ** 0.5, rel=1e-15)
    assert optcompat.normalized_weight_decay(0.1, total_iterations=400) == pytest.approx(0.005, rel=1e-15)
    with pytest.raises(ValueError, match="total_iterations"):
        optcompat.normalized_weight_decay(0.1, total_iterations=0)
    with pytest.raises(ValueError, match="lambda_norm"):
        optcompat.normalized_weight_decay(-0.1, total_iterations=10)
    with pytest.raises(TypeError, match="samples_per_epoch"):
        optcompat.normalized_weight_decay(0.1, batch_size=32)


# -- checks where the value is known (issue 35) ----------------------------------------------

@pytest.mark.parametrize("pattern", ["[bias", "dense(", "*kernel"])
def test_a_bad_pattern_is_a_value_error_naming_it(host, pattern):
    """A pattern that is no regular expression: a ValueError naming the argument and the
    pattern (not a bare ``re.error``), from AdamW and ``decoupled()`` alike."""
    makers = [lambda: host.make("AdamW", exclude_from_weight_decay=["bias", pattern]),
              lambda: optcompat.decoupled(host_class(host, "Nadam"))(
                  weight_decay=0.1, exclude_from_weight_decay=[pattern])]
    for make in makers:
        with pytest.raises(ValueError) as info:
            make()
        msg = str(info.value)
        assert "`exclude_from_weight_decay`" in msg and repr(pattern) in msg, msg
    # lr_multipliers / weight_decays keys are names and substrings (keras-adamw's), taken literally
    opt = host.make("AdamW", lr_multipliers={pattern: 0.5}, weight_decays={pattern: 0.1})
    assert opt.get_config()["lr_multipliers"] == {pattern: 0.5}


def _hyper(host, value):
    return float(value) if isinstance(value, (int, float)) else float(host.value(value))


SETTINGS = [("AdamW", "learning_rate", -1.0), ("AdamW", "learning_rate", float("nan")),
            ("AdamW", "beta_1", 1.5), ("AdamW", "beta_2", float("nan")), ("AdamW", "weight_decay", -1.0),
            ("SGDW", "learning_rate", float("inf")), ("SGDW", "momentum", 1.0),
            ("SGDW", "momentum", -0.1)]


@pytest.mark.parametrize("name,arg,value", SETTINGS, ids=lambda x: str(x))
def test_a_bad_setting_is_refused_and_changes_nothing(host, name, arg, value):
    """``opt.<hyperparameter> = value`` is checked as the argument is: a ValueError naming it
    and the range; the value, variables, slots and step counter unchanged, and the next step
    takes the value given before."""
    opt = host.make(name, learning_rate=0.1, weight_decay=0.1, **({"momentum": 0.9} if name == "SGDW" else {}))
    variables = [host.variable(np.ones((2, 3), np.float32), name="a")]
    grads = [np.full((2, 3), 0.5, np.float32)]
    host.apply(opt, grads, variables)
    before = _state(host, opt, variables) + [host.iterations(opt)], _hyper(host, getattr(opt, arg))
    with pytest.raises(ValueError) as info:
        setattr(opt, arg, value)
    msg = str(info.value)
    assert "`%s`" % arg in msg and ("[0, 1)" if arg in ("beta_1", "beta_2", "momentum") else "[0") in msg, msg
    after = _state(host, opt, variables) + [host.iterations(opt)], _hyper(host, getattr(opt, arg))
    assert after[1] == before[1]
    for x, y in zip(before[0], after[0]):
        np.testing.assert_array_equal(x, y)
    host.apply(opt, grads, variables)  # the value given before still steps
    assert np.all(np.isfinite(host.value(variables[0]))) and host.iterations(opt) == 2


def _constant_schedule(host, value):
    class Constant(host.keras.optimizers.schedules.LearningRateSchedule):
        """A schedule whose value is a Python number at every step (known when traced)."""

        def __call__(self, step):
            return value

        def get_config(self):
            return {}

    return Constant()


def _applies_to_rate(facts, params):
    # Keras 2's base class takes no callable learning rate (refused when made); OptimizerV2
    # computes a schedule's learning rate inside its own _decayed_lr, from the traced step
    if params["arg"] == "learning_rate":
        return facts.family != ("keras2" if params["kind"] == "callable" else "legacy")
    return True


@pytest.mark.applies(lambda facts, params: _applies_to_rate(facts, params))
@pytest.mark.parametrize("eager", [False, True], ids=["compiled", "eager"])
@pytest.mark.parametrize("kind", ["callable", "schedule"])
@pytest.mark.parametrize("arg", ["weight_decay", "learning_rate"])
def test_a_bad_rate_known_when_traced_changes_nothing_in_fit(host, arg, kind, eager):
    """``AdamW(weight_decay=lambda: -50.0)``: the value is a Python number when the compiled
    step is traced, so it is checked then, as in an eager step: ``fit`` raises a ValueError
    naming the argument, and no weight and no step counter changed (the compiled step used to
    apply it: weights grew from 1.0 to 1.158 with a zero gradient)."""
    bad = -50.0
    value = (lambda: bad) if kind == "callable" else _constant_schedule(host, bad)
    opt = host.make("AdamW", **dict({"learning_rate": 0.01, "weight_decay": 0.1}, **{arg: value}))
    x, y = data()
    model = host.dense_model()
    before = flat(model)
    model.compile(optimizer=opt, loss="mse", run_eagerly=eager)
    with pytest.raises(ValueError, match="`%s`.*-50" % arg):
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(flat(model), before)
    assert host.iterations(opt) == 0


def _other_keras(host):
    """The schedules module of the Keras installed beside this family's (tf_keras beside
    Keras 3), or None."""
    name = "tf_keras" if host.family == "keras3" else "keras"
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None, None
    if name == "keras" and not hasattr(module, "Variable"):  # Keras 2 itself: the same Keras
        return None, None
    return module.optimizers.schedules, "Keras 2 (tf_keras" if name == "tf_keras" else "Keras 3 (keras"


@pytest.mark.installed("keras", "tf_keras")
@pytest.mark.parametrize("arg", ["learning_rate", "weight_decay"])
def test_a_schedule_of_another_keras_is_refused_naming_it(host, arg):
    """A schedule of the other installed Keras (tf_keras beside Keras 3, and the reverse): a
    TypeError naming the argument and the Keras it belongs to, when the optimizer is made or
    the value set, not a failure inside ``fit``; a refused setting changes nothing."""
    schedules, label = _other_keras(host)
    if schedules is None:
        pytest.skip("one Keras in this env for %s" % host.family)
    other = schedules.ExponentialDecay(0.1, 10, 0.9)
    for make in (lambda: host.make("AdamW", **{arg: other}),
                 lambda: optcompat.decoupled(host_class(host, "Nadam"))(
                     **dict({"weight_decay": 0.1}, **{arg: other}))):
        with pytest.raises(TypeError) as info:
            make()
        msg = str(info.value)
        assert "`%s`" % arg in msg and label in msg, msg
    opt = host.make("AdamW", learning_rate=0.1, weight_decay=lambda: 0.1)
    before = _hyper(host, opt.learning_rate)
    with pytest.raises(TypeError, match="`%s`.*%s" % (arg, label.replace("(", r"\("))):
        setattr(opt, arg, other)
    assert _hyper(host, opt.learning_rate) == before and opt.get_config()["weight_decay"] == 0.1
