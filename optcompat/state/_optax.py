"""optax's ``adamw`` / ``adam`` / ``sgd`` state, for :mod:`optcompat.state`.

optax is functional: its state is what ``tx.init(params)`` returns, a tuple of NamedTuples
(a ``chain``'s one per transformation), and an update returns a new one.  So ``save`` reads a
state, and ``load`` returns a new state of the same structure -- the same classes, dtypes and
devices -- holding the file's moments and step count; the state passed in is left as it was.

==================  ===========================================================
file                optax
==================  ===========================================================
``m``, ``v``        ``ScaleByAdamState.mu``, ``.nu`` (``adam``, ``adamw``)
``momentum``        ``TraceState.trace`` (``sgd(momentum=...)``, ``trace``)
step count          ``count`` (``ScaleByAdamState``; ``inject_hyperparams``' own)
==================  ===========================================================

``optax.amsgrad`` is refused: its ``nu_max`` is the running maximum of the bias-corrected
second moment, ``max(nu_max, nu / (1 - b2^t))``, where torch's and Keras's AMSGrad keep the
maximum of the raw one and correct that -- another rule, whose state does not carry over.

The state is found wherever it sits in the tuple: under ``chain`` (``optax.adamw`` is
``chain(scale_by_adam, add_decayed_weights, scale_by_learning_rate)``), ``masked`` and
``inject_hyperparams`` (whose ``count`` is also set, and whose ``learning_rate`` /
``weight_decay`` are the file's hyperparameters).  A state holding two of them (two Adams) is
refused.  The variables are the params pytree's leaves in ``jax.tree`` order; optax's ``sgd``
keeps no step count (the file records 0, as for torch's SGD).  The file records
``convention="optax"``.
"""

import numpy as np

from . import _format
from ._access import Access
from ._format import StateError

# file slot -> the optax state field
FIELDS = {"m": "mu", "v": "nu", "vhat": "nu_max", "momentum": "trace"}
# inject_hyperparams' names -> the file's
HYPERS = {
    "learning_rate": "learning_rate",
    "weight_decay": "weight_decay",
    "b1": "beta_1",
    "b2": "beta_2",
    "eps": "epsilon",
    "momentum": "momentum",
    "nesterov": "nesterov",
}


def _fields(node):
    return getattr(type(node), "_fields", None) if isinstance(node, tuple) else None


def _is_moments(fields):
    return fields is not None and {"count", "mu", "nu"} <= set(fields)


def _is_trace(fields):
    return fields is not None and tuple(fields) == ("trace",)


def _is_inject(fields):
    return fields is not None and {"count", "hyperparams"} <= set(fields)


def _find(node, found):
    fields = _fields(node)
    if _is_moments(fields) or _is_trace(fields):
        found["slots"].append(node)
        return found
    if _is_inject(fields):
        found["inject"].append(node)
    if isinstance(node, tuple):
        for child in node:
            _find(child, found)
    return found


def _scalar(value):
    array = np.asarray(value)
    if array.ndim != 0:
        return None
    return bool(array) if array.dtype == np.bool_ else float(array)


def describe(opt_state):
    """``(access, info)`` for an optax state (see :func:`._access.describe`)."""
    found = _find(opt_state, {"slots": [], "inject": []})
    if len(found["slots"]) > 1:
        raise StateError(
            "The optax state holds %d optimizer states (%s): optcompat.state moves one "
            "Adam's or one SGD's."
            % (len(found["slots"]), ", ".join(type(n).__name__ for n in found["slots"]))
        )
    node = found["slots"][0] if found["slots"] else None
    fields = _fields(node) or ()
    if _is_moments(fields) and "nu_max" in fields:
        raise StateError(
            "optax.amsgrad's nu_max is the running maximum of the bias-corrected "
            "second moment (max(nu_max, nu / (1 - b2^t))); torch's and Keras's AMSGrad "
            "keep the maximum of the raw one (max(vhat, v)), then correct it: another "
            "rule, whose state does not carry over."
        )
    if _is_moments(fields):
        kind, slots = "adam", ["m", "v"]
    else:
        kind, slots = "sgd", (["momentum"] if node is not None else [])
    hypers = {}
    if kind == "adam":
        hypers["amsgrad"] = False
    for inject in found["inject"][:1]:
        for name, value in dict(inject.hyperparams).items():
            if name in HYPERS and _scalar(value) is not None:
                hypers[HYPERS[name]] = _scalar(value)
    classes = [type(n).__name__ for n in (found["inject"][:1] + found["slots"])] or [
        type(opt_state).__name__
    ]
    path = "optax (%s)" % ", ".join(classes)
    info = _format.described(kind, path, "optax", "optax", hypers, slots)
    return STATE, dict(info, node=node, inject=found["inject"])


