"""Test support: the one module the tests (and ci/record.py) import helpers from.

* What this env is: the host versions, read with importlib.metadata (never through
  optcompat); the families, default family and devices the tox env DECLARES
  (``OPTCOMPAT_ENV_FAMILIES`` / ``OPTCOMPAT_ENV_DEFAULT`` / ``OPTCOMPAT_ENV_DEVICES`` in
  tox.ini's ``set_env``), or, outside tox, this module's own detection from the versions.
* A tiny version-specifier matcher (``matches``), over those versions: the deviations table
  (deviations.py) and the host tables below are keyed on it.
* The host harness: one small object per family, so every test module runs unchanged
  against whichever families an env has.  It finds the host's optimizer base class and
  Keras namespace from its own table (BASES), never by asking optcompat; it never
  reimplements an optimizer.
* The shared test helpers: the 40-step problem and its runs, the tolerances, the data.
"""
import functools
import importlib
import json
import os
import subprocess
import sys

import numpy as np

import reference

FAMILIES = ("keras3", "keras2", "legacy")

# subprocess.run(..., **CAPTURE): the output as text, as capture_output=True, text=True give it
# from Python 3.7 (the tf22-cp36 env runs the tests on Python 3.6)
CAPTURE = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)

# -- what is installed ---------------------------------------------------------------------

try:  # Python >= 3.8
    from importlib import metadata as _metadata
except ImportError:  # Python 3.6 / 3.7: the backport, which pytest itself requires there
    import importlib_metadata as _metadata

# the distributions that provide each host package (the first one installed wins)
DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos",
                   "tensorflow-intel", "tf-nightly", "tf-nightly-cpu"),
    "keras": ("keras",),
    "tf_keras": ("tf-keras", "tf_keras"),
    "jax": ("jax",),
    "torch": ("torch",),
    "tensorflow_addons": ("tensorflow-addons",),
    "keras_adamw": ("keras-adamw",),
}


def installed(dist):
    """The installed version string of a distribution, or None."""
    try:
        return _metadata.version(dist)
    except Exception:  # not installed, or unreadable metadata
        return None


def versions():
    """{package: version string or None} for every host package (DISTRIBUTIONS)."""
    out = {}
    for package, dists in DISTRIBUTIONS.items():
        out[package] = next((v for v in map(installed, dists) if v is not None), None)
    return out


def release(version):
    """(2, 13, 0) from "2.13.0rc1", "2.13", "3.0.5.dev2": the leading numeric fields."""
    out = []
    for part in str(version).split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
        if len(digits) < len(part):  # "0rc1": a pre-release marker ends the release part
            break
    return tuple(out)


def _cmp(a, b):
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


_OPS = (">=", "<=", "==", "!=", ">", "<")


def matches(specifiers, values):
    """Whether ``values`` (a dict: package -> version string or None; "backend" -> a name)
    meets every specifier: ``{"tensorflow": ">=2.9,<2.11"}`` (comma: and), ``{"backend":
    "jax|tensorflow"}`` (a bar: one of these names).  A package that is absent meets none."""
    for key, spec in specifiers.items():
        value = values.get(key)
        if value is None:
            return False
        for clause in spec.split(","):
            clause = clause.strip()
            op = next((o for o in _OPS if clause.startswith(o)), None)
            if op is None:  # names
                if value not in clause.split("|"):
                    return False
                continue
            c = _cmp(release(value), release(clause[len(op):].strip()))
            if not {">=": c >= 0, "<=": c <= 0, "==": c == 0, "!=": c != 0, ">": c > 0, "<": c < 0}[op]:
                return False
    return True


# -- the host of each family: where its optimizer base class lives -------------------------

