"""TensorFlow Addons' `tfa.optimizers`, for what optcompat provides of it: `AdamW`, `SGDW`,
`extend_with_decoupled_weight_decay` and `DecoupledWeightDecayExtension`
(`optcompat.tfa`), so that TFA's own paths work with one changed import::

    import optcompat.tfa as tfa                    # import tensorflow_addons as tfa
    opt = tfa.optimizers.AdamW(weight_decay=1e-4, learning_rate=1e-3)
    from optcompat.tfa.optimizers import SGDW      # from tensorflow_addons.optimizers import SGDW

The classes are resolved on first use (no framework imported before); TFA's other optimizers
(`RectifiedAdam`, `LazyAdam`, ...) are refused with a message saying they are not part of it.
"""

from ... import _faces
from .. import _PROVIDES
from .. import DecoupledWeightDecayExtension
from .. import extend_with_decoupled_weight_decay

__all__ = [
    "AdamW",
    "SGDW",
    "extend_with_decoupled_weight_decay",
    "DecoupledWeightDecayExtension",
]  # noqa: F822

_faces.install(
    globals(),
    _PROVIDES,
    ("AdamW", "SGDW"),
    _faces.attribute_of(__name__.rpartition(".")[0]),
)

from . import weight_decay_optimizers  # noqa: E402,F401  (TFA's module of these classes)
