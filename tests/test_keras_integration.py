"""Real Keras use: compile + fit, config round trip, save and load in a fresh process."""
import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import optcompat
from deviations import NO_OPTIMIZER_STATE_IN_SAVE

CASES = {
    "adamw": ("AdamW", dict(learning_rate=0.05, weight_decay=0.05, amsgrad=True, convention="paper")),
    "sgdw": ("SGDW", dict(learning_rate=0.05, weight_decay=0.01, momentum=0.9, nesterov=True,
                          convention="torch")),
}


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32) + 0.1).astype(np.float32)
    return x, y


def test_is_a_host_optimizer(host):
    for name in ("AdamW", "SGDW"):
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


# Runs in a fresh interpreter, so the only way load_model can find optcompat's class is
# optcompat's own registration (no custom_objects, and no optcompat.<family> import).
RESUME = textwrap.dedent("""
    import importlib, sys, numpy as np
    order, family, namespace, path, out = sys.argv[1:6]

    def host_keras():
        top, _, rest = namespace.partition(".")
        mod = importlib.import_module(top)
        for attr in rest.split(".") if rest else ():
            mod = getattr(mod, attr)
        return mod

    if order == "optcompat-first":
        import optcompat
        keras = host_keras()
    else:
        keras = host_keras()
        import optcompat
    model = keras.models.load_model(path)
    opt = model.optimizer
    assert type(opt).__module__.endswith("optcompat." + family), type(opt)
    print("CONFIG", opt.get_config()["convention"], int(opt.iterations.numpy()))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32) + 0.1).astype(np.float32)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    np.save(out, np.concatenate([w.ravel() for w in model.get_weights()]))
""")


@pytest.mark.parametrize("order", ["optcompat-first", "host-first"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_save_load_resume_in_fresh_process(host, case, order, tmp_path):
    if repr(host) in NO_OPTIMIZER_STATE_IN_SAVE:
        pytest.skip("upstream: " + NO_OPTIMIZER_STATE_IN_SAVE[repr(host)])
    name, kw = CASES[case]
    x, y = data()
    straight = host.dense_model()
    straight.compile(optimizer=host.make(name, **kw), loss="mse")
    straight.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False)

    first = host.dense_model()
    first.compile(optimizer=host.make(name, **kw), loss="mse")
    first.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    path = str(tmp_path / ("model" + host.save_suffix))
    first.save(path)

    out_file = str(tmp_path / "resumed.npy")
    script = tmp_path / "resume.py"
    script.write_text(RESUME)
    run = subprocess.run([sys.executable, str(script), order, host.family, host.namespace, path, out_file],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert run.returncode == 0, run.stderr[-4000:]
    assert "CONFIG %s 8" % kw["convention"] in run.stdout
    resumed = np.load(out_file)
    expected = np.concatenate([w.ravel() for w in straight.get_weights()])
    assert np.max(np.abs(resumed - expected)) < 1e-6