# family -> [(specifiers, dotted path of the base class)]: the first that matches wins.
BASES = {
    "keras3": [({"keras": ">=3.0"}, "keras.optimizers.Optimizer")],
    "keras2": [({"tensorflow": ">=2.9,<2.11"}, "tensorflow.keras.optimizers.experimental.Optimizer"),
               ({"tensorflow": ">=2.11,<2.16"}, "tensorflow.keras.optimizers.Optimizer"),
               ({"tf_keras": ">=2.0"}, "tf_keras.optimizers.Optimizer")],
    "legacy": [({"tensorflow": ">=1.15,<2.11"}, "tensorflow.keras.optimizers.Optimizer"),
               ({"tensorflow": ">=2.11,<2.16"}, "tensorflow.keras.optimizers.legacy.Optimizer"),
               ({"tf_keras": ">=2.0"}, "tf_keras.optimizers.legacy.Optimizer")],
}


def base_path(family, found=None):
    """The dotted path of ``family``'s optimizer base class with these versions, or None."""
    found = versions() if found is None else found
    return next((path for spec, path in BASES[family] if matches(spec, found)), None)


def _legacy_keras_requested():
    return os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")


def detect(found=None):
    """(families, default family) from the versions alone: the tests' own detection, used
    where the env declares nothing (pytest outside tox).  Families default first."""
    found = versions() if found is None else found
    families = [f for f in FAMILIES if base_path(f, found)]
    default = None
    if matches({"tensorflow": ">=2.16"}, found):
        if _legacy_keras_requested() and "keras2" in families:
            default = "keras2"
        elif "keras3" in families:
            default = "keras3"
    elif matches({"tensorflow": ">=2.11"}, found) and "keras2" in families:
        default = "keras2"
    elif matches({"tensorflow": ">=1.15"}, found):
        default = "legacy"
    elif "keras3" in families:
        default = "keras3"
    return sorted(families, key=lambda f: f != default), default


def keras3_backend():
    """The Keras 3 backend, read as Keras reads it: KERAS_BACKEND, else ~/.keras/keras.json."""
    config = os.path.join(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"),
                          "keras.json")
    try:
        with open(config) as f:
            configured = json.load(f).get("backend")
    except (OSError, ValueError):  # no config file: Keras's default
        configured = None
    return os.environ.get("KERAS_BACKEND") or configured or "tensorflow"


class Env(object):
    """What this env is: declared by its tox env, or detected here (``source`` says which)."""

    def __init__(self):
        self.versions = versions()
        declared = os.environ.get("OPTCOMPAT_ENV_FAMILIES")
        if declared is not None:
            self.families = [f.strip() for f in declared.split(",") if f.strip()]
            self.default = os.environ.get("OPTCOMPAT_ENV_DEFAULT") or None
            self.source = "declared by the tox env (OPTCOMPAT_ENV_FAMILIES / _DEFAULT / _DEVICES)"
        else:
            self.families, self.default = detect(self.versions)
            self.source = ("no OPTCOMPAT_ENV_FAMILIES declared: detected by tests/support.py from "
                           "installed package metadata (not by optcompat)")
        self.devices = [d.strip() for d in os.environ.get("OPTCOMPAT_ENV_DEVICES", "cpu").split(",") if d.strip()]
        # whether this env runs the multi-process distribution tests (tox's `dist` factor declares it)
        self.dist = os.environ.get("OPTCOMPAT_ENV_DIST", "") == "1"

    def facts(self, family):
        return Facts(family, self.versions)


