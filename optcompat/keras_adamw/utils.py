"""keras-adamw's `keras_adamw.utils`: the helpers its README and `example.py` have users call
(`from keras_adamw.utils import K_eval` -> `from optcompat.keras_adamw.utils import K_eval`).

Framework-free until called; keras-adamw's private helpers (the optimizers' internals) are not
part of optcompat: a name of them is refused with a message saying so."""

import random
import sys

from .. import _detect
from .. import _faces
from .. import _keras_adamw

__all__ = ["get_weight_decays", "fill_dict_in_order", "reset_seeds", "K_eval"]


def get_weight_decays(model, zero_penalties=False):
    """keras-adamw's `get_weight_decays`: the model's L1 / L2 penalties by variable.

    Args:
        model: a Keras model.
        zero_penalties: zero the regularizers first, as keras-adamw 1.38 does (so it returns
            `{}`, with a warning naming what was zeroed; `optcompat.weight_decays_from` reads,
            then zeroes).

    Returns:
        `{variable name: (l1, l2)}` of `model`'s nonzero L1 / L2 regularizers.
    """
    return _keras_adamw.read_weight_decays(
        model, zero_penalties, "get_weight_decays(model, zero_penalties=True)"
    )


def fill_dict_in_order(_dict, values_list):
    """keras-adamw's `fill_dict_in_order`: a dict's values replaced, in the dict's order.

    Args:
        _dict: the dict (keras-adamw's parameter name), e.g. what `get_weight_decays` gave.
        values_list: its new values, in order.

    Returns:
        `_dict`, changed in place.

    Raises:
        ValueError: fewer values than keys.
    """
    values_list = list(values_list)
    if len(values_list) < len(_dict):
        raise ValueError(
            "fill_dict_in_order() needs a value for each of the %d keys; received %d values."
            % (len(_dict), len(values_list))
        )
    for key, value in zip(list(_dict), values_list):
        _dict[key] = value
    return _dict


def reset_seeds(reset_graph_with_backend=None, verbose=1):
    """keras-adamw's `reset_seeds`: NumPy's, Python's and the framework's seeds (1, 2, 3).

    Args:
        reset_graph_with_backend: a Keras backend module (`K`) whose session is cleared first
            (and TensorFlow's default graph); None: no clearing.
        verbose: print what was reset.
    """
    import numpy as np

    if reset_graph_with_backend is not None:
        reset_graph_with_backend.clear_session()
        tf = sys.modules.get("tensorflow")
        reset = getattr(
            getattr(getattr(tf, "compat", None), "v1", None),
            "reset_default_graph",
            None,
        )
        if reset is not None and not tf.executing_eagerly():
            reset()
        if verbose:
            print("KERAS AND TENSORFLOW GRAPHS RESET")
    np.random.seed(1)
    random.seed(2)
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):
        # TF 2's name; TF 1.15's is tf.compat.v1.set_random_seed (its tf.random has no set_seed)
        set_tf_seed = (
            getattr(tf.random, "set_seed", None) or tf.compat.v1.set_random_seed
        )
        set_tf_seed(3)
    keras = sys.modules.get("keras")
    set_seed = getattr(getattr(keras, "utils", None), "set_random_seed", None)
    # the imported keras is Keras 3
    if set_seed is not None and "keras3" in _detect.host_modules():
        # Keras 3's backends' seeds too (and NumPy's, Python's: set again below)
        set_seed(3)
        np.random.seed(1)
        random.seed(2)
    if verbose:
        print("RANDOM SEEDS RESET")


def K_eval(x, backend):
    """keras-adamw's `K_eval`: a variable's or tensor's value.

    Args:
        x: a variable or tensor.
        backend: the Keras backend module (`K`).

    Returns:
        `x` as a NumPy value (Keras 3: through `keras.ops`' conversion).
    """
    convert = getattr(
        getattr(sys.modules.get("keras"), "ops", None), "convert_to_numpy", None
    )
    get_value = getattr(backend, "get_value", None)
    if get_value is not None:
        try:
            return get_value(x)
        except Exception:
            pass
    if convert is not None:
        return convert(x)
    return backend.eval(x)


_faces.install(
    globals(),
    "%s has keras-adamw's public helpers only (%s); the rest of keras-adamw is not "
    "part of optcompat" % (__name__, ", ".join(__all__)),
)
