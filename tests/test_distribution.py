"""Data-parallel training equals the single-device run on the same global batch (so the
decay is applied once per step, not once per replica).  Each case runs in a fresh
interpreter: the device count must be set before the framework starts."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from deviations import match
from support import CAPTURE

TESTS = os.path.dirname(os.path.abspath(__file__))

TRAIN = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, %(tests)r)
    import numpy as np

    family, mode, with_host = sys.argv[1], sys.argv[2], sys.argv[3] == "host"
    if mode == "mirrored":
        import tensorflow as tf
        if hasattr(tf.config, "set_logical_device_configuration"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        else:  # TF 1.15 / 2.0
            cpu = tf.config.experimental.list_physical_devices("CPU")[0]
            tf.config.experimental.set_virtual_device_configuration(
                cpu, [tf.config.experimental.VirtualDeviceConfiguration()] * 2)
    from support import data, make_host

    host = make_host(family)
    x, y = data(128)

    def train(name, kw, own=False):
        # own: the host's own AdamW / SGD(weight_decay), optcompat's twin (keras convention)
        opt = (host.host_adamw if name == "AdamW" else host.host_sgd)(**kw) if own else host.make(name, **kw)
        model = host.dense_model()
        model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, batch_size=32, epochs=3, verbose=0, shuffle=False)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    cases = {"AdamW": dict(learning_rate=0.01, weight_decay=0.2, amsgrad=True),
             "SGDW": dict(learning_rate=0.05, weight_decay=0.2, momentum=0.9)}
    out = {}
    for name, kw in cases.items():
        single = train(name, kw)
        if mode == "mirrored":
            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
            assert strategy.num_replicas_in_sync == 2
            with strategy.scope():
                parallel = train(name, kw)
            if with_host:  # the host's own optimizer, on one device and mirrored
                with strategy.scope():
                    own = train(name, kw, own=True)
                out["host " + name] = [float(np.max(np.abs(own - parallel))),
                                       float(np.max(np.abs(own - train(name, kw, own=True))))]
        else:
            import jax, keras
            assert len(jax.devices()) == 2, jax.devices()
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
            parallel = train(name, kw)
            keras.distribution.set_distribution(None)
        undecayed = train(name, dict(kw, weight_decay=0.0))
        out[name] = [float(np.max(np.abs(single - parallel))), float(np.max(np.abs(single - undecayed)))]
    print("RESULT " + json.dumps(out))
""")


def run_case(host, mode, tmp_path, env=None, with_host=False):
    script = tmp_path / "train.py"
    script.write_text(TRAIN % {"tests": TESTS})
    proc = subprocess.run([sys.executable, str(script), host.family, mode, "host" if with_host else "-"],
                          **CAPTURE, timeout=900, env=dict(os.environ, **(env or {})))
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def check(result):
    for name, (parallel_diff, decay_effect) in result.items():
        assert parallel_diff < 1e-6, (name, parallel_diff)
        assert decay_effect > 1e-3, (name, decay_effect)  # decay matters, so a doubled decay would show


@pytest.mark.backends("tensorflow")  # tf.distribute.MirroredStrategy needs TensorFlow variables
def test_mirrored_strategy_equals_one_device(host, tmp_path):
    """... and, where the host's own optimizers do not ("mirrored" in deviations), optcompat's
    mirrored fit equals the host's own mirrored AdamW / SGD(weight_decay): the strategy's
    gradient handling is the host's, and optcompat adds nothing to it."""
    assert host.tf is not None
    reason = match("mirrored", host.family, host.versions)
    result = run_case(host, "mirrored", tmp_path, with_host=reason is not None)
    if reason is None:
        check(result)
        return
    own = {name: result.pop("host " + name) for name in ("AdamW", "SGDW")}
    for name, (to_host, host_parallel_diff) in own.items():
        assert to_host < 1e-6, (name, to_host)  # optcompat mirrored == the host's own mirrored
    assert max(d for _, d in own.values()) > 1e-6, "the host equals one device now; remove the entry: " + reason
    for name, (parallel_diff, decay_effect) in result.items():
        assert decay_effect > 1e-3, (name, decay_effect)


@pytest.mark.backends("jax")  # keras.distribution.DataParallel runs on the JAX backend only
def test_jax_data_parallel_equals_one_device(host, tmp_path):
    assert host.backend == "jax"
    check(run_case(host, "jax", tmp_path, {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
