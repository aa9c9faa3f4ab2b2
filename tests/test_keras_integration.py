"""Real Keras use: compile + fit, the Optimizer base class, config round trip."""
import copy

import numpy as np
import pytest

import optcompat
from support import data

CASES = {
    "adamw": ("AdamW", dict(learning_rate=0.05, weight_decay=0.05, amsgrad=True, convention="paper")),
    "sgdw": ("SGDW", dict(learning_rate=0.05, weight_decay=0.01, momentum=0.9, nesterov=True,
                          convention="torch")),
}


def test_is_a_host_optimizer(host):
    """optcompat's classes subclass the base class the harness found from its own table
    (support.BASES, keyed on the env's versions), not the one optcompat chose."""
    for name in ("AdamW", "SGDW"):
        assert issubclass(getattr(host.module, name), host.optimizer_base)
        opt = host.make(name)
        assert isinstance(opt, host.optimizer_base)
    if host.family == optcompat.default_family():
        assert optcompat.AdamW is host.module.AdamW and optcompat.SGDW is host.module.SGDW


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip(host, case):
    name, kw = CASES[case]
    kw = dict(kw, learning_rate=host.exponential_decay(0.02, 10, 0.5),
              exclude_from_weight_decay=["bias"])
    opt = host.make(name, **kw)
    config = opt.get_config()
    assert config["convention"] == kw["convention"]
    assert config["exclude_from_weight_decay"] == ["bias"]
    clone = type(opt).from_config(copy.deepcopy(config))  # the host mutates its argument
    assert clone.get_config() == config
    ser = host.keras.optimizers.serialize(opt)
    again = host.keras.optimizers.deserialize(ser)
    assert type(again) is type(opt) and again.get_config() == config


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_reduces_loss(host, case):
    name, kw = CASES[case]
    model = host.dense_model()
    model.compile(optimizer=host.make(name, **kw), loss="mse")
    x, y = data()
    hist = model.fit(x, y, batch_size=16, epochs=5, verbose=0, shuffle=False)
    loss = hist.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.5 * loss[0], loss
    assert host.iterations(model.optimizer) == 5 * 4