class Facts(object):
    """A family of this env as collection sees it: ``family``, ``backend`` and ``versions``
    (the host versions plus "backend"), without importing any framework."""

    def __init__(self, family, found):
        self.family = family
        self.backend = (keras3_backend() if family == "keras3" else "tensorflow") if family else None
        self.versions = dict(found, backend=self.backend)
        self.base = base_path(family, found) if family else None

    def at(self, **specifiers):
        return matches(specifiers, self.versions)

    def has(self, package):
        return self.versions.get(package) is not None

    @property
    def formats(self):
        """Every format this host saves a model (or its training state) in."""
        if self.family == "keras3":
            # .weights.h5 is not a model file; .h5 is (Keras 3 cannot resume from it: deviations)
            return ["keras", "h5"] + (["checkpoint"] if self.backend == "tensorflow" else [])
        # the .keras archive: tf.keras from TF 2.13 (and tf_keras); TF 2.12's model.save("m.keras")
        # writes an HDF5 file (measured, TF 2.12.1: only save_format="keras_v3" writes the archive)
        return (["h5", "savedmodel", "checkpoint", "tf-weights"]
                + (["keras"] if self.at(tensorflow=">=2.13") or self.base.startswith("tf_keras.") else []))

    @property
    def writes_class_names(self):
        """tf.keras before TF 2.2 writes a class's bare ``__name__`` into saved configs (and
        TF 1.15 / 2.0 have no ``register_keras_serializable``); later Keras their registered name."""
        return self.family in ("legacy", "keras2") and self.base.startswith("tensorflow.") \
            and self.at(tensorflow="<2.2")

    @property
    def fast_modes(self):
        """optcompat's fast paths on this host (test_fast_paths checks each is really there)."""
        return {"torch": ("foreach", "fused"), "tensorflow": ("fused",)}.get(self.backend, ())


ENV = Env()

# TF 1.15 runs in graph mode unless told otherwise.  Its env (tox: tf115) declares that the suite
# runs with TF 2 behaviour, as TF 1.15 codebases that moved to eager do (tests/tf2_behavior's
# sitecustomize does it in each of the env's processes; here for a pytest run outside tox);
# tests/test_graph_mode.py runs fit in graph mode, in fresh processes.
if os.environ.get("OPTCOMPAT_ENV_TF2_BEHAVIOR") == "1":
    import tensorflow as _tf

    if not _tf.executing_eagerly():
        _tf.compat.v1.enable_v2_behavior()


def load(path):
    """Import ``top`` and follow attributes (tf.keras is a lazily loaded alias in many releases)."""
    top, _, rest = path.partition(".")
    return functools.reduce(getattr, rest.split(".") if rest else [], importlib.import_module(top))


def host_namespace(family):
    """(the Keras namespace module, the optimizer base class) of ``family``, from BASES."""
    path = base_path(family, ENV.versions)
    if path is None:
        raise LookupError("no %s host in this env (versions %s)" % (family, ENV.versions))
    return load(path.split(".optimizers.")[0]), load(path)


# -- the harness ---------------------------------------------------------------------------

def seeded(model, seed):
    """Give a model the same initial weights in every host and release (seeding the
    framework's RNG does not: two models built in one TF 2.10 process differ)."""
    rng = np.random.default_rng(seed)
    model.set_weights([(0.5 * rng.normal(size=w.shape)).astype(w.dtype) for w in model.get_weights()])
    return model


def _optcompat_family(family):
    return importlib.import_module("optcompat").family_module(family)


class _Host(object):
    """What every family's harness does the same way."""

    def _setup(self, family, module):
        self.family = family
        self.facts = ENV.facts(family)
        self.versions = self.facts.versions
        path = self.facts.base
        self.namespace = path.split(".optimizers.")[0]  # the Keras module, dotted from its top package
        self.keras, self.optimizer_base = host_namespace(family)
        self.module = module if module is not None else _optcompat_family(family)

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

    def load_model(self, path, custom_objects=None):
        return self.keras.models.load_model(path, custom_objects=custom_objects)

    @property
    def formats(self):
        return self.facts.formats


class Keras3(_Host):
    def __init__(self, family="keras3", module=None):
        self._setup(family, module)
        self.ops = self.keras.ops
        self.backend = self.keras.backend.backend()
        self.tf = importlib.import_module("tensorflow") if self.backend == "tensorflow" else None

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

    def save(self, model, fmt, base):
        if fmt in ("keras", "h5"):
            model.save(base + "." + fmt)
            return base + "." + fmt
        self.tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(base)
        return base


