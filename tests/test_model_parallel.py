"""Keras 3 on JAX, keras.distribution.ModelParallel with a LayoutMap that shards the Dense kernels
(and biases) over 4 virtual CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=4, in a
fresh interpreter): every optimizer slot has its variable's sharding, and model.fit equals the
same fit on one device.  Collected in the envs of tox's label ``dist``."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from support import CAPTURE

TESTS = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, %(tests)r)
    import numpy as np
    import jax, keras
    from support import make_host

    assert len(jax.devices()) == 4, jax.devices()
    host = make_host("keras3")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 4)).astype("float32")).astype("float32")
    CASES = {"adamw": ("AdamW", dict(learning_rate=0.01, weight_decay=0.1, amsgrad=True)),
             "sgdw": ("SGDW", dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9))}

    def model_parallel():
        mesh = keras.distribution.DeviceMesh(shape=(2, 2), axis_names=("batch", "model"), devices=jax.devices())
        layout = keras.distribution.LayoutMap(mesh)
        layout[".*dense.*kernel"] = (None, "model")
        layout[".*dense.*bias"] = ("model",)
        try:  # Keras 3.2+: the mesh comes with the layout map
            return keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch")
        except TypeError:  # Keras 3.0-3.1
            return keras.distribution.ModelParallel(mesh, layout, batch_dim_name="batch")

    def train(name, distribution):
        keras.distribution.set_distribution(distribution)
        try:
            cls, kw = CASES[name]
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh", name="dense_a"),
                                      keras.layers.Dense(4, name="dense_b")])
            model.set_weights([np.random.default_rng(i).normal(size=w.shape).astype("float32") * 0.3
                               for i, w in enumerate(model.get_weights())])
            opt = host.make(cls, **kw)
            model.compile(optimizer=opt, loss="mean_squared_error")
            model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
            checked = []
            if distribution is not None:
                for v in model.trainable_variables:
                    i = opt._get_variable_index(v)
                    for key in opt.SLOTS:
                        if not opt._has_slot(key):
                            continue
                        slot = getattr(opt, opt.SLOT_ATTRIBUTES[key])[i]
                        same = slot.value.sharding.is_equivalent_to(v.value.sharding, len(v.shape))
                        sharded = len(v.value.sharding.device_set) == 4 and not v.value.sharding.is_fully_replicated
                        checked.append([v.path, key, bool(same), bool(sharded), str(slot.value.sharding.spec)])
            return np.concatenate([np.asarray(w).ravel() for w in model.get_weights()]).tolist(), checked
        finally:
            keras.distribution.set_distribution(None)

    out = {}
    for name in CASES:
        parallel, checked = train(name, model_parallel())
        single, _ = train(name, None)
        out[name] = {"diff": float(np.max(np.abs(np.array(parallel) - np.array(single)))), "slots": checked}
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.dist
@pytest.mark.backends("jax")
def test_model_parallel_slots_follow_their_variables_and_fit_equals_one_device(host, tmp_path):
    script = tmp_path / "model_parallel.py"
    script.write_text(SCRIPT % {"tests": TESTS})
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", KERAS_BACKEND="jax",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, str(script)], **CAPTURE, timeout=170, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][len("RESULT "):])
    for name, found in result.items():
        print(name, "max |model parallel - one device| = %.3g;" % found["diff"], found["slots"])
        kernels = [s for s in found["slots"] if "kernel" in s[0]]
        assert kernels and all(s[3] for s in kernels), found["slots"]  # the kernels really are sharded
        assert all(s[2] for s in found["slots"]), found["slots"]  # every slot as its variable
        assert found["diff"] <= 1e-6, found["diff"]
    assert np.isfinite([f["diff"] for f in result.values()]).all()
