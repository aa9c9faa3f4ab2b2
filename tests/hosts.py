"""Test harness: one small object per host family, so every test module runs unchanged
against whichever families an environment has (``conftest.family`` parametrizes over them).

A host gives the tests what differs between families -- how to make a variable, apply
gradients, read values, build a schedule or a model -- and the host's own optimizers as
oracles.  It never reimplements an optimizer.  Add a family by adding a class to HOSTS.
"""
import importlib

import numpy as np

import optcompat


def seeded(model, seed):
    """Give a model the same initial weights in every host and release (seeding the
    framework's RNG does not: two models built in one TF 2.10 process differ)."""
    rng = np.random.default_rng(seed)
    model.set_weights([(0.5 * rng.normal(size=w.shape)).astype(w.dtype) for w in model.get_weights()])
    return model


class _Host(object):
    """What every family's harness does the same way."""

    def make(self, name, **kwargs):
        return getattr(self.module, name)(**kwargs)

    def exponential_decay(self, lr0, decay_steps, decay_rate):
        return self.keras.optimizers.schedules.ExponentialDecay(lr0, decay_steps, decay_rate)

    def apply(self, opt, grads, variables):
        opt.apply_gradients([(self.tensor(g), v) for g, v in zip(grads, variables)])

    def iterations(self, opt):
        return int(self.value(opt.iterations))

    def dense_model(self, n_in=4, n_out=1, seed=0):
        k = self.keras
        model = k.Sequential([k.Input((n_in,)), k.layers.Dense(8, activation="tanh"),
                              k.layers.Dense(n_out)])
        return seeded(model, seed)

    def load_model(self, path):
        return self.keras.models.load_model(path)


class Keras3(_Host):
    family = "keras3"

    def __init__(self, family="keras3"):
        self.namespace = "keras"  # the Keras module, as a dotted path from its top package
        self.keras, self.optimizer_base = optcompat._detect.host(family)
        self.ops = self.keras.ops
        self.backend = self.keras.backend.backend()
        self.tf = importlib.import_module("tensorflow") if self.backend == "tensorflow" else None
        self.module = optcompat.family_module(self.family)

    def __repr__(self):
        return "keras3-%s" % self.backend

    # optimizers
    def host_adamw(self, **kwargs):
        return self.keras.optimizers.AdamW(**kwargs)

    def host_sgd(self, **kwargs):
        return self.keras.optimizers.SGD(**kwargs)

    def host_adam(self, **kwargs):
        return self.keras.optimizers.Adam(**kwargs)

    def loss_scale_optimizer(self, opt):
        return self.keras.optimizers.LossScaleOptimizer(opt)

    def apply_scaled(self, lso, grads, variables):
        """One LossScaleOptimizer step, the way the host's training loop runs it."""
        if self.backend != "jax":
            return self.apply(lso, grads, variables)
        # JAX trains statelessly; Keras's own LossScaleOptimizer fails applied statefully.
        lso.build(variables)
        new_vars, new_opt_vars = lso.stateless_apply(
            [v.value for v in lso.variables], [self.tensor(g) for g in grads],
            [v.value for v in variables])
        for v, value in zip(list(variables) + list(lso.variables), list(new_vars) + list(new_opt_vars)):
            v.assign(value)

    def set_policy(self, name):
        self.keras.mixed_precision.set_global_policy(name)

    def registered_name(self, cls):
        return self.keras.saving.get_registered_name(cls)

    # variables
    def variable(self, value, name="w"):
        value = np.asarray(value)  # (torch refuses a trainable integer variable)
        # the value's dtype, named: Keras 3.3 gives a float64 value floatx's dtype otherwise
        return self.keras.Variable(value, name=name, dtype=value.dtype.name,
                                   trainable=np.issubdtype(value.dtype, np.floating))

    def tensor(self, value):
        return self.ops.convert_to_tensor(np.asarray(value))

    def value(self, v):
        return np.asarray(self.ops.convert_to_numpy(v))

    def slots(self, opt):
        opt = getattr(opt, "inner_optimizer", opt)  # through a LossScaleOptimizer
        return [self.value(v) for v in opt.variables]

    # devices: "cpu" always, "gpu" where the backend sees one (conftest.device)
    def devices(self):
        return ["cpu"] + (["gpu"] if self._gpu_visible() else [])

    def _gpu_visible(self):
        try:
            if self.backend == "tensorflow":
                import tensorflow as tf

                return bool(tf.config.list_physical_devices("GPU"))
            if self.backend == "jax":
                import jax

                return bool(jax.devices("gpu"))
            if self.backend == "torch":
                import torch

                return bool(torch.cuda.is_available())
        except RuntimeError:  # jax: no gpu platform (e.g. JAX_PLATFORMS=cpu)
            return False
        return False

    def on(self, kind):
        """Context manager: create variables and run ops on device ``kind`` ("cpu", "gpu")."""
        return self.keras.device("%s:0" % kind)

    def device_of(self, v):
        """"cpu" or "gpu": where the backend tensor of variable ``v`` lives."""
        x = v.value
        if self.backend == "jax":
            return _kind(next(iter(x.devices())).platform)
        if self.backend == "torch":
            return _kind(x.device.type)
        return _kind(x.device)

    # models
    @property
    def formats(self):
        # .weights.h5 holds no optimizer state in Keras 3 (nor for its own Adam): not a resume format
        return ["keras"] + (["checkpoint"] if self.tf is not None else [])

    def save(self, model, fmt, base):
        if fmt == "keras":
            model.save(base + ".keras")
            return base + ".keras"
        self.tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(base)
        return base


