"""Test harness: one small object per host family, so every test module runs unchanged
against whichever families an environment has (``conftest.family`` parametrizes over them).

A host gives the tests what differs between families -- how to make a variable, apply
gradients, read values, build a schedule or a model -- and the host's own optimizers as
oracles.  It never reimplements an optimizer.  Add a family by adding a class to HOSTS.
"""
import importlib

import numpy as np

import optcompat
from deviations import loses_state


class Keras3:
    family = "keras3"
    save_suffix = ".keras"

    def __init__(self, family="keras3"):
        self.namespace = "keras"  # the Keras module, as a dotted path from its top package
        self.keras, self.optimizer_base = optcompat._detect.host(family)
        self.ops = self.keras.ops
        self.backend = self.keras.backend.backend()
        self.module = optcompat.family_module(self.family)

    def __repr__(self):
        return "keras3-%s" % self.backend

    # optimizers
    def make(self, name, **kwargs):
        return getattr(self.module, name)(**kwargs)

    def host_adamw(self, **kwargs):
        return self.keras.optimizers.AdamW(**kwargs)

    def host_sgd(self, **kwargs):
        return self.keras.optimizers.SGD(**kwargs)

    def exponential_decay(self, lr0, decay_steps, decay_rate):
        return self.keras.optimizers.schedules.ExponentialDecay(lr0, decay_steps, decay_rate)

    # variables
    def variable(self, value, name="w"):
        return self.keras.Variable(np.asarray(value), name=name)

    def tensor(self, value):
        return self.ops.convert_to_tensor(np.asarray(value))

    def apply(self, opt, grads, variables):
        opt.apply_gradients([(self.tensor(g), v) for g, v in zip(grads, variables)])

    def value(self, v):
        return np.asarray(self.ops.convert_to_numpy(v))

    def slots(self, opt):
        return [self.value(v) for v in opt.variables]

    def iterations(self, opt):
        return int(self.value(opt.iterations))

    # models
    def dense_model(self, n_in=4, n_out=1, seed=0):
        k = self.keras
        k.utils.set_random_seed(seed)
        return k.Sequential([k.Input((n_in,)), k.layers.Dense(8, activation="tanh"),
                             k.layers.Dense(n_out)])

    def load_model(self, path):
        return self.keras.models.load_model(path)


class TFKeras:
    """keras2 and legacy families: tf.keras or tf_keras, with TensorFlow variables."""

    def __init__(self, family):
        import tensorflow as tf

        self.tf = tf
        self.family = family
        self.namespace = optcompat._detect.require(family).split(".optimizers.")[0]
        self.keras, self.optimizer_base = optcompat._detect.host(family)
        self.module = optcompat.family_module(family)
        self.tf_version = tuple(int(p) for p in tf.__version__.split(".")[:2])
        # the .keras format arrived in TF 2.12; older releases save HDF5, and so does a
        # family whose optimizer state that format drops (deviations.LOST_STATE_FORMATS)
        self.save_suffix = ".keras" if self.tf_version >= (2, 12) else ".h5"
        if loses_state(family, self.save_suffix, self.tf_version):
            self.save_suffix = ".h5"

    def __repr__(self):
        return "%s-tf%d.%d%s" % (self.family, self.tf_version[0], self.tf_version[1],
                                 "-tf_keras" if self.namespace == "tf_keras" else "")

    # optimizers
    def make(self, name, **kwargs):
        return getattr(self.module, name)(**kwargs)

    def _builtin(self, name):
        """The host's own new-style optimizer class ``name`` (keras2 family only)."""
        if self.family != "keras2":
            return None
        opts = self.keras.optimizers
        if self.optimizer_base is not opts.Optimizer:  # TF 2.9/2.10: under .experimental
            opts = opts.experimental
        return getattr(opts, name, None)

    def host_adamw(self, **kwargs):
        cls = self._builtin("AdamW")
        return None if cls is None else cls(**kwargs)

    def host_sgd(self, **kwargs):
        cls = self._builtin("SGD")
        if cls is None or self.tf_version < (2, 11):  # no weight_decay argument before 2.11
            return None
        return cls(**kwargs)

    def exponential_decay(self, lr0, decay_steps, decay_rate):
        return self.keras.optimizers.schedules.ExponentialDecay(lr0, decay_steps, decay_rate)

    # variables
    def variable(self, value, name="w"):
        return self.tf.Variable(np.asarray(value), name=name)

    def tensor(self, value):
        return self.tf.constant(np.asarray(value))

    def apply(self, opt, grads, variables):
        opt.apply_gradients([(self.tensor(g), v) for g, v in zip(grads, variables)])

    def value(self, v):
        return np.asarray(v.numpy() if hasattr(v, "numpy") else v)

    def slots(self, opt):
        variables = opt.variables
        variables = variables() if callable(variables) else variables  # a method in OptimizerV2
        return [self.value(v) for v in variables]

    def iterations(self, opt):
        return int(self.value(opt.iterations))

    # models
    def dense_model(self, n_in=4, n_out=1, seed=0):
        # Seeded initializers: tf.random.set_seed alone does not make two models built in
        # one process start equal in every release (it does not in TF 2.10).
        k = self.keras
        self.tf.random.set_seed(seed)
        init = k.initializers.GlorotUniform
        return k.Sequential([k.Input((n_in,)),
                             k.layers.Dense(8, activation="tanh", kernel_initializer=init(seed=seed)),
                             k.layers.Dense(n_out, kernel_initializer=init(seed=seed + 1))])

    def load_model(self, path):
        return self.keras.models.load_model(path)


HOSTS = {"keras3": Keras3, "keras2": TFKeras, "legacy": TFKeras}


def make_host(family):
    return HOSTS[family](family)


def have(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False
