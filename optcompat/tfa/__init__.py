"""TensorFlow Addons' decoupled weight decay API (`tfa.optimizers`), with one changed import.

Names and arguments only: `AdamW` / `SGDW` are optcompat's classes with TensorFlow Addons'
signatures and defaults (`weight_decay` first; `learning_rate=0.001`; `epsilon=1e-7`;
`momentum=0.0`) and `convention="tfa"` (TFA's numbers: $x \\leftarrow x - \\lambda_t x$, the
decay not scaled by the learning rate); `extend_with_decoupled_weight_decay(Base)` is
`optcompat.decoupled` with the same face; `DecoupledWeightDecayExtension` is the mixin all
three share, and a class written as TFA's docs show it
(`class MyAdamW(DecoupledWeightDecayExtension, tf.keras.optimizers.Adam)`) works too.
`decay_var_list` in `minimize` / `apply_gradients` names the variables that decay for that
call, and takes priority over `exclude_from_weight_decay`, as in TFA.

TFA's module paths for these names: `optcompat.tfa.optimizers` and
`optcompat.tfa.optimizers.weight_decay_optimizers` (and `optcompat.tfa` itself); the rest of
TensorFlow Addons (`tfa.layers`, `tfa.optimizers.RectifiedAdam`, ...) is refused with a
message saying so.

The family: OptimizerV2 (`optcompat.legacy`, TFA's own base) where the user's default Keras
has it (TF 1.15-2.15, `TF_USE_LEGACY_KERAS`), else the default family (Keras 3 on every
backend); `for_family` gives another family's classes.  `import optcompat.tfa` alone
registers the default family's classes under TFA's names (`Addons>AdamW`, `Addons>SGDW`)
where TensorFlow Addons is not installed, so a model file saved with TFA's optimizer loads
without TFA -- and OptimizerV2's too where it has a registry of its own beside Keras 3
(`tf_keras`, TF 2.16+: TFA's files are OptimizerV2 files, and `tf_keras.models.load_model`
reads them); next to TFA they are `optcompat.tfa.<family>>AdamW` (TFA keeps its names).

Example:
    ```python
    import optcompat.tfa as tfa                          # was: import tensorflow_addons as tfa
    opt = tfa.optimizers.AdamW(weight_decay=1e-4, learning_rate=1e-3)

    # was: from tensorflow_addons.optimizers import ...
    from optcompat.tfa.optimizers import AdamW, SGDW
    opt = AdamW(weight_decay=1e-4, learning_rate=1e-3)   # TFA's arguments and defaults
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    ```
"""

import importlib.util
import types

from .. import _detect
from .. import _faces
from .. import _tfa
from .. import _when_ready

# (AdamW, SGDW: resolved on first use, PEP 562)
__all__ = ["AdamW", "SGDW", "extend_with_decoupled_weight_decay"]
__all__ += ["DecoupledWeightDecayExtension", "for_family", "default_family"]  # noqa: F822

DecoupledWeightDecayExtension = _tfa.DecoupledWeightDecayExtension
"""TFA's mixin: `class MyAdamW(DecoupledWeightDecayExtension, tf.keras.optimizers.Adam)` as TFA's
docs write it; the class takes `weight_decay` first, then the base's arguments."""


def _tfa_installed():
    try:
        return importlib.util.find_spec("tensorflow_addons") is not None
    except (ImportError, ValueError):
        return False


def default_family():
    """The family of this module's classes for the user's Keras.

    Returns:
        `"legacy"` (OptimizerV2, TFA's own base) where the default family is OptimizerV2 or
        Keras 2 and OptimizerV2 is there, else the default family.
    """
    return _faces.peer_family()


def _takes_tfas_names(family):
    """The default family, and OptimizerV2 where the default is Keras 3 (another registry)."""
    default = default_family()
    return family == default or (family == "legacy" and default == "keras3")


def for_family(family=None):
    """TFA's API on one family.

    Args:
        family: `"keras3"`, `"keras2"` or `"legacy"`; None: `default_family()`.

    Returns:
        A namespace with `AdamW`, `SGDW`, `extend_with_decoupled_weight_decay` and
        `DecoupledWeightDecayExtension`.
    """
    family = family or default_family()
    addons = _takes_tfas_names(family) and not _tfa_installed()
    return types.SimpleNamespace(**_tfa.classes(family, "Addons" if addons else None))


def extend_with_decoupled_weight_decay(base_optimizer):
    """A Keras optimizer class with TFA's decoupled weight decay (`optcompat.decoupled`,
    TFA's face).

    Args:
        base_optimizer: a Keras optimizer class of any family (`tf.keras.optimizers.Nadam`, ...).

    Returns:
        A subclass of `base_optimizer` taking `(weight_decay, *args,
        exclude_from_weight_decay=None, **kwargs)`, with `decay_var_list` in `minimize` /
        `apply_gradients`.

    Raises:
        TypeError: `base_optimizer` is no optimizer class of an imported Keras.
    """
    found = _detect.family_of_class(base_optimizer)
    if found is None:
        raise TypeError(
            "extend_with_decoupled_weight_decay() takes an optimizer class of an imported Keras; "
            "received %r." % (base_optimizer,)
        )
    return for_family(found[0]).extend_with_decoupled_weight_decay(base_optimizer)


def _register(family):
    """On `import optcompat.tfa` alone: the default family's classes registered under TFA's
    names (`Addons>AdamW`, `Addons>SGDW`; `for_family`) as soon as its host is
    imported, so TFA's model files load without an attribute touched first."""
    if _takes_tfas_names(family):
        for_family(family)


_when_ready(_register)

# what a name of TFA that optcompat does not provide is answered with
_PROVIDES = (
    "%s provides TensorFlow Addons' decoupled weight decay only: tfa.optimizers.AdamW, "
    "SGDW, extend_with_decoupled_weight_decay and DecoupledWeightDecayExtension (also "
    "from tfa.optimizers.weight_decay_optimizers); the rest of TensorFlow Addons is "
    "not part of optcompat" % __name__
)
_faces.install(
    globals(), _PROVIDES, ("AdamW", "SGDW"), lambda name: getattr(for_family(), name)
)

# TFA's path, tfa.optimizers.AdamW: its names defined above
from . import optimizers  # noqa: E402,F401
