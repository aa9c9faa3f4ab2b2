"""Learning-rate schedules with the same numbers on every TensorFlow / Keras release.

`CosineDecay` (Keras 3's, warm-up included), `CosineDecayRestarts` (SGDR, Keras's
semantics), `WarmUp` (linear warm-up in front of any schedule) and `CosineAnnealing`
(keras-adamw's annealing with autorestart).  Each is a `LearningRateSchedule` of the user's
default Keras (as `optcompat.AdamW` is its optimizer), so the host's own optimizers take it
too, and it is saved and loaded with the model; an optcompat optimizer of another family
(`optcompat.legacy.AdamW` next to Keras 3) takes it as well, made again for its own Keras.
`for_family` gives one family's classes.

Example:
    ```python
    from optcompat import AdamW
    from optcompat.schedules import CosineDecayRestarts

    opt = AdamW(learning_rate=CosineDecayRestarts(1e-3, first_decay_steps=1000))
    ```
"""

import types

from . import _lazy
from . import _schedules
from . import family_module

__all__ = list(_schedules.NAMES) + ["for_family"]


def for_family(family=None):
    """The schedule classes of one family.

    Args:
        family: `"keras3"`, `"keras2"` or `"legacy"`; None: the user's default family.

    Returns:
        A namespace with `CosineDecay`, `CosineDecayRestarts`, `WarmUp` and `CosineAnnealing`.

    Raises:
        ValueError: `family` is none of the families.
        ImportError: the family's host is not installed.

    Example:
        ```python
        from optcompat.schedules import for_family

        # the default family's, as optcompat.schedules.CosineDecay
        CosineDecay = for_family().CosineDecay
        ```
    """
    return types.SimpleNamespace(**family_module(family).SCHEDULES)


def __getattr__(name):  # PEP 562: the default family's class, resolved on first use
    if name not in _schedules.NAMES:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value = family_module().SCHEDULES[name]
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


_lazy.enable(__name__)
