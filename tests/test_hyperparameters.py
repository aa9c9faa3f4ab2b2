"""Hyperparameters as the host's own optimizers take them: tensors in every family (a variable
too) and, in OptimizerV2 (whose ``_set_hyper`` takes them), callables -- the same numbers as the
host's own Adam / SGD given the same, in ``model.fit``; checked where their value is concrete;
saved as their value."""
import numpy as np
import pytest

from support import ORACLE_TOL
from support import data
from support import flat
from support import worst

CALLABLES = pytest.mark.families("legacy")  # OptimizerV2 calls a callable hyperparameter each step


def given(host, kind, value):
    """``value`` as a host tensor, a host variable, or (OptimizerV2) a callable."""
    if kind == "tensor":
        return host.tensor(np.float32(value))
    if kind == "variable":
        return host.variable(np.float32(value), name="hyper")
    return lambda: value


# optimizer -> (the host's own class, its arguments as (name, kind, value), optcompat's extras)
CASES = {
    "adam-tensors": ("Adam", [("beta_1", "tensor", 0.8), ("beta_2", "variable", 0.99)]),
    "adam-tensor-lr": ("Adam", [("learning_rate", "tensor", 0.02), ("beta_1", "tensor", 0.7)]),
    "adam-callables": ("Adam", [("learning_rate", "callable", 0.02), ("beta_1", "callable", 0.8),
                                ("beta_2", "callable", 0.95)]),
    "sgd-tensors": ("SGD", [("learning_rate", "tensor", 0.05), ("momentum", "tensor", 0.9)]),
    "sgd-callables": ("SGD", [("momentum", "callable", 0.9)]),
}


def applies_to(facts, params):
    _, arguments = CASES[params["case"]]
    kinds = {kind for _, kind, _ in arguments}
    if "callable" in kinds and facts.family != "legacy":
        return False  # Keras 2 / 3 read betas and momentum as numbers or tensors only
    # Keras 3's own optimizers take a float learning rate only (optcompat's reads a tensor's value)
    return not (facts.family == "keras3" and any(n == "learning_rate" for n, _, _ in arguments))


def host_optimizer(host, name, **kwargs):
    return host.host_adam(**kwargs) if name == "Adam" else host_sgd(host, **kwargs)


def host_sgd(host, **kwargs):
    if host.family == "keras3":
        return host.keras.optimizers.SGD(**kwargs)
    if host.family == "keras2":
        return host._builtin("SGD")(**kwargs)
    opts = host.keras.optimizers
    return getattr(opts, "legacy", opts).SGD(**kwargs) if host.tf_version >= (2, 11) else opts.SGD(**kwargs)


def trained(host, opt):
    x, y = data()
    model = host.dense_model()
    model.compile(optimizer=opt, loss="mean_squared_error")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return flat(model)


@pytest.mark.applies(lambda facts, params: applies_to(facts, params))
@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_equals_the_hosts_own_given_the_same(host, case):
    name, arguments = CASES[case]
    kwargs = lambda: {n: given(host, kind, value) for n, kind, value in arguments}  # noqa: E731
    if name == "SGD" and host.family == "keras2" and host.tf_version < (2, 11):
        # TF 2.9-2.10's experimental SGD cannot take a tensor momentum in fit ("if self.momentum
        # != 0" on a symbolic tensor): it is given the numbers, which a tensor must equal
        theirs = trained(host, host_optimizer(host, name, **{n: v for n, _, v in arguments}))
    else:
        theirs = trained(host, host_optimizer(host, name, **kwargs()))
    ours_cls = "AdamW" if name == "Adam" else "SGDW"
    ours = trained(host, host.make(ours_cls, weight_decay=0.0, **kwargs()))
    plain = trained(host, host_optimizer(host, name))  # the arguments matter
    assert np.max(np.abs(ours - plain)) > 1e-4
    assert np.max(np.abs(ours - theirs)) <= ORACLE_TOL, np.max(np.abs(ours - theirs))  # float32 order of ops


@pytest.mark.parametrize("argument,value", [("beta_1", 1.5), ("beta_2", -0.1), ("learning_rate", -1.0)])
def test_a_bad_tensor_is_refused(host, argument, value):
    """A tensor's value is checked as the number would be (ValueError naming the argument)."""
    with pytest.raises(ValueError, match=argument):
        host.make("AdamW", **{argument: host.tensor(np.float32(value))})


@CALLABLES
def test_a_bad_callable_is_refused(host):
    with pytest.raises(ValueError, match="momentum"):
        host.make("SGDW", momentum=lambda: 1.0)


@pytest.mark.families("keras3", "keras2")
def test_a_callable_beta_is_refused_where_the_host_cannot_call_it(host):
    with pytest.raises(TypeError, match="beta_1"):
        host.make("AdamW", beta_1=lambda: 0.9)


def test_config_gives_values_and_roundtrips(host):
    """get_config gives a tensor's value (float32: what the tensor holds); from_config makes the
    same optimizer."""
    opt = host.make("AdamW", beta_1=host.tensor(np.float32(0.8)), weight_decay=host.tensor(np.float32(0.25)))
    config = opt.get_config()
    assert config["beta_1"] == pytest.approx(0.8) and isinstance(config["beta_1"], float)
    assert float(np.asarray(config["weight_decay"])) == pytest.approx(0.25)
    again = type(opt).from_config(config)
    assert again.get_config()["beta_1"] == pytest.approx(0.8)


@CALLABLES
def test_a_variable_hyperparameter_is_read_each_step(host):
    """OptimizerV2 keeps a variable hyperparameter itself: assigning it changes the next step
    (compiled ones too), as the host's own Adam."""
    def run(make):
        beta = host.variable(np.float32(0.9), name="beta")
        opt = make(beta)
        x, y = data()
        model = host.dense_model()
        model.compile(optimizer=opt, loss="mean_squared_error")
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        beta.assign(np.float32(0.5))
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return flat(model)

    ours = run(lambda b: host.make("AdamW", weight_decay=0.0, beta_1=b))
    theirs = run(lambda b: host.host_adam(beta_1=b))
    assert worst([[ours]], [[theirs]]) <= ORACLE_TOL
