"""What an optimizer object is, for :mod:`optcompat.state`: its family, kind, slots,
convention and hyperparameters -- optcompat's own and the host's and peers' alike.

The family's private APIs stay in its adapter: each adapter module has a ``STATE``, an
:class:`Access` subclass that finds a variable's slots and builds them the family's way
(Keras 3 ``_get_variable_index``, Keras 2 ``_index_dict``, OptimizerV2 ``get_slot``).  This
module holds what they share and tells which family an optimizer belongs to, from the
family's base class (:func:`.._detect.host_modules`), importing no host that is not
already imported.
"""

import importlib
import sys

import numpy as np

from .. import _detect
from .. import _optimizers
from . import _format
from ._format import StateError

# the attribute holding each slot's list in Keras 2 and 3: optcompat's declarations name the
# host's own Adam / SGD's (per variable, in the optimizer's order)
SLOT_LISTS = dict(
    _optimizers.AdamWSpec.SLOT_ATTRIBUTES, **_optimizers.SGDWSpec.SLOT_ATTRIBUTES
)

# hyperparameters recorded (and compared when loading), as get_config gives them
HYPERPARAMETERS = (
    "learning_rate",
    "weight_decay",
    "beta_1",
    "beta_2",
    "epsilon",
    "amsgrad",
    "momentum",
    "nesterov",
)

# peers users migrate from: module prefix -> the convention that reproduces them
PEERS = {"tensorflow_addons": "tfa", "keras_adamw": "keras-adamw"}

# a host's class names per state kind (the family's optimizers namespace, and its
# `experimental` one: TF 2.11's AdamW lives there)
KIND_CLASSES = {"adam": ("Adam", "AdamW"), "sgd": ("SGD",)}


class Access(object):
    """How :mod:`optcompat.state` reads and writes one family's optimizers (the defaults
    hold for TensorFlow variables; adapters override what differs)."""

    family = None

    def slots(self, optimizer, variables, keys):
        """Per variable, ``{key: slot variable}``; None where no slot exists yet (Keras 2 /
        3: :meth:`listed_slots`)."""
        if not keys:
            return [{} for _ in variables]
        return self.listed_slots(optimizer, variables, keys)

    def build(self, optimizer, variables):
        """Create the optimizer's slots for ``variables`` (nothing if they exist)."""
        raise NotImplementedError

    def numpy(self, value):
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)

    def name(self, variable):
        return variable.name

    def shape(self, variable):
        return tuple(int(d) for d in variable.shape)

    def dtype(self, variable):
        return np.dtype(getattr(variable.dtype, "as_numpy_dtype", variable.dtype)).name

    def assign(self, variable, value):
        variable.assign(value)

    def iterations(self, optimizer):
        return int(self.numpy(optimizer.iterations))

    def set_iterations(self, optimizer, value):
        optimizer.iterations.assign(value)

    def set_hyperparameter(self, optimizer, name, value):
        setattr(optimizer, name, value)

    def index_of(self, optimizer, variable):
        raise NotImplementedError

    def leaves(self, variables):
        """The variables as a list, in order (optax: a params pytree's leaves)."""
        return list(variables)

    def check(self, optimizer, variables):
        """Raise StateError where ``variables`` cannot be this optimizer's (before
        anything changes)."""

    def variable_rates(self, optimizer, variables):
        """Per variable, its own weight decay rate where the optimizer's differ, else None."""
        return None

    def decayed(self, optimizer, variables):
        """Per variable, whether the optimizer decays it (given a rate): optcompat's own
        ``exclude_from_weight_decay``; None where it cannot tell (the host's own optimizers)."""
        from .._common import Decoupled

        if isinstance(optimizer, Decoupled):
            return [bool(optimizer._decays(v)) for v in variables]
        return None

    def write(self, optimizer, variables, state, info, hyperparameters):
        """Set ``optimizer``'s state from ``state`` (every check has passed): slots, step
        count, the float ``hyperparameters`` ({name: value}) that differ.  Returns None (the
        optimizer changed in place); a functional library (optax) returns its new state."""
        self.build(optimizer, variables)
        for slots, saved in zip(
            self.slots(optimizer, variables, info["slots"]), state.slots
        ):
            for key, slot in slots.items():
                self.assign(slot, saved[key])
        self.set_iterations(optimizer, state.iterations)
        for name, value in hyperparameters.items():
            self.set_hyperparameter(optimizer, name, value)
        return None

    def listed_slots(self, optimizer, variables, keys):
        """Keras 2 / 3: the slot lists (``SLOT_LISTS``) at each variable's index."""
        lists = {k: getattr(optimizer, SLOT_LISTS[k], None) for k in keys}
        if any(not isinstance(v, (list, tuple)) or not v for v in lists.values()):
            return None  # not built
        out = []
        for variable in variables:
            try:
                i = self.index_of(optimizer, variable)
            except (KeyError, AttributeError):
                raise StateError(
                    "Variable %s is not one of %s's variables (the optimizer was built for "
                    "others)." % (self.name(variable), type(optimizer).__name__)
                )
            out.append({k: lists[k][i] for k in keys})
        return out


