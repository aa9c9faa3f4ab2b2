"""Bad input is refused with the argument named, before anything is created or changed."""
import math

import numpy as np
import pytest

BAD_COMMON = [
    ("learning_rate", -1e-3, ValueError), ("learning_rate", float("nan"), ValueError),
    ("learning_rate", float("inf"), ValueError), ("learning_rate", "0.1", TypeError),
    ("learning_rate", True, TypeError),
    ("weight_decay", -0.1, ValueError), ("weight_decay", float("nan"), ValueError),
    ("weight_decay", None, TypeError),
    ("convention", "pytorch", ValueError), ("convention", None, ValueError),
    ("clipnorm", -1.0, ValueError), ("clipvalue", 0.0, ValueError),
    ("global_clipnorm", float("nan"), ValueError),
    ("exclude_from_weight_decay", "bias", TypeError),
]
BAD = {
    "AdamW": BAD_COMMON + [
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
    wrong = np.full((5,), 0.5, np.float32) if bad == "shape" else np.full((4,), 0.5, np.float16)
    with pytest.raises(ValueError if bad == "shape" else TypeError, match="variable '[^']*b[^']*'"):
        host.apply(opt, [good[0], wrong], variables)
    after = _state(host, opt, variables)
    assert len(before) == len(after)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)