class TFKeras(_Host):
    """keras2 and legacy families: tf.keras or tf_keras, with TensorFlow variables."""

    def __init__(self, family, module=None):
        import tensorflow as tf

        self.tf = tf
        self.backend = "tensorflow"
        self._setup(family, module)
        self.tf_version = release(self.versions["tensorflow"])[:2]

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
        # TF 2.11 has AdamW under .experimental only (2.12 added tf.keras.optimizers.AdamW)
        return getattr(opts, name, None) or getattr(getattr(opts, "experimental", None), name, None)

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
        """The name the host writes for ``cls`` in a saved config: its registered name, or its
        bare class name in tf.keras before TF 2.2 (which has no ``get_registered_name``)."""
        if self.facts.writes_class_names:
            return cls.__name__
        return self.keras.utils.get_registered_name(cls)

    # variables
    def variable(self, value, name="w"):
        return self.tf.Variable(np.asarray(value), name=name)

    def tensor(self, value):
        return self.tf.constant(np.asarray(value))

    def value(self, v):
        return np.asarray(v.numpy() if hasattr(v, "numpy") else v)

    def slots(self, opt):
        # through a LossScaleOptimizer (TF 1.15's keeps its optimizer as `_optimizer` only)
        opt = getattr(opt, "inner_optimizer", None) or getattr(opt, "_optimizer", None) or opt
        variables = opt.variables
        variables = variables() if callable(variables) else variables  # a method in OptimizerV2
        return [self.value(v) for v in variables]

    # devices: "cpu" always, "gpu" where TensorFlow sees one (conftest.device)
    def devices(self):
        listed = getattr(self.tf.config, "list_physical_devices", None) or \
            self.tf.config.experimental.list_physical_devices  # TF 1.15 / 2.0
        return ["cpu"] + (["gpu"] if listed("GPU") else [])

    def on(self, kind):
        """Context manager: create variables and run ops on device ``kind`` ("cpu", "gpu")."""
        return self.tf.device("/%s:0" % kind.upper())

    def device_of(self, v):
        return _kind(v.device)

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


def make_host(family, module=None):
    """The harness of ``family``; ``module``: the optcompat family module to test (default:
    the installed optcompat's, e.g. a vendored copy's instead)."""
    return HOSTS[family](family, module)


def have(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def host_class(host, name):
    """The host's built-in ``name`` (Adam, SGD) of this family's API: the first one found
    that subclasses the family's optimizer base."""
    opts = host.keras.optimizers
    for ns in (opts, getattr(opts, "legacy", None), getattr(opts, "experimental", None)):
        cls = getattr(ns, name, None) if ns is not None else None
        if isinstance(cls, type) and issubclass(cls, host.optimizer_base):
            return cls
    return None


def import_peer(host, module, where):
    """The peer package ``module``, or a skip that says why and where it runs (``where``)."""
    import pytest

    keep = None
    if module == "tensorflow_addons" and module not in sys.modules and host.facts.writes_class_names:
        # TFA 0.6 (TF 2.0) puts its classes under their bare names (AdamW, SGDW) when imported
        # (deviations: tfa_bare_name, checked in a fresh process by test_tfa): the oracle's
        # import must not change the registry under the other tests
        keep = dict(host.keras.utils.get_custom_objects())
    try:
        peer = importlib.import_module(module)
    except Exception as e:  # broken with this TensorFlow
        pytest.skip("%s cannot be imported with TensorFlow %s (%s: %s); %s"
                    % (module, host.tf.__version__, type(e).__name__, str(e).splitlines()[0][:120], where))
    if keep is not None:
        host.keras.utils.get_custom_objects().update(keep)
    return peer


def tensorflow_addons(host):
    return import_peer(host, "tensorflow_addons", "the tfa oracle runs on TF 2.0-2.15 (tox envs "
                       "tf22..tf215 pin a TFA that works)")


# -- the 40-step problem and its runs ------------------------------------------------------

CONVENTIONS = list(importlib.import_module("optcompat").CONVENTIONS)  # each must be in reference.py too
STEPS = 40
TOL = 2e-5  # optcompat vs the float64 reference over 40 steps
ORACLE_TOL = 2e-6  # optcompat vs a peer optimizer that computes the same rule

ADAM_CASES = {
    "plain": dict(learning_rate=0.01, weight_decay=0.05),
    "amsgrad": dict(learning_rate=0.01, weight_decay=0.05, amsgrad=True),
    "betas-eps": dict(learning_rate=0.003, weight_decay=0.2, beta_1=0.8, beta_2=0.95, epsilon=1e-3),
    "schedule": dict(learning_rate=("exp", 0.02, 10, 0.5), weight_decay=0.1),
    "schedule-amsgrad": dict(learning_rate=("exp", 0.02, 10, 0.5), weight_decay=0.1, amsgrad=True),
}
SGD_CASES = {
    "plain": dict(learning_rate=0.05, weight_decay=0.1),
    "momentum": dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9),
    "nesterov": dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True),
    "schedule-momentum": dict(learning_rate=("exp", 0.05, 10, 0.5), weight_decay=0.1, momentum=0.5),
}


