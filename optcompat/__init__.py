"""optcompat: one AdamW / SGDW (decoupled weight decay) for every TensorFlow / Keras release.

    from optcompat import AdamW, SGDW
    model.compile(optimizer=AdamW(learning_rate=1e-3, weight_decay=4e-3), loss="mse")

``AdamW`` and ``SGDW`` here are the classes of the user's default Keras (the family that
``keras.optimizers.Adam`` / ``tf.keras.optimizers.Adam`` belongs to).  The family modules
``optcompat.keras3``, ``optcompat.keras2`` and ``optcompat.legacy`` give each family
explicitly.  Importing this package imports no framework: the family is resolved on
first use (PEP 562), and the classes are registered with the host's serialization as
soon as the host is imported, so ``load_model`` needs no ``custom_objects``.
"""
import importlib
import sys

from . import _detect, _hooks
from ._conventions import CONVENTIONS
from ._detect import available_families, default_family, describe
from ._version import __version__

__all__ = ["AdamW", "SGDW", "CONVENTIONS", "describe", "default_family",
           "available_families", "family_module", "__version__"]

# Host module -> families whose classes register once it has been imported.  A family
# registers on the first of its modules to finish importing while its host's top module
# (``tensorflow`` for tf.keras, ``tf_keras``, ``keras``) is fully imported: tf.keras is the
# separate `keras` package in TF 2.6-2.15 (imported by `tensorflow`, or importing it), and
# `tf_keras` imports `tensorflow`, so a family must not load its host while one of them is
# still half-imported.
_REGISTER_ON = {
    "keras": ("keras3", "legacy"),
    "tensorflow": ("legacy",),
    "tf_keras": ("legacy",),
}
_HOST_TOPS = ("tensorflow", "keras", "tf_keras")


def family_module(family=None):
    """The adapter module of ``family`` (default: the user's default family)."""
    family = family or default_family()
    if family not in _detect.FAMILIES:
        raise ValueError("family must be one of %s; received %r" % (_detect.FAMILIES, family))
    return importlib.import_module("." + family, __name__)


def __getattr__(name):  # PEP 562: resolve the family on first use
    if name in ("AdamW", "SGDW"):
        value = getattr(family_module(), name)
    elif name in _detect.FAMILIES:
        value = family_module(name)
    else:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    globals()[name] = value
    return value


def _importing(name, trigger):
    """Whether module ``name`` is still executing its own import (other than ``trigger``,
    whose code has just finished)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return name != trigger and bool(getattr(spec, "_initializing", False))


def _register(families, trigger):
    hosts = _detect.host_modules()
    for family in families:
        if family not in hosts or not _detect.adapter_available(family):
            continue
        if _ready(hosts[family].split(".")[0], trigger):
            family_module(family)


def _ready(top, trigger):
    """Whether a family whose host lives under module ``top`` can be loaded now."""
    if top != trigger and top not in sys.modules:
        return False  # e.g. `import tensorflow` must not import tf_keras
    # Keras 3 is self-contained; tf.keras / tf_keras need tensorflow and keras complete.
    # Whichever of them finishes last runs its own hook and registers the family then.
    waits = (top,) if top == "keras" else _HOST_TOPS
    return not any(_importing(m, trigger) for m in waits)


for _module, _families in _REGISTER_ON.items():
    _hooks.when_imported(_module, lambda f=_families, m=_module: _register(f, m))
del _module, _families
