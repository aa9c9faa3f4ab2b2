"""optcompat: one AdamW / SGDW (decoupled weight decay) for every TensorFlow / Keras release.

`AdamW` and `SGDW` here are the classes of the user's default Keras (the family that
`keras.optimizers.Adam` / `tf.keras.optimizers.Adam` belongs to; `OPTCOMPAT_FAMILY` overrides
it).  The family modules `optcompat.keras3`, `optcompat.keras2` and `optcompat.legacy` give
each family explicitly.  Importing this package imports no framework: the family is resolved
on first use, and the classes are registered with the host's serialization as soon as the host
is imported, so `load_model` needs no `custom_objects`.

Example:
    ```python
    from optcompat import AdamW, SGDW

    model.compile(optimizer=AdamW(learning_rate=1e-3, weight_decay=4e-3), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    ```
"""

import importlib
import sys

from . import _detect
from . import _hooks
from . import _lazy
from ._conventions import CONVENTIONS
from ._detect import available_families
from ._detect import default_family
from ._detect import describe
from ._penalties import weight_decays_from
from ._rule import normalized_weight_decay
from ._version import __version__

__all__ = ["AdamW", "SGDW", "CONVENTIONS", "decoupled", "normalized_weight_decay"]
__all__ += ["weight_decays_from", "describe", "default_family", "available_families"]
__all__ += ["family_module", "__version__"]

# Top-level host modules whose import makes a family's registry available.
_HOST_TOPS = ("keras", "tensorflow", "tf_keras")


def family_module(family=None):
    """The module of one family: `optcompat.keras3`, `optcompat.keras2` or `optcompat.legacy`.

    Args:
        family: `"keras3"`, `"keras2"` or `"legacy"`; None: the user's default family.

    Returns:
        The module, with that family's `AdamW`, `SGDW` and `decoupled`.

    Raises:
        ValueError: `family` is none of the families.
        ImportError: the family's host is not installed (the message names the releases
            that have it).

    Example:
        ```python
        import optcompat

        AdamW = optcompat.family_module(optcompat.default_family()).AdamW   # optcompat.AdamW
        ```
    """
    family = family or default_family()
    if family not in _detect.FAMILIES:
        raise ValueError(
            "family must be one of %s; received %r" % (_detect.FAMILIES, family)
        )
    return importlib.import_module("." + family, __name__)


def decoupled(optimizer_class):
    """Any Keras optimizer class with decoupled weight decay (TFA's
    `extend_with_decoupled_weight_decay`).

    The new class takes the base's own step after $x \\leftarrow x - d_t x$, with $d_t$ as for
    `AdamW` (by `convention`); its variables are the base's exactly, so files of `Nadam` and
    `decoupled(Nadam)` load into each other.

    Args:
        optimizer_class: a Keras optimizer class of any family (`keras.optimizers.Nadam`,
            `tf.keras.optimizers.legacy.RMSprop`, ...).

    Returns:
        A subclass named `Decoupled<Base>`, registered with the host, whose constructor takes
        the base's arguments plus `weight_decay` (required: a float >= 0, a
        `LearningRateSchedule` or a callable), `convention` and `exclude_from_weight_decay`.

    Raises:
        TypeError: `optimizer_class` is no optimizer class of an imported Keras.

    Example:
        ```python
        import optcompat

        NadamW = optcompat.decoupled(keras.optimizers.Nadam)
        model.compile(optimizer=NadamW(learning_rate=1e-3, weight_decay=1e-2), loss="mse")
        model.fit(x, y, epochs=1, verbose=0)
        ```
    """
    found = _detect.family_of_class(optimizer_class)
    if found is None:
        raise TypeError(
            "decoupled() takes an optimizer class of an imported Keras (%s); received %r."
            % (
                ", ".join(_detect.available_families()) or "none installed",
                optimizer_class,
            )
        )
    return family_module(found[0]).decoupled(optimizer_class)


def __getattr__(name):  # PEP 562: resolve the family on first use
    if name in ("AdamW", "SGDW"):
        value = getattr(family_module(), name)
    elif name in _detect.FAMILIES:
        value = family_module(name)
    else:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    globals()[name] = value
    return value


def __dir__():  # PEP 562: the names resolved on first use are listed too
    return sorted(set(globals()) | set(__all__) | set(_detect.FAMILIES))


_READY = []  # the drop-in faces' registrations (callback(family)), run as the families' own


def _register_ready(callbacks=None):
    """Import (so register) the adapter of every family whose host is fully imported, and run
    the faces' registrations (:func:`_when_ready`) for it.

    While any host module is still mid-import (``import keras`` runs ``import tensorflow``
    in TF 2.6-2.15; ``import tf_keras`` too), touching ``tf.keras`` could break it, so this
    waits for the outermost one: its own hook calls back here when it completes."""
    if any(_hooks.initializing(m) for m in _HOST_TOPS):
        return
    for family, path in _detect.host_modules().items():
        if path.split(".")[0] in sys.modules and _detect.adapter_available(family):
            if _hooks.initializing(family_module(family).__name__):
                # its own import imports the host (TF 2.6: keras): that outer call goes
                # on here
                continue
            for callback in _READY if callbacks is None else callbacks:
                callback(family)


def _when_ready(callback):
    """``callback(family)`` for each family whose host is imported: now, and whenever a host
    finishes importing (a drop-in face registers the peer's serialized names so, on its import
    alone, without importing a framework itself)."""
    _READY.append(callback)
    try:
        _register_ready([callback])
    except Exception as e:  # as the import hooks do: never break the user's import
        import warnings

        warnings.warn(
            "optcompat could not register: %s: %s" % (type(e).__name__, e),
            RuntimeWarning,
            stacklevel=3,
        )


for _module in _HOST_TOPS:
    _hooks.when_imported(_module, _register_ready)
del _module
_lazy.enable(__name__)