class _OptaxAccess(Access):
    family = "optax"
    functional = True

    def leaves(self, variables):
        import jax

        return jax.tree_util.tree_leaves(variables)

    def _node(self, opt_state):
        return describe(opt_state)[1]["node"]

    def slots(self, opt_state, variables, keys):
        import jax

        node = self._node(opt_state)
        columns = {}
        for key in keys:
            leaves = jax.tree_util.tree_leaves(getattr(node, FIELDS[key]))
            if len(leaves) != len(variables):
                raise StateError(
                    "The optax state's %s holds %d arrays, but the params have %d leaves: pass the "
                    "params the state was initialized with (tx.init(params))."
                    % (FIELDS[key], len(leaves), len(variables))
                )
            columns[key] = leaves
        return [{k: columns[k][i] for k in keys} for i in range(len(variables))]

    def check(self, opt_state, variables):
        self.slots(opt_state, variables, describe(opt_state)[1]["slots"])

    def iterations(self, opt_state):
        info = describe(opt_state)[1]
        if _fields(info["node"]) and "count" in _fields(info["node"]):
            return int(np.asarray(info["node"].count))
        if info["inject"]:
            return int(np.asarray(info["inject"][0].count))
        return 0  # sgd keeps no count

    def numpy(self, value):
        return np.asarray(value)

    def name(self, variable):
        return None  # a pytree leaf: matched by order, shape and dtype

    def shape(self, variable):
        return tuple(int(d) for d in np.shape(variable))

    def dtype(self, variable):
        return np.dtype(variable.dtype).name

    def assign(self, variable, value):
        raise TypeError(
            "optax's params and state are immutable: load returns the new state."
        )

    def write(self, opt_state, variables, state, info, hyperparameters):
        """The new optax state: ``opt_state``'s structure with the file's slots, step count and
        (where ``inject_hyperparams`` holds them) ``hyperparameters``."""
        import jax

        def column(field, key):
            tree = getattr(info["node"], field)
            old = jax.tree_util.tree_leaves(tree)
            new = [_like(o, s[key]) for o, s in zip(old, state.slots)]
            return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree), new)

        def rebuild(node):
            if node is info["node"]:
                changes = {FIELDS[k]: column(FIELDS[k], k) for k in info["slots"]}
                if "count" in _fields(node):
                    changes["count"] = _like(node.count, state.iterations)
                return node._replace(**changes)
            fields = _fields(node)
            if _is_inject(fields):
                hypers = dict(node.hyperparams)
                for name, value in hyperparameters.items():
                    if name in hypers and _scalar(hypers[name]) is not None:
                        hypers[name] = _like(hypers[name], value)
                rest = {
                    f: rebuild(getattr(node, f))
                    for f in fields
                    if f not in ("count", "hyperparams")
                }
                return node._replace(
                    count=_like(node.count, state.iterations),
                    hyperparams=hypers,
                    **rest,
                )
            if fields is not None:
                return type(node)(*[rebuild(c) for c in node])
            if isinstance(node, tuple):
                return tuple(rebuild(c) for c in node)
            return node

        return rebuild(opt_state)


STATE = _OptaxAccess()


def _like(old, value):
    """``value`` as an array like ``old``: its dtype, on its devices (sharding)."""
    import jax

    array = np.asarray(value).astype(np.dtype(old.dtype))
    sharding = getattr(old, "sharding", None)
    if sharding is not None:
        return jax.device_put(array, sharding)
    return jax.numpy.asarray(array)
