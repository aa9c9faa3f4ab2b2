"""keras-adamw's API (`keras_adamw`), with one changed import, on every release.

Names and arguments only: `AdamW` / `SGDW` / `NadamW` are optcompat's classes with
keras-adamw 1.38's signatures, defaults and attributes and `convention="keras-adamw"`:
`model` (decays read from its L1 / L2 regularizers, which are zeroed: `zero_penalties`),
`weight_decays` (scaled by $\\sqrt{1 / \\mathrm{total\\_iterations\\_wd}}$), `lr_multipliers`,
`use_cosine_annealing` with `total_iterations`, `eta_min`, `eta_max`, `t_cur` and
`autorestart`, `init_verbose`, `lr`; the variables `t_cur` and `eta_t`, advanced after each
step as keras-adamw does.  The helpers its README and `example.py` have users call, here and
in `optcompat.keras_adamw.utils` (keras-adamw's module of them): `get_weight_decays`,
`fill_dict_in_order`, `reset_seeds`, `K_eval`.  keras-adamw's modules of the classes are
there too: `optcompat.keras_adamw.optimizers` and `optimizers_v2` (keras-adamw chose one by
the Keras imported; these give the classes of the user's Keras, as `optcompat.keras_adamw`
does); the rest of keras-adamw is refused with a message saying so.

The family: OptimizerV2 (`optcompat.legacy`, keras-adamw's own `TF_KERAS=1` base) where the
user's Keras has it, else the default family (Keras 3 on every backend); `for_family` gives
another family's classes.  Where it differs from keras-adamw: the support page's deviations
table.

Example:
    ```python
    from optcompat.keras_adamw import AdamW          # was: from keras_adamw import AdamW
    from optcompat.keras_adamw.utils import K_eval   # was: from keras_adamw.utils import K_eval

    opt = AdamW(lr=1e-3, use_cosine_annealing=True, total_iterations=24,
                lr_multipliers={"dense": 0.5}, init_verbose=False)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    ```
"""

import types

from .. import _faces
from .. import _keras_adamw
from .. import _when_ready
from .utils import K_eval
from .utils import fill_dict_in_order
from .utils import get_weight_decays
from .utils import reset_seeds

# (AdamW, NadamW, SGDW: resolved on first use)
__all__ = ["AdamW", "NadamW", "SGDW", "get_weight_decays", "fill_dict_in_order"]
__all__ += ["reset_seeds", "K_eval", "for_family", "default_family"]  # noqa: F822

default_family = _keras_adamw.default_family
"""`default_family()`: this module's classes' family for the user's Keras -- `"legacy"`
(OptimizerV2, keras-adamw's own `TF_KERAS=1` base) where the user's Keras has it, else the
default family."""


def for_family(family=None):
    """keras-adamw's classes on one family.

    Args:
        family: `"keras3"`, `"keras2"` or `"legacy"`; None: `default_family()`.

    Returns:
        A namespace with `AdamW`, `NadamW` and `SGDW`.
    """
    return types.SimpleNamespace(**_keras_adamw.classes(family or default_family()))


def _register(family):
    """On `import optcompat.keras_adamw` alone: the default family's classes registered as soon
    as its host is imported, and keras-adamw's own names for them where its files load
    (`_keras_adamw.register_peer_names`)."""
    if family == default_family():
        for_family(family)
    _keras_adamw.register_peer_names(family)


_when_ready(_register)

# what a name of keras-adamw that optcompat does not provide is answered with
_PROVIDES = (
    "%s provides keras-adamw's AdamW, NadamW and SGDW (also from its modules optimizers and "
    "optimizers_v2) and the helpers of keras_adamw.utils: get_weight_decays, fill_dict_in_order, "
    "reset_seeds, K_eval; the rest of keras-adamw is not part of optcompat" % __name__
)
_faces.install(
    globals(),
    _PROVIDES,
    ("AdamW", "NadamW", "SGDW"),
    lambda name: getattr(for_family(), name),
)

# keras-adamw's paths; names defined above
from . import optimizers  # noqa: E402,F401
from . import optimizers_v2  # noqa: E402,F401
from . import utils  # noqa: E402,F401