def problem(seed=0, shapes=((3, 4), (5,))):
    rng = np.random.default_rng(seed)
    x0 = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(STEPS)]
    return x0, grads


def run(host, name, kwargs, x0, grads):
    kw = dict(kwargs)
    lr = kw["learning_rate"]
    if isinstance(lr, tuple):  # build the same schedule in the host and in the reference
        kw["learning_rate"] = host.exponential_decay(*lr[1:])
    return steps(host, host.make(name, **kw), x0, grads)[0]


def steps(host, opt, x0, grads, names=None):
    """``opt`` applied to fresh variables from ``x0`` (named ``names``, else w0, w1, ...), one
    step per entry of ``grads``: the weights after every step, and the variables."""
    variables = [host.variable(x, name=names[i] if names else "w%d" % i) for i, x in enumerate(x0)]
    traj = []
    for g in grads:
        host.apply(opt, g, variables)
        traj.append([host.value(v) for v in variables])
    return traj, variables


def expected(fn, kwargs, x0, grads):
    kw = dict(kwargs)
    if isinstance(kw["learning_rate"], tuple):
        kw["learning_rate"] = reference.exponential_decay(*kw["learning_rate"][1:])
    lr = kw.pop("learning_rate")
    per_var = [fn(x, [g[i] for g in grads], lr, **kw) for i, x in enumerate(x0)]
    return [[per_var[i][t] for i in range(len(x0))] for t in range(len(grads))]


def worst(a, b):
    """max |a - b| over two trajectories (lists of steps, each a list of arrays)."""
    return max(np.max(np.abs(x - y)) for sa, sb in zip(a, b) for x, y in zip(sa, sb))


def assert_close(traj, ref, tol):
    error = worst(traj, ref)
    assert error <= tol, "max |optcompat - reference| over %d steps = %.3g > %.1g" % (len(traj), error, tol)
    # the run must move the weights, or closeness proves nothing
    assert max(np.max(np.abs(a - b)) for a, b in zip(ref[-1], ref[0])) > 10 * tol


def host_run(host, make, x0, grads):
    import pytest

    opt = make()
    if opt is None:  # the tests that need one are collected where support.has_builtin says so
        pytest.fail("%r has no built-in optimizer to compare with" % host)
    return steps(host, opt, x0, grads)[0]


