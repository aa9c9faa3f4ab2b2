"""A model file saved with TensorFlow Addons' own AdamW, for the envs where TFA cannot install
(TF 2.16+, whose tf_keras reads TFA's OptimizerV2 files): ``tests/data/tfa-0.23-adamw/``, made
in the tf215 env (TFA 0.23) by

    .tox/tf215/bin/python tests/tfa_file.py tests/data/tfa-0.23-adamw

``m.h5``: a Dense 4-8-1 compiled with ``tfa.optimizers.AdamW(weight_decay=1e-3,
learning_rate=1e-2)``, fitted 4 steps; ``x.npy``: the next step's batch; ``next.npy``: the
weights after TFA's own next step on it.  tests/test_tfa.py checks, where TFA installs, that TFA
loads the file and steps to ``next.npy``."""
import os
import sys

import numpy as np

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tfa-0.23-adamw")


def flat(model):
    return np.concatenate([np.ravel(w) for w in model.get_weights()])


def make(folder):
    import tensorflow as tf
    import tensorflow_addons as tfa

    rng = np.random.default_rng(0)
    inputs = tf.keras.Input((4,))
    hidden = tf.keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1, name="out")(hidden))
    model.set_weights([(0.5 * rng.normal(size=w.shape)).astype(np.float32) for w in model.get_weights()])
    model.compile(optimizer=tfa.optimizers.AdamW(weight_decay=1e-3, learning_rate=1e-2), loss="mean_squared_error")
    x = rng.normal(size=(32, 4)).astype(np.float32)
    model.fit(x, x[:, :1], batch_size=16, epochs=2, shuffle=False, verbose=0)
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, "m.h5"))
    model.train_on_batch(x[:16], x[:16, :1])
    np.save(os.path.join(folder, "x.npy"), x[:16])
    np.save(os.path.join(folder, "next.npy"), flat(model))


if __name__ == "__main__":
    make(sys.argv[1] if len(sys.argv) > 1 else FOLDER)
