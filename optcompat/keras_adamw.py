"""keras-adamw's API (``keras_adamw``), with one changed import, on every release.

    # from keras_adamw import AdamW, SGDW, get_weight_decays
    from optcompat.keras_adamw import AdamW, SGDW, get_weight_decays

    opt = AdamW(lr=1e-3, model=model, use_cosine_annealing=True, total_iterations=24,
                lr_multipliers={"lstm": 0.5})
    K.set_value(opt.t_cur, 0)            # keras-adamw's attributes: t_cur, eta_t

Names and arguments only: ``AdamW`` / ``SGDW`` are optcompat's classes with keras-adamw's
signatures, defaults and attributes and ``convention="keras-adamw"``: ``model`` (decays read from
its L1 / L2 regularizers, which are zeroed: ``zero_penalties``), ``weight_decays`` (scaled by
``sqrt(1 / total_iterations_wd)``), ``lr_multipliers``, ``use_cosine_annealing`` with
``total_iterations``, ``eta_min``, ``eta_max``, ``t_cur`` and ``autorestart``, ``init_verbose``,
``lr``; the variables ``t_cur`` and ``eta_t``, advanced after each step as keras-adamw does
(:mod:`._keras_adamw`).  The helpers its README has users call: :func:`get_weight_decays`,
:func:`fill_dict_in_order`, :func:`reset_seeds`, :func:`K_eval`.

The family: OptimizerV2 (``optcompat.legacy``, keras-adamw's own ``TF_KERAS=1`` base) where the
user's Keras has it, else the default family (Keras 3 on every backend); :func:`for_family`
gives another family's classes.  Where it differs from keras-adamw: the docs' deviations table.
"""
import random
import sys
import types

from . import _keras_adamw

__all__ = ["AdamW", "NadamW", "SGDW", "get_weight_decays", "fill_dict_in_order", "reset_seeds", "K_eval",  # noqa: F822
           "for_family", "default_family"]  # (AdamW, NadamW, SGDW: resolved on first use)

default_family = _keras_adamw.default_family


def for_family(family=None):
    """keras-adamw's ``AdamW``, ``NadamW`` and ``SGDW`` on ``family`` (default: :func:`default_family`), as a
    namespace."""
    return types.SimpleNamespace(**_keras_adamw.classes(family or default_family()))


def get_weight_decays(model, zero_penalties=False):
    """keras-adamw's ``get_weight_decays``: ``{variable name: (l1, l2)}`` of ``model``'s nonzero
    L1 / L2 regularizers.  With ``zero_penalties`` keras-adamw 1.38 zeroes them before reading,
    so it returns ``{}``; so does this, with a warning naming what was zeroed
    (:func:`optcompat.weight_decays_from` reads, then zeroes)."""
    return _keras_adamw.read_weight_decays(model, zero_penalties, "get_weight_decays(model, zero_penalties=True)")


def fill_dict_in_order(_dict, values_list):
    """keras-adamw's ``fill_dict_in_order``: ``_dict``'s values replaced by ``values_list``, in the
    dict's order (e.g. decays for the names :func:`get_weight_decays` gave); returns ``_dict``."""
    values_list = list(values_list)
    if len(values_list) < len(_dict):
        raise ValueError("fill_dict_in_order() needs a value for each of the %d keys; received %d values."
                         % (len(_dict), len(values_list)))
    for key, value in zip(list(_dict), values_list):
        _dict[key] = value
    return _dict


def reset_seeds(reset_graph_with_backend=None, verbose=1):
    """keras-adamw's ``reset_seeds``: NumPy's, Python's and the framework's seeds (1, 2, 3); with a
    Keras backend module (``K``), its session cleared first (and TensorFlow's default graph)."""
    import numpy as np

    if reset_graph_with_backend is not None:
        reset_graph_with_backend.clear_session()
        tf = sys.modules.get("tensorflow")
        reset = getattr(getattr(getattr(tf, "compat", None), "v1", None), "reset_default_graph", None)
        if reset is not None and not tf.executing_eagerly():
            reset()
        if verbose:
            print("KERAS AND TENSORFLOW GRAPHS RESET")
    np.random.seed(1)
    random.seed(2)
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):
        tf.random.set_seed(3)
    keras = sys.modules.get("keras")
    set_seed = getattr(getattr(keras, "utils", None), "set_random_seed", None)
    if set_seed is not None and getattr(keras, "__version__", "2").split(".")[0] >= "3":
        set_seed(3)  # Keras 3's backends' seeds too (and NumPy's, Python's: set again below)
        np.random.seed(1)
        random.seed(2)
    if verbose:
        print("RANDOM SEEDS RESET")


def K_eval(x, backend):
    """keras-adamw's ``K_eval``: ``x`` (a variable or tensor) as a NumPy value through the Keras
    backend module ``backend`` (Keras 3: ``keras.ops``' conversion)."""
    convert = getattr(getattr(sys.modules.get("keras"), "ops", None), "convert_to_numpy", None)
    get_value = getattr(backend, "get_value", None)
    if get_value is not None:
        try:
            return get_value(x)
        except Exception:
            pass
    if convert is not None:
        return convert(x)
    return backend.eval(x)


def __getattr__(name):  # PEP 562: the default family's class, resolved on first use
    if name not in ("AdamW", "NadamW", "SGDW"):
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value = getattr(for_family(), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
