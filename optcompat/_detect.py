"""Which host optimizer families are installed, and which one is the user's default.

The only module that reads release numbers.  It reads installed-package metadata, so
detection imports no framework; the adapters import their host on first use.  Versions are
the metadata's strings, compared by :func:`release` (no ``packaging``: TensorFlow 2.2-2.8
do not install it, and a vendored copy must import there).

Family -> adapter module (one hop; each family's private host APIs live there, and in its
backend modules: ``_torch_fast`` for Keras 3 on torch):

==========  ==========================  ===============================================
family      adapter                     hosts
==========  ==========================  ===============================================
``keras3``  :mod:`optcompat.keras3`     Keras 3 (``keras.optimizers.Optimizer``) on the
                                        tensorflow, jax and torch backends
``keras2``  :mod:`optcompat.keras2`     ``build``/``update_step``: TF 2.9-2.10
                                        ``tf.keras.optimizers.experimental``, TF 2.11-2.15
                                        ``tf.keras.optimizers``, ``tf_keras.optimizers``
``legacy``  :mod:`optcompat.legacy`     OptimizerV2 (``_set_hyper``): TF 1.15-2.10
                                        ``tf.keras.optimizers``, TF 2.11-2.15 ``.legacy``,
                                        ``tf_keras.optimizers.legacy``
==========  ==========================  ===============================================
"""

import importlib.util
import os
import re
import sys

try:  # Python >= 3.8
    from importlib import metadata as _metadata
except ImportError:  # pragma: no cover
    _metadata = None

FAMILIES = ("keras3", "keras2", "legacy")

RELEASES = {
    "keras3": "Keras 3.x (keras>=3.0) on the tensorflow, jax or torch backend",
    "keras2": "TensorFlow 2.9-2.15 (tf.keras new optimizers) or tf-keras (tf_keras.optimizers)",
    "legacy": (
        "TensorFlow 1.15-2.15 (tf.keras OptimizerV2) or tf-keras "
        "(tf_keras.optimizers.legacy)"
    ),
}

# The families and their releases, as the errors and `problems` name them.
_SUPPORTED = "; ".join("%s: %s" % kv for kv in RELEASES.items())

# The first TensorFlow that optcompat's legacy family runs on: tf.keras's optimizers are
# OptimizerV2 there (TF 1.15 runs fit in graph mode), and the matrix tests it (tox env tf115-cp37).
# TF 1.14 is refused, measured: its OptimizerV2 has no apply_state and its Keras cannot reload
# an .h5 of a Sequential that starts with keras.Input (docs/support.md, "TensorFlow 1.14").
TF_FIRST = (1, 15)

# Distributions that provide the `tensorflow` package.
_TF_DISTS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tensorflow-macos",
    "tensorflow-intel",
    "tf-nightly",
    "tf-nightly-cpu",
)


def installed(dist):
    """The installed version string of a distribution (``"2.13.1"``), or None."""
    if _metadata is None:  # Python 3.6 / 3.7: no importlib.metadata in the stdlib
        return _metadata_version(dist)
    try:
        return _metadata.version(dist)
    except Exception:  # not installed, or metadata unreadable
        return None


