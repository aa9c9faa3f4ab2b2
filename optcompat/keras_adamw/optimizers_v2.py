"""keras-adamw's `keras_adamw.optimizers_v2` (its classes for `tf.keras`, `TF_KERAS=1`):
the same classes as `optcompat.keras_adamw.optimizers`, those of the user's Keras."""

from .. import _faces
from . import _PROVIDES

__all__ = ["AdamW", "NadamW", "SGDW"]  # noqa: F822  (resolved on first use)

_faces.install(globals(), _PROVIDES, __all__, _faces.attribute_of(__package__))
