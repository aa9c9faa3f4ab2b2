"""keras-adamw's `keras_adamw.optimizers` (its classes for `keras`): `AdamW`, `NadamW` and
`SGDW` of `optcompat.keras_adamw` -- the classes of the user's Keras, whichever it is
(keras-adamw picked this module or `optimizers_v2` by the Keras imported)."""

from .. import _faces
from . import _PROVIDES

__all__ = ["AdamW", "NadamW", "SGDW"]  # noqa: F822  (resolved on first use)

_faces.install(globals(), _PROVIDES, __all__, _faces.attribute_of(__package__))
