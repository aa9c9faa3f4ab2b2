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

from . import _detect, _hooks
from ._conventions import CONVENTIONS
from ._detect import available_families, default_family, describe
from ._version import __version__

__all__ = ["AdamW", "SGDW", "CONVENTIONS", "describe", "default_family",
           "available_families", "family_module", "__version__"]

# Host module -> families whose classes register with it once it is imported.
_REGISTER_ON = {"keras": ("keras3",)}


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


def _register(families):
    hosts = _detect.host_modules()
    for family in families:
        if family in hosts and _detect.adapter_available(family):
            family_module(family)


for _module, _families in _REGISTER_ON.items():
    _hooks.when_imported(_module, lambda f=_families: _register(f))
del _module, _families
