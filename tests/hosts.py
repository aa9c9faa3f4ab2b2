"""Test harness: one small object per host family, so every test module runs unchanged
against whichever families an environment has (``conftest.family`` parametrizes over them).

A host gives the tests what differs between families -- how to make a variable, apply
gradients, read values, build a schedule or a model -- and the host's own optimizers as
oracles.  It never reimplements an optimizer.  Add a family by adding a class to HOSTS.
"""
import importlib

import numpy as np

import optcompat


class Keras3:
    family = "keras3"
    save_suffix = ".keras"

    def __init__(self):
        import keras

        self.keras = keras
        self.ops = keras.ops
        self.backend = keras.backend.backend()
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


HOSTS = {"keras3": Keras3}


def make_host(family):
    return HOSTS[family]()


def have(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False
