"""TensorFlow Addons' `tfa.optimizers.weight_decay_optimizers`, the module TFA defines its
decoupled weight decay in: the same names as `optcompat.tfa.optimizers`."""

from ... import _faces
from .. import _PROVIDES
from .. import DecoupledWeightDecayExtension
from .. import extend_with_decoupled_weight_decay

__all__ = [
    "AdamW",  # noqa: F822 (made by _faces.install below)
    "SGDW",  # noqa: F822
    "extend_with_decoupled_weight_decay",
    "DecoupledWeightDecayExtension",
]

_faces.install(
    globals(), _PROVIDES, ("AdamW", "SGDW"), _faces.attribute_of(__package__)
)