class TFKeras(_Host):
    """keras2 and legacy families: tf.keras or tf_keras, with TensorFlow variables."""

    def __init__(self, family):
        import tensorflow as tf

        self.tf = tf
        self.family = family
        self.backend = "tensorflow"
        self.namespace = optcompat._detect.require(family).split(".optimizers.")[0]
        self.keras, self.optimizer_base = optcompat._detect.host(family)
        self.module = optcompat.family_module(family)
        self.tf_version = tuple(int(p) for p in tf.__version__.split(".")[:2])
        # the .keras format arrived in TF 2.12; older releases save HDF5, and so does a
        # family whose optimizer state that format drops (deviations.LOST_STATE_FORMATS)

    def __repr__(self):
        return "%s-tf%d.%d%s" % (self.family, self.tf_version[0], self.tf_version[1],
                                 "-tf_keras" if self.namespace == "tf_keras" else "")

    # optimizers
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

    def host_adam(self, **kwargs):
        """The host's own Adam of this family (no decay): an oracle for clipping."""
        if self.family == "keras2":
            return self._builtin("Adam")(**kwargs)
        opts = self.keras.optimizers
        return getattr(opts, "legacy", opts).Adam(**kwargs) if self.tf_version >= (2, 11) \
            else opts.Adam(**kwargs)

    def loss_scale_optimizer(self, opt):
        mp = self.keras.mixed_precision
        if self.family == "keras2" and self.tf_version < (2, 11):
            return None  # TF 2.9/2.10: the public LossScaleOptimizer wraps OptimizerV2 only
        if hasattr(mp, "LossScaleOptimizer"):
            return mp.LossScaleOptimizer(opt)
        return mp.experimental.LossScaleOptimizer(opt, "dynamic")  # TF 2.2/2.3

    def apply_scaled(self, lso, grads, variables):
        return self.apply(lso, grads, variables)

    def set_policy(self, name):
        mp = self.keras.mixed_precision
        if hasattr(mp, "set_global_policy"):
            mp.set_global_policy(name)
        else:  # TF 2.2/2.3
            mp.experimental.set_policy(name)

    def registered_name(self, cls):
        return self.keras.utils.get_registered_name(cls)

    # variables
    def variable(self, value, name="w"):
        return self.tf.Variable(np.asarray(value), name=name)

    def tensor(self, value):
        return self.tf.constant(np.asarray(value))

    def value(self, v):
        return np.asarray(v.numpy() if hasattr(v, "numpy") else v)

    def slots(self, opt):
        opt = getattr(opt, "inner_optimizer", opt)  # through a LossScaleOptimizer
        variables = opt.variables
        variables = variables() if callable(variables) else variables  # a method in OptimizerV2
        return [self.value(v) for v in variables]

    # devices: "cpu" always, "gpu" where TensorFlow sees one (conftest.device)
    def devices(self):
        return ["cpu"] + (["gpu"] if self.tf.config.list_physical_devices("GPU") else [])

    def on(self, kind):
        """Context manager: create variables and run ops on device ``kind`` ("cpu", "gpu")."""
        return self.tf.device("/%s:0" % kind.upper())

    def device_of(self, v):
        return _kind(v.device)

    # models
    @property
    def formats(self):
        """Every format this host saves a model (or its training state) in."""
        return (["h5", "savedmodel", "checkpoint", "tf-weights"]
                + (["keras"] if self.tf_version >= (2, 12) or self.namespace == "tf_keras" else []))

    def save(self, model, fmt, base):
        if fmt in ("keras", "h5"):
            model.save(base + "." + fmt)
            return base + "." + fmt
        if fmt == "savedmodel":
            model.save(base, save_format="tf")
        elif fmt == "checkpoint":
            self.tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(base)
        else:  # TF-format weights: the model's checkpoint, optimizer included
            model.save_weights(base, save_format="tf")
        return base


def _kind(device):
    """"gpu" or "cpu" from a device string or platform name ("/device:GPU:0", "cuda", "cpu")."""
    d = str(device).lower()
    return "gpu" if ("gpu" in d or "cuda" in d) else "cpu" if "cpu" in d else d


HOSTS = {"keras3": Keras3, "keras2": TFKeras, "legacy": TFKeras}


def make_host(family):
    return HOSTS[family](family)


def have(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False
