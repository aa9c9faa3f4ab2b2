"""``python -m optcompat.state inspect`` on the files the hosts write (a real model, fit, saved,
inspected in a fresh process): the file's format, the versions it records, and every variable's
name where the file has one (a ``.keras`` archive: the layer and its variable's position; an
``.h5`` model: the weight names)."""
import re
import subprocess
import sys

import numpy as np
import pytest

import optcompat
from deviations import match
from support import CAPTURE
from support import matches

pytest.importorskip("h5py")


def fitted(host):
    k = host.keras
    model = k.Sequential([k.Input((3,)), k.layers.Dense(4), k.layers.BatchNormalization(),
                          k.layers.Dense(2, name="head")])
    model.compile(optimizer=optcompat.family_module(host.family).AdamW(learning_rate=1e-3, weight_decay=1e-2),
                  loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    model.fit(x, x[:, :2], batch_size=8, epochs=1, verbose=0)
    return model


def inspect(path):
    out = subprocess.run([sys.executable, "-m", "optcompat.state", "inspect", path], **CAPTURE, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    print(out.stdout)
    return out.stdout


def listed(text, count):
    """The variable lines' names (the line after ``variables:``, ``count`` of them)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("variables:")) + 1
    return [line.split()[1] for line in lines[start:start + count]]


def trainable(model):
    """(layer, position among the layer's variables, short name) of each trainable variable."""
    out = []
    for layer in model.layers:
        for k, w in enumerate(layer.weights):
            if w.trainable:
                out.append((layer.name, k, w.name.split(":")[0].rsplit("/", 1)[-1]))
    return out


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_inspect_gives_format_versions_and_names(host, fmt, tmp_path):
    if fmt not in host.formats:
        pytest.skip("%r saves no .%s" % (host, fmt))
    # (Keras 3's .h5 holds the state, which its load_model does not resume from: inspect reads it)
    if match(("save", fmt), host.family, host.versions) is not None and (host.family, fmt) != ("keras3", "h5"):
        pytest.skip("%r keeps no optimizer state in .%s (tests/deviations.py)" % (host, fmt))
    model = fitted(host)
    path = host.save(model, fmt, str(tmp_path / "model"))
    text = inspect(path)
    expected = trainable(model)
    names = listed(text, len(expected))
    assert "?" not in names and "step:        2" in text
    # the Keras that wrote it: its __version__, or (tf.keras, which has none) its distribution's
    version = getattr(host.keras, "__version__", None) or host.versions["tf_keras" if host.namespace == "tf_keras"
                                                                         else "keras"]
    assert "keras %s" % version in text.split("versions:")[1].split("\n")[0], text
    if fmt == "keras":
        assert "format:      .keras archive, saved " in text
        assert names == ["%s/vars/%d" % (layer, k) for layer, k, _ in expected]
    else:
        assert "format:      HDF5 model (.h5)" in text
        assert "backend tensorflow" in text or host.family == "keras3"
        # Keras 3.0 writes a variable's own name alone ("kernel"; measured 3.0.5, where 3.3.3
        # writes its path)
        bare = host.family == "keras3" and matches({"keras": "<3.3"}, host.versions)
        for name, (layer, _, leaf) in zip(names, expected):
            # TF 2.2-2.5 name a layer's variables by its unique scope (head_18/kernel:0 where
            # the process made other layers named head before): the name the file holds
            found = name.split(":")[0]
            assert (bare and found == leaf) or re.search(
                r"(^|/)%s(_\d+)?/%s$" % (re.escape(layer), re.escape(leaf)), found), (name, layer, leaf)


@pytest.mark.families("keras3")
def test_inspect_a_weights_file_alone(host, tmp_path):
    """A ``.weights.h5`` does not record its optimizer: inspect says so and lists what it holds."""
    model = fitted(host)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    text = inspect(path)
    assert text.startswith("optimizer:   unknown (a .weights.h5 does not record it")
    assert "format:      Keras 3 weights (.weights.h5)" in text and "model variables: %d" % len(model.weights) in text
    # the step count, a float rate (and optcompat's weight_decay where the file keeps it), m and v
    n = 2 * len(model.trainable_variables)
    assert any("optimizer variables: %d " % (n + head) in text for head in (2, 3)), text