def truncated_copy(path, out):
    """``out``: the first half of the file at ``path`` (an optcompat.state file cut short)."""
    data = open(path, "rb").read()
    open(out, "wb").write(data[: len(data) // 2])
    return out


def corrupted_copy(path, out):
    """``out``: the optcompat.state file at ``path`` with one byte of a slot array's data changed
    (the zip's own CRC or the header's checksum must catch it)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        offset = z.getinfo("0/m.npy").header_offset
    data = bytearray(open(path, "rb").read())
    name_length, extra_length = (int.from_bytes(data[offset + i:offset + i + 2], "little") for i in (26, 28))
    data[offset + 30 + name_length + extra_length + 140] ^= 0xFF  # in the array's data (after its npy header)
    open(out, "wb").write(bytes(data))
    return out


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32) + 0.1).astype(np.float32)
    return x, y


def flat(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


# -- fit helpers ---------------------------------------------------------------------------

WEIGHT_DECAY_BY_EPOCH = (0.2, 0.0, 0.05, 0.1)


def fit_setting_weight_decay(host, opt, eager, set_it=True, **compile_kw):
    """The weights after 4 epochs of ``fit``, a callback setting ``optimizer.weight_decay``
    from WEIGHT_DECAY_BY_EPOCH at the start of each (``set_it``), as a weight-decay schedule
    written for TensorFlow Addons' AdamW does; ``eager``: ``run_eagerly``."""
    class SetWeightDecay(host.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.optimizer.weight_decay = WEIGHT_DECAY_BY_EPOCH[epoch]

    x, y = data()
    model = host.dense_model()
    model.compile(optimizer=opt, loss="mse", run_eagerly=eager, **compile_kw)
    model.fit(x, y, batch_size=16, epochs=len(WEIGHT_DECAY_BY_EPOCH), verbose=0, shuffle=False,
              callbacks=[SetWeightDecay()] if set_it else [])
    return [flat(model)]


def check_the_host_cannot_jit_compile(host, reason):
    """Where deviations records that the host's own jit-compiled ``fit`` fails: make sure it
    still fails (else the entry must go)."""
    import pytest

    x, y = data()
    model = host.dense_model()
    model.compile(optimizer=host.keras.optimizers.AdamW(learning_rate=0.01), loss="mse", jit_compile=True)
    try:
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    except Exception:  # noqa: BLE001 -- whatever the host raises, it did not train
        return
    pytest.fail("%r's own AdamW fits under jit_compile=True now; remove the entry: %s" % (host, reason))


# -- save / resume (also imported by test_save_resume's fresh-process scripts) ------------

SAVE_CASES = {
    "adamw": ("AdamW", dict(weight_decay=0.05, amsgrad=True, convention="paper"), True),
    "sgdw": ("SGDW", dict(learning_rate=0.05, weight_decay=0.01, momentum=0.9, nesterov=True,
                          convention="torch"), False),
}


def make_optimizer(host, case, own_adam=False):
    name, kw, schedule = SAVE_CASES[case]
    kw = dict(kw)
    if schedule:
        kw["learning_rate"] = host.exponential_decay(0.05, 8, 0.5)
    if own_adam:
        return host.host_adam(learning_rate=kw.get("learning_rate", 0.05))
    return host.make(name, **kw)


def fit(model, steps_epochs=2):
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=steps_epochs, verbose=0, shuffle=False)


def straight_run(host, case, own_adam=False):
    """The weights after 4 epochs without interruption."""
    model = host.dense_model()
    model.compile(optimizer=make_optimizer(host, case, own_adam), loss="mse")
    fit(model, 4)
    return flat(model)


def applies(predicate):
    """The marker ``applies(predicate)``: the test is collected only where
    ``predicate(facts, params)`` holds (tests/conftest.py), ``facts`` a support.Facts of the
    test's host family, ``params`` its parameters."""
    import pytest

    return pytest.mark.applies.with_args(predicate)


# -- what the host's own optimizers have (collection-time facts; the tests check them) -----

# the base-class options of each family (Keras 3.0.5+ has gradient_accumulation_steps)
OPTIONS = {"use_ema": ("keras3", "keras2"), "ema_momentum": ("keras3", "keras2"),
           "ema_overwrite_frequency": ("keras3", "keras2"),
           "gradient_accumulation_steps": ("keras3",), "loss_scale_factor": ("keras3",)}


def takes(facts, options):
    """Whether the family's optimizer base class takes every option named."""
    return all(facts.family in OPTIONS[o] for o in options)


def has_builtin(facts, name):
    """Whether the host has its own ``name`` of this family: "Adam" and "SGD" everywhere;
    "AdamW" in Keras 3 and Keras 2 (TF 2.9-2.10: under .experimental); "SGD(weight_decay)" in
    Keras 3 and Keras 2 from TF 2.11 (OptimizerV2 has neither)."""
    if name in ("Adam", "SGD") or facts.family == "keras3":
        return True
    if facts.family == "keras2":
        return name == "AdamW" or facts.at(tensorflow=">=2.11")
    return False
