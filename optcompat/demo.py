"""``python -m optcompat.demo``: train a small real model with optcompat.AdamW, then save,
reload (no ``custom_objects``) and resume it -- on whatever host is installed.

Run it with ``ci/tox -e demo`` on a machine that has only Python (Keras 3 + JAX, CPU).
"""

import argparse
import json
import os
import tempfile

import numpy as np

from . import _detect  # relative: a vendored copy demos itself
from . import family_module  # relative: a vendored copy demos itself


def _data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    w = rng.normal(size=(8, 1)).astype("float32")
    y = (np.tanh(x @ w) + 0.05 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--convention", default="keras")
    args = parser.parse_args(argv)

    info = _detect.describe()
    print("optcompat %s -- detected:" % info["optcompat"])
    print(
        json.dumps(
            {
                k: info[k]
                for k in ("default_family", "families", "keras3_backend", "versions")
            },
            indent=2,
        )
    )
    family = _detect.default_family()
    keras, _ = _detect.host(family)  # keras, tf.keras or tf_keras

    x, y = _data()
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    # optcompat's CosineDecay: the same on every release (TF 2.2 has no Keras one under schedules)
    schedule = family_module(family).SCHEDULES["CosineDecay"](
        3e-3, decay_steps=8 * 2 * args.epochs
    )
    model.compile(
        optimizer=family_module(family).AdamW(
            learning_rate=schedule, weight_decay=1e-2, convention=args.convention
        ),
        loss="mse",
    )
    print(
        "\n== family %s: fit %d epochs with %s.AdamW (convention=%r)"
        % (family, args.epochs, type(model.optimizer).__module__, args.convention)
    )
    rng = np.random.default_rng(0)  # the same start on every host
    model.set_weights(
        [
            (
                rng.normal(size=w.shape) / np.sqrt(w.shape[0]) if w.ndim == 2 else 0 * w
            ).astype(w.dtype)
            for w in model.get_weights()
        ]
    )
    model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=1)

    suffix = ".keras" if _detect.has_keras_format(family) else ".h5"
    with tempfile.TemporaryDirectory(
        prefix="optcompat-demo-"
    ) as folder:  # removed when done
        path = os.path.join(folder, "model" + suffix)
        model.save(path)
        print("\n== saved to %s; reloading with no custom_objects" % path)
        loaded = keras.models.load_model(path)
    opt = loaded.optimizer
    print(
        "reloaded optimizer: %s.%s, iterations=%d, convention=%r"
        % (
            type(opt).__module__,
            type(opt).__name__,
            int(opt.iterations.numpy()),
            opt.convention,
        )
    )
    print("\n== resume %d more epochs" % args.epochs)
    hist = loaded.fit(
        x,
        y,
        batch_size=64,
        epochs=2 * args.epochs,
        initial_epoch=args.epochs,
        verbose=1,
    )
    print("\nfinal loss %.5f" % hist.history["loss"][-1])


if __name__ == "__main__":
    main()