def versions():
    found = {k: v for k, v in _detect.versions().items() if v}
    found["python"] = "%d.%d.%d" % sys.version_info[:3]
    if _detect.installed("optax"):
        found["optax"] = _detect.installed("optax")
    return found


def family_of(optimizer):
    """``(family, optimizers namespace)`` of ``optimizer``, from the base classes of the
    families whose host is imported."""
    found = _detect.family_of_class(type(optimizer))
    if found is not None:
        return found[0], _detect.load(found[1].rsplit(".", 1)[0])
    raise StateError(
        "%s is not an optimizer of an installed Keras family (%s)."
        % (type(optimizer).__name__, ", ".join(_detect.available_families()) or "none")
    )


def access(family):
    return importlib.import_module("..%s" % family, __package__).STATE


def _kind_by_class(optimizer, namespace):
    module = type(optimizer).__module__ or ""
    if module.split(".")[0] == "keras_adamw":  # its own OptimizerV2 subclasses
        return {"AdamW": "adam", "SGDW": "sgd"}.get(type(optimizer).__name__)
    spaces = [namespace, getattr(namespace, "experimental", None)]
    for kind, names in KIND_CLASSES.items():
        classes = tuple(
            c
            for ns in spaces
            if ns is not None
            for c in (getattr(ns, n, None) for n in names)
            if isinstance(c, type)
        )
        if classes and isinstance(optimizer, classes):
            return kind
    return None


def _json(value):
    """A JSON-able copy of a config value (NumPy scalars as Python numbers)."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def describe(optimizer):
    """``(access, info)``: the family's :class:`Access`, and ``info`` with ``kind``
    ("adam" / "sgd"), ``slots`` (the keys it uses), ``convention``, ``hyperparameters``
    and ``optimizer`` (its class's path).  Raises StateError for another optimizer."""
    from .._common import Decoupled

    foreign = _detect.foreign_optimizer(optimizer)
    if foreign is not None:  # torch.optim's, an optax state: their own module
        return importlib.import_module("._%s" % foreign, __package__).describe(
            optimizer
        )
    family, namespace = family_of(optimizer)
    cls = type(optimizer)
    path = "%s.%s" % (cls.__module__, cls.__qualname__)
    try:
        config = optimizer.get_config()
    except Exception:
        config = {}
    hypers = {k: _json(config[k]) for k in HYPERPARAMETERS if k in config}
    if isinstance(optimizer, Decoupled):
        kind = {"adamw": "adam", "sgdw": "sgd"}[optimizer.kind]
        slots = [k for k in optimizer.SLOTS if optimizer._has_slot(k)]
        convention = optimizer.convention
    else:
        kind = _kind_by_class(optimizer, namespace)
        if kind is None:
            raise StateError(
                "optcompat.state reads Adam-kind (Adam, AdamW) and SGD-kind (SGD, "
                "SGDW) optimizers; %s keeps other state." % path
            )
        if kind == "adam":
            slots = ["m", "v"] + (["vhat"] if config.get("amsgrad") else [])
        else:
            slots = ["momentum"] if float(config.get("momentum") or 0.0) > 0.0 else []
        convention = PEERS.get(cls.__module__.split(".")[0], "keras")
    return access(family), _format.described(
        kind, path, family, convention, hypers, slots
    )