def _dist_key(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata_version(dist):
    """The ``Version:`` of ``dist``'s metadata, found as ``importlib.metadata`` finds it: the
    first ``<name>-<version>.dist-info/METADATA`` or ``<name>.egg-info/PKG-INFO`` on
    ``sys.path`` whose normalized name is ``dist``'s; None where there is none."""
    key = _dist_key(dist)
    for entry in sys.path:
        folder = entry or os.curdir
        try:
            names = sorted(os.listdir(folder))
        except OSError:  # a zip file, a folder that is gone
            continue
        for name in names:
            stem, _, kind = name.rpartition(".")
            if (
                kind not in ("dist-info", "egg-info")
                or _dist_key(stem.split("-")[0]) != key
            ):
                continue
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                path = os.path.join(
                    path, "METADATA" if kind == "dist-info" else "PKG-INFO"
                )
            version = _version_line(path)
            if version:
                return version
    return None


def _version_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():  # the headers end at the first blank line
                    return None
    except OSError:
        return None
    return None


_RELEASE = re.compile(r"\s*v?(\d+(?:\.\d+)*)")


def release(version):
    """The release numbers of a version string, as a tuple: ``"2.13.0rc1"`` -> ``(2, 13, 0)``,
    ``"2.13.0+cpu"`` -> ``(2, 13, 0)``; None for None or a string without one."""
    match = _RELEASE.match(str(version)) if version is not None else None
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def versions():
    """Installed versions of every host distribution (None where absent)."""
    tf = next((v for v in map(installed, _TF_DISTS) if v is not None), None)
    return {
        "tensorflow": tf,
        "keras": installed("keras"),
        "tf_keras": installed("tf-keras") or installed("tf_keras"),
        "jax": installed("jax"),
        "torch": installed("torch"),
        "tensorflow_addons": installed("tensorflow-addons"),
    }


def _legacy_keras_requested():
    return os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in (
        "1",
        "true",
        "yes",
    )


def _minor(version):
    numbers = release(version)
    return None if numbers is None else (numbers + (0,))[:2]


def host_modules(found=None):
    """For each family present, the module path of its optimizer base class."""
    found = versions() if found is None else found
    tf, keras, tfk = (
        _minor(found["tensorflow"]),
        _minor(found["keras"]),
        found["tf_keras"],
    )
    hosts = {}
    if keras is not None and keras >= (3, 0):
        hosts["keras3"] = "keras.optimizers.Optimizer"
    if tfk is not None:
        hosts["keras2"] = "tf_keras.optimizers.Optimizer"
        hosts["legacy"] = "tf_keras.optimizers.legacy.Optimizer"
    if tf is not None and TF_FIRST <= tf < (2, 16):
        if tf >= (2, 11):
            hosts["keras2"] = "tensorflow.keras.optimizers.Optimizer"
            hosts["legacy"] = "tensorflow.keras.optimizers.legacy.Optimizer"
        else:
            hosts["legacy"] = "tensorflow.keras.optimizers.Optimizer"
            if tf >= (2, 9):
                hosts["keras2"] = "tensorflow.keras.optimizers.experimental.Optimizer"
    return hosts


def load(path):
    """Import ``top`` and follow attributes: ``load("tensorflow.keras.optimizers.Optimizer")``.

    Attribute access (not ``import tensorflow.keras``) because tf.keras is a lazily loaded
    alias in many releases."""
    import importlib

    top, _, rest = path.partition(".")
    obj = importlib.import_module(top)
    for attr in rest.split(".") if rest else ():
        obj = getattr(obj, attr)
    return obj


def family_of_class(cls):
    """``(family, base path)`` of an optimizer class: the family whose imported host's base
    class it subclasses (a host not imported cannot have made it); None for any other class."""
    for family, path in host_modules().items():
        if path.split(".")[0] not in sys.modules:
            continue
        try:
            base = load(path)
        except Exception:  # a host that does not import
            continue
        if isinstance(cls, type) and issubclass(cls, base):
            return family, path
    return None


# the Keras base classes whose subclasses a message names by their Keras (keras_of)
_KERAS_BASES = ("LearningRateSchedule", "Optimizer", "OptimizerV2")
_KERAS_TOPS = {"keras": "keras", "tf_keras": "tf_keras", "tensorflow": "tensorflow"}


def keras_of(value):
    """The Keras a schedule or optimizer (an instance or a class) belongs to, as a message
    names it (``"Keras 2 (tf_keras 2.15.1)"``, ``"Keras 3 (keras 3.6.0)"``, ``"Keras 2
    (tf.keras of tensorflow 2.5.3)"``), from the module of its Keras base class; None for
    anything else.  Reads module names and installed versions only."""
    cls = value if isinstance(value, type) else type(value)
    for base in getattr(cls, "__mro__", ()):
        top = base.__module__.split(".")[0]
        if base.__name__ in _KERAS_BASES and top in _KERAS_TOPS:
            version = versions()[top]
            if top == "tensorflow":
                return "Keras 2 (tf.keras of tensorflow %s)" % version
            major = (release(version) or (2,))[0]
            return "Keras %d (%s %s)" % (3 if major >= 3 else 2, top, version)
    return None


def host(family):
    """``(keras, OptimizerBase)`` of an installed family: the Keras namespace module
    (``keras``, ``tf.keras`` or ``tf_keras``) and the optimizer base class to subclass.
    Raises ImportError (see :func:`require`) when the family's host is absent."""
    path = require(family)
    return load(path.split(".optimizers.")[0]), load(path)


def host_class(family, name):
    """The host's own optimizer class ``name`` (``"Nadam"``) of ``family``, beside its base class
    (``tf.keras.optimizers.legacy.Nadam``, ``keras.optimizers.Nadam``, ...)."""
    return load(require(family).rsplit(".", 1)[0] + "." + name)


def writes_class_names(namespace):
    """Whether the Keras module ``namespace`` (``keras.__name__``) writes a class's bare
    ``__name__`` into saved configs rather than its registered name: tf.keras before TF 2.2."""
    tf = _minor(versions()["tensorflow"])
    return namespace.startswith("tensorflow") and tf is not None and tf < (2, 2)


def has_keras_format(family):
    """Whether the family's Keras saves the ``.keras`` format (Keras 3, tf.keras >= 2.13,
    tf_keras) from ``model.save("m.keras")``; older releases save ``.h5`` (TF 2.12 writes
    HDF5 under that name unless given ``save_format="keras_v3"``)."""
    path = require(family)
    tf = _minor(versions()["tensorflow"])
    return not path.startswith("tensorflow.") or (tf is not None and tf >= (2, 13))


def default_family(found=None):
    """The family of ``tf.keras.optimizers.Adam`` / ``keras.optimizers.Adam``.

    ``OPTCOMPAT_FAMILY`` overrides it (a family name).
    """
    forced = os.environ.get("OPTCOMPAT_FAMILY")
    if forced:
        if forced not in FAMILIES:
            raise ValueError(
                "OPTCOMPAT_FAMILY must be one of %s; got %r" % (FAMILIES, forced)
            )
        return forced
    found = versions() if found is None else found
    tf, keras = _minor(found["tensorflow"]), _minor(found["keras"])
    if tf is not None and tf >= (2, 16):
        # tf.keras is Keras 3, or tf_keras when TF_USE_LEGACY_KERAS is set.
        if _legacy_keras_requested() and found["tf_keras"] is not None:
            return "keras2"
        if keras is not None and keras >= (3, 0):
            return "keras3"
    elif tf is not None and tf >= TF_FIRST:
        return "keras2" if tf >= (2, 11) else "legacy"
    if keras is not None and keras >= (3, 0):
        return "keras3"
    raise ImportError(
        "optcompat found no supported host. %sInstall one of: " % _too_old(found)
        + _SUPPORTED
    )


def _too_old(found):
    """Words on an installed TensorFlow older than :data:`TF_FIRST` ('' where none is)."""
    tf = _minor(found["tensorflow"])
    if tf is None or tf >= TF_FIRST:
        return ""
    return (
        "TensorFlow %s is installed, older than %d.%d, the first optcompat supports "
        '(pip install "tensorflow==%d.%d.*" or newer). '
        % ((found["tensorflow"],) + TF_FIRST + TF_FIRST)
    )


def adapter_available(family):
    """Whether this copy of optcompat ships the adapter for ``family``."""
    return importlib.util.find_spec("%s.%s" % (__package__, family)) is not None


def available_families(found=None):
    """Families whose host is installed and whose adapter ships here, default first."""
    hosts = host_modules(found)
    fams = [f for f in FAMILIES if f in hosts and adapter_available(f)]
    try:
        default = default_family(found)
    # none installed, or OPTCOMPAT_FAMILY is not a family
    except (
        ImportError,
        ValueError,
    ):
        return fams
    return sorted(fams, key=lambda f: f != default)


def require(family):
    """Raise ImportError naming the family and the releases that have it, if absent."""
    hosts = host_modules()
    if family not in hosts:
        found = ", ".join(
            "%s %s" % (k, v) for k, v in versions().items() if v is not None
        )
        raise ImportError(
            "optcompat.%s needs the %s optimizer family, found in: %s. Installed: %s."
            % (family, family, RELEASES[family], found or "no TensorFlow / Keras")
        )
    return hosts[family]


def describe():
    """What was detected, for bug reports (`python -m optcompat` prints it).

    Returns:
        A dict: optcompat's and Python's versions, the default family, the families found with
        their host modules, the Keras 3 backend, the host versions, and `problems`: what is
        configured but not installed, each with its fix.
    """
    found = versions()
    hosts = host_modules(found)
    try:
        default = default_family(found)
    except (ImportError, ValueError) as e:
        default = "none (%s)" % e
    return {
        "optcompat": sys.modules[__package__].__version__,
        "python": sys.version.split()[0],
        "default_family": default,
        "families": {f: hosts[f] for f in available_families(found)},
        "keras3_backend": keras3_backend() if "keras3" in hosts else None,
        "versions": {k: (str(v) if v is not None else None) for k, v in found.items()},
        "TF_USE_LEGACY_KERAS": os.environ.get("TF_USE_LEGACY_KERAS"),
        "OPTCOMPAT_FAMILY": os.environ.get("OPTCOMPAT_FAMILY"),
        "problems": [text for _, text in problems(found)],
    }


def keras3_backend():
    """The backend Keras 3 will load: ``KERAS_BACKEND``, else ``keras.json``'s, else tensorflow."""
    return os.environ.get("KERAS_BACKEND") or _keras_config_backend()


# Keras 3's backends: what installs each (None: Keras's own), and whether it trains.
_BACKENDS = {
    "tensorflow": ("tensorflow", True),
    "jax": ("jax", True),
    "torch": ("torch", True),
    "numpy": (None, False),
    "openvino": ("openvino", False),
}


def _backend_installed(backend, found):
    dist = _BACKENDS[backend][0]
    return (
        dist is None
        or (found["tensorflow"] if dist == "tensorflow" else installed(dist))
        is not None
    )


def _where_set(name):
    if os.environ.get(name):
        return "%s=%s" % (name, os.environ[name])
    return (
        "KERAS_BACKEND is unset, so Keras 3 takes %s (~/.keras/keras.json or its default)"
        % _keras_config_backend()
    )


def problems(found=None):
    """What is configured but cannot run here, in words with the fix: ``[(family or None,
    text)]`` (the family the problem stops; None: every family).  Reads metadata and the
    environment only: imports nothing."""
    found = versions() if found is None else found
    hosts = host_modules(found)
    out = []
    if "keras3" in hosts:
        backend = keras3_backend()
        trainable = [
            b
            for b, (_, trains) in _BACKENDS.items()
            if trains and _backend_installed(b, found)
        ]
        choose = (
            "set KERAS_BACKEND to one of the installed backends: %s"
            % ", ".join(trainable)
            if trainable
            else "no backend Keras 3 trains on is installed (tensorflow, jax, torch)"
        )
        if backend not in _BACKENDS:
            out.append(
                (
                    "keras3",
                    "%s is not a Keras 3 backend (one of %s): %s."
                    % (_where_set("KERAS_BACKEND"), ", ".join(_BACKENDS), choose),
                )
            )
        elif not _backend_installed(backend, found):
            out.append(
                (
                    "keras3",
                    "%s but %s is not installed: pip install %s, or %s."
                    % (
                        _where_set("KERAS_BACKEND"),
                        backend,
                        _BACKENDS[backend][0],
                        choose,
                    ),
                )
            )
        elif not _BACKENDS[backend][1]:
            out.append(
                (
                    "keras3",
                    "%s is an inference-only Keras backend: optimizers do not train there; %s."
                    % (_where_set("KERAS_BACKEND"), choose),
                )
            )
    tf, keras = _minor(found["tensorflow"]), _minor(found["keras"])
    if (
        tf is not None
        and (2, 6) <= tf < (2, 16)
        and keras is not None
        and keras >= (3, 0)
    ):
        # TF 2.6-2.15's tf.keras is the `keras` package of the same minor
        out.append(
            (
                None,
                "TensorFlow %s uses the keras %d.%d package as tf.keras, but keras %s "
                'is installed: pip install "keras==%d.%d.*"'
                % (found["tensorflow"], tf[0], tf[1], found["keras"], tf[0], tf[1]),
            )
        )
    if (
        _legacy_keras_requested()
        and tf is not None
        and tf >= (2, 16)
        and found["tf_keras"] is None
    ):
        out.append(
            (
                "keras2",
                "TF_USE_LEGACY_KERAS=%s but tf-keras is not installed: pip install "
                '"tf-keras==%d.%d.*", or unset TF_USE_LEGACY_KERAS.'
                % (os.environ["TF_USE_LEGACY_KERAS"], tf[0], tf[1]),
            )
        )
    forced = os.environ.get("OPTCOMPAT_FAMILY")
    have = [f for f in FAMILIES if f in hosts]
    others = (
        "set OPTCOMPAT_FAMILY to one of the installed families (%s), or unset it"
        % ", ".join(have)
        if have
        else "unset it"
    )
    if forced and forced not in FAMILIES:
        out.append(
            (
                None,
                "OPTCOMPAT_FAMILY=%s is not a family (one of %s): %s."
                % (forced, ", ".join(FAMILIES), others),
            )
        )
    elif forced and forced not in hosts:
        out.append(
            (
                forced,
                "OPTCOMPAT_FAMILY=%s but that family's host is not installed (%s: %s): "
                "install one, or %s." % (forced, forced, RELEASES[forced], others),
            )
        )
    if not hosts:
        out.append(
            (
                None,
                "no TensorFlow / Keras that optcompat supports is installed. %sInstall "
                "one, e.g. pip install keras jax[cpu] (Keras 3 on JAX) or pip install "
                "tensorflow. Supported: %s."
                % (
                    _too_old(found),
                    _SUPPORTED,
                ),
            )
        )
    return out


_torch_fused = {}
# The first torch release with each fused kernel, per device type.
_TORCH_FUSED_SINCE = {
    "adamw": {"cuda": "2.0", "cpu": "2.4"},
    "sgd": {"cuda": "2.3", "cpu": "2.4"},
}


def torch_fused(kernel, device_type):
    """Whether the installed torch has the fused ``kernel`` (``"adamw"``:
    ``torch._fused_adamw_``, CUDA since torch 2.0, CPU since 2.4; ``"sgd"``:
    ``torch._fused_sgd_``, CUDA since 2.3, CPU since 2.4) for ``device_type``.  (Read once
    per kernel and device type: the fast path asks on every step.)"""
    key = (kernel, device_type)
    if key not in _torch_fused:
        have = release(installed("torch"))
        need = _TORCH_FUSED_SINCE[kernel].get(device_type)
        _torch_fused[key] = (
            have is not None and need is not None and have >= release(need)
        )
    return _torch_fused[key]


def torch_compiling():
    """Whether ``torch.compile`` (dynamo) is tracing the code that asks -- Keras 3's torch
    backend under ``jit_compile=True``.  ``torch.compiler.is_compiling`` (torch >= 2.3), else
    ``torch._dynamo.is_compiling`` (torch 2.0-2.2); False where torch is not imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if fn is None:
        fn = getattr(getattr(torch, "_dynamo", None), "is_compiling", None)
    return bool(fn()) if fn is not None else False


def _keras_config_backend():
    # Keras 3 reads ~/.keras/keras.json when KERAS_BACKEND is unset; read it without importing.
    import json

    base = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    try:
        with open(os.path.join(base, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


# Save formats that the host's own optimizers do not come back from with their state, per
# family and release (measured: tests/deviations.py keeps each as a ("save", FORMAT) record,
# test_save_resume checks the host's own Adam still loses its state there, and
# tests/test_state_formats.py holds this table to those records).  Saving optcompat's
# optimizer in one of them warns (_saving.warn_if_dropping_state).
# (family, package, first release, last release, format, what keeps the state instead)
_STATE_DROPPED = (
    (
        "keras2",
        "tensorflow",
        (2, 9),
        (2, 10),
        "h5",
        "a TF checkpoint (tf.train.Checkpoint)",
    ),
    (
        "keras2",
        "tensorflow",
        (2, 9),
        (2, 10),
        "savedmodel",
        "a TF checkpoint (tf.train.Checkpoint)",
    ),
    ("keras2", "tensorflow", (2, 11), (2, 11), "savedmodel", ".h5 or a TF checkpoint"),
    (
        "keras2",
        "tensorflow",
        (2, 12),
        None,
        "savedmodel",
        ".keras, .h5 or a TF checkpoint",
    ),
    ("legacy", "tensorflow", TF_FIRST, None, "savedmodel", ".h5 or a TF checkpoint"),
    ("legacy", "tensorflow", (2, 13), None, "keras", ".h5 or a TF checkpoint"),
    ("keras3", "keras", (3, 0), None, "h5", ".keras"),
)
# where each format's save starts: the host's saving function, as (a fragment of its module's
# path, its name).  The stack holds it while the model's config -- the optimizer's get_config
# -- is written; the outermost one is the format (a .keras save runs SavedModel helpers inside).
SAVE_SITES = {
    "h5": (
        ("hdf5_format.py", "save_model_to_hdf5"),
        ("h5_format.py", "save_model_to_hdf5"),
    ),
    "savedmodel": (("saved_model/save.py", "save"),),
    "keras": (("saving_lib.py", "save_model"),),
}


def formats_dropping_state(family, found=None):
    """``{format: what keeps the state}`` for the formats that ``family``'s host, at the
    installed release, saves without an optimizer's state (``_STATE_DROPPED``)."""
    found = versions() if found is None else found
    out = {}
    for fam, package, first, last, fmt, keeps in _STATE_DROPPED:
        have = _minor(found.get(package))
        if (
            fam == family
            and have is not None
            and have >= first
            and (last is None or have <= last)
        ):
            out[fmt] = keeps
    return out


# -- optimizers of other libraries (optcompat.state reads and writes their state) -----------
def foreign_optimizer(obj):
    """``"torch"`` for a ``torch.optim.Optimizer``, ``"optax"`` for an optax optimizer state
    (what ``tx.init(params)`` returns: a tuple or NamedTuple holding one of optax's state
    classes), else None.  Only a library already imported can have made ``obj``, so neither
    is imported here."""
    torch = sys.modules.get("torch")
    optim = getattr(torch, "optim", None) if torch is not None else None
    base = getattr(optim, "Optimizer", None)
    if isinstance(base, type) and isinstance(obj, base):
        return "torch"
    if "optax" in sys.modules and isinstance(obj, tuple) and _holds_optax_state(obj, 0):
        return "optax"
    return None


def _holds_optax_state(node, depth):
    module = type(node).__module__ or ""
    if module.split(".")[0] == "optax":
        return True
    if isinstance(node, tuple) and depth < 32:
        return any(_holds_optax_state(child, depth + 1) for child in node)
    return False
