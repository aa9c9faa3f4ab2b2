"""TF 1.x graph mode: ``model.fit`` as a TF 1.15 codebase runs it (no eager execution, Keras's
session), AdamW / SGDW / a schedule / ``.h5`` save + load + resume, against the float64
reference.  In a fresh process: the rest of the suite runs TF 1.15 with TF 2 behaviour enabled
(tests/support.py), which a process cannot leave again.

The loss is linear in the weights (``mean(y * x @ w)``), so each step's gradient is the batch's
``mean(y * x)`` whatever the weights: the reference replays the same gradients (tests/reference.py).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import reference
from support import CAPTURE
from support import TOL

pytestmark = pytest.mark.applies(
    lambda facts, params: facts.family == "legacy" and facts.at(tensorflow="<2.0"))

SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
import optcompat
from optcompat.schedules import CosineDecay

assert not tf.executing_eagerly(), "TF 1.x graph mode expected"
case, path = sys.argv[1], sys.argv[2]
x = np.random.RandomState(0).randn(8, 3).astype("float32")
y = np.random.RandomState(1).randn(8, 1).astype("float32")
w0 = np.array([[0.5], [-1.0], [2.0]], "float32")

def loss(y_true, y_pred):
    return tf.reduce_mean(y_true * y_pred)

def model():
    m = tf.keras.Sequential([tf.keras.layers.Dense(1, use_bias=False, input_shape=(3,))])
    m.set_weights([w0])
    return m

if case == "adamw":
    opt = optcompat.AdamW(learning_rate=CosineDecay(0.1, 40), weight_decay=0.05, amsgrad=True)
elif case == "sgdw":
    opt = optcompat.SGDW(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True)
elif case == "adam0":
    opt = optcompat.AdamW(learning_rate=0.05, weight_decay=0.0)
else:
    opt = tf.keras.optimizers.Adam(learning_rate=0.05)
m = model()
m.compile(optimizer=opt, loss=loss)
out = {"family": optcompat.default_family(), "weights": []}
for epoch in range(3):
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    out["weights"].append(m.get_weights()[0].ravel().tolist())
m.save(path)
m = tf.keras.models.load_model(path, custom_objects={"loss": loss})
out["loaded"] = [type(m.optimizer).__module__ + "." + type(m.optimizer).__name__,
                 int(tf.keras.backend.get_value(m.optimizer.iterations))]
for epoch in range(2):
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    out["weights"].append(m.get_weights()[0].ravel().tolist())
print("RESULT " + json.dumps(out))
'''


def run(tmp_path, case):
    script = tmp_path / "graph_fit.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env.pop("OPTCOMPAT_ENV_TF2_BEHAVIOR", None)  # graph mode: not the suite's TF 2 behaviour
    out = subprocess.run([sys.executable, str(script), case, str(tmp_path / "model.h5")],
                         cwd=str(tmp_path), env=env, timeout=600, **CAPTURE)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def gradients(steps):
    """The gradient of each step: the batch's mean(y * x) (batches of 4, in order, 2 per epoch)."""
    x = np.random.RandomState(0).randn(8, 3).astype("float32").astype(np.float64)
    y = np.random.RandomState(1).randn(8, 1).astype("float32").astype(np.float64)
    per_batch = [(x[i:i + 4] * y[i:i + 4]).mean(axis=0) for i in (0, 4)]
    return [per_batch[s % 2] for s in range(steps)]


W0 = [0.5, -1.0, 2.0]


def per_epoch(trajectory):
    return [trajectory[2 * e + 1] for e in range(len(trajectory) // 2)]


@pytest.mark.parametrize("case", ["adamw", "sgdw"])
def test_fit_in_graph_mode_matches_the_reference(tmp_path, case):
    """Three epochs, an ``.h5`` save, ``load_model`` (optcompat's class found by the bare class
    name TF 1.15 writes), two more epochs: every epoch's weights as the float64 reference's
    uninterrupted run (the moments, the momentum and the step count survived the file)."""
    got = run(tmp_path, case)
    assert got["family"] == "legacy"
    if case == "adamw":
        assert got["loaded"] == ["optcompat.legacy.AdamW", 6]
        want = reference.adamw(W0, gradients(10), reference.cosine_decay(0.1, 40), weight_decay=0.05,
                               amsgrad=True)
    else:
        assert got["loaded"] == ["optcompat.legacy.SGDW", 6]
        want = reference.sgdw(W0, gradients(10), 0.05, weight_decay=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(np.array(got["weights"]), np.array(per_epoch(want)), atol=TOL, rtol=0)


def test_no_decay_is_the_hosts_adam_in_graph_mode(tmp_path):
    """AdamW with ``weight_decay=0`` runs the host's own Adam's trajectory in graph mode (the
    oracle), and the host's Adam comes back from the same ``.h5`` as optcompat's does."""
    ours, host = run(tmp_path, "adam0"), run(tmp_path, "adam")
    assert host["loaded"][1] == ours["loaded"][1] == 6
    np.testing.assert_allclose(np.array(ours["weights"]), np.array(host["weights"]), atol=2e-6, rtol=0)
