"""Reading optimizer state from a file the host wrote: a TF checkpoint (``tf.train.Checkpoint``
or ``model.save_weights`` in TF format), from any family.

A TF checkpoint names what it holds through its object graph (``_CHECKPOINTABLE_OBJECT_GRAPH``):
the optimizer is the child ``optimizer`` of the saved root, and

* OptimizerV2 (TF 1.15-2.15, tf_keras legacy; TensorFlow Addons', keras-adamw's) registers
  each slot as a *slot variable* of its model variable, by name (``m``, ``v``, ``vhat``,
  ``momentum``), and its step as the child ``iter``;
* Keras 2 (TF 2.9+) and Keras 3 (tensorflow backend) keep slot lists as attributes
  (``_momentums``, ``_velocities``, ``_velocity_hats``, SGD's ``momentums``: entry ``i``
  belongs to the ``i``-th variable the optimizer was built with) and the step as
  ``_iterations`` / ``iteration``.

The model variables are the ones the slots belong to, in the order a depth-first walk of
the saved model meets them (the order of ``model.trainable_variables`` for Sequential and
functional models), named by their ``full_name`` (``dense/kernel``).  A checkpoint does not
record the optimizer's class, so the state's convention is unknown (None): ``load`` takes it
as the target's.  Reading a checkpoint needs TensorFlow (any release); convert it where
TensorFlow is installed (``python -m optcompat.state convert CKPT run.npz``) to load it where
it is not.
"""

import os

import numpy as np

from . import _format
from ._access import SLOT_LISTS
from ._format import KINDS
from ._format import StateError

_VALUE = "VARIABLE_VALUE"
_LISTS = {
    attribute: key for key, attribute in SLOT_LISTS.items()
}  # attribute -> slot key
_STEP = ("iter", "_iterations", "iteration", "iterations")
_HYPERS = (
    "learning_rate",
    "weight_decay",
    "beta_1",
    "beta_2",
    "epsilon",
    "momentum",
    "decay",
)


def _is_checkpoint(path):
    path = str(path)
    return (
        os.path.isdir(path)
        or os.path.exists(path + ".index")
        or path.endswith(".index")
    )


def read(path, optimizer=None, variables=None):
    """``(header, slots, values)`` of the optimizer state in a host's file: a TF checkpoint,
    a ``.keras`` file, a ``.h5`` model or a ``.weights.h5`` (:mod:`._positional`)."""
    if not os.path.exists(str(path)) and not _is_checkpoint(path):
        raise FileNotFoundError("No such file or checkpoint: %r" % (path,))
    if _is_checkpoint(path):
        return _checkpoint(
            str(path)[: -len(".index")] if str(path).endswith(".index") else str(path),
            optimizer,
        )
    from . import _positional
    from . import _torch

    if _torch.is_torch_file(path):
        return _torch.read(path)
    if _positional.knows(str(path)):
        return _positional.read(str(path), optimizer, variables)
    raise StateError(
        "%s is not an optcompat state file (.npz), a TF checkpoint, a .keras file, an HDF5 "
        "(.h5) file nor a torch.save file: no reader knows it." % (path,)
    )


def _checkpoint(path, optimizer):
    try:
        import tensorflow as tf
        from tensorflow.core.protobuf import trackable_object_graph_pb2
    except ImportError:
        raise StateError(
            "%s is a TF checkpoint: reading it needs TensorFlow. Convert it where TensorFlow is "
            "installed: python -m optcompat.state convert %s state.npz" % (path, path)
        )
    try:
        reader = tf.train.load_checkpoint(path)
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except Exception as e:
        raise StateError(
            "%s cannot be read as a TF checkpoint (%s: %s)."
            % (path, type(e).__name__, str(e).splitlines()[0][:200])
        )
    nodes = graph.nodes

    def value(node_id):
        for attribute in nodes[node_id].attributes:
            if attribute.name == _VALUE:
                return np.asarray(reader.get_tensor(attribute.checkpoint_key))
        return None

    def full_name(node_id):
        for attribute in nodes[node_id].attributes:
            if attribute.name == _VALUE:
                return attribute.full_name or None
        return None

    def children(node_id):
        return {c.local_name: c.node_id for c in nodes[node_id].children}

    opt_id = _find_optimizer(nodes)
    if opt_id is None:
        raise StateError(
            "%s holds no optimizer (no child 'optimizer' in its object graph): it was saved "
            "without one." % path
        )
    own = children(opt_id)
    step = next((own[k] for k in _STEP if k in own), None)
    iterations = int(value(step)) if step is not None else 0
    hypers = {}
    for name in _HYPERS:
        for key in (name, "_" + name):
            if key in own and value(own[key]) is not None and value(own[key]).ndim == 0:
                hypers[name] = float(value(own[key]))
                break

    order = _model_variable_order(nodes, opt_id)
    by_original = {}
    for slot in nodes[opt_id].slot_variables:  # OptimizerV2
        by_original.setdefault(slot.original_variable_node_id, {})[slot.slot_name] = (
            slot.slot_variable_node_id
        )
    if by_original:
        originals = [n for n in order if n in by_original]
        slots = [{k: value(s) for k, s in by_original[n].items()} for n in originals]
        names = sorted(by_original[originals[0]]) if originals else []
        family = "legacy"
    elif not any(k in own and children(own[k]) for k in _LISTS) and "_variables" in own:
        # Keras 3.3 on tensorflow (its slot lists are not tracked), TF 2.9/2.10's SGD
        # without momentum (no lists at all): the optimizer's variable list, in the file
        # layout (:mod:`._positional`), and the variables it was built for
        slots, originals, names = _variable_list(own, children, value, optimizer, path)
        family = _KERAS_2_OR_3
    else:  # Keras 2 / 3: slot lists by position
        lists = {
            _LISTS[k]: children(own[k]) for k in _LISTS if k in own and children(own[k])
        }
        count = max([len(v) for v in lists.values()] or [0])
        slots = [{k: value(lists[k][str(i)]) for k in lists} for i in range(count)]
        originals = _follow(
            order, [next(iter(s.values())).shape for s in slots], value, path
        )
        names = sorted(lists)
        # Keras 2 and 3 both name the step `_iterations` and keep alike-named slot lists
        family = "legacy" if "iter" in own else _KERAS_2_OR_3
    kind = _kind(names, optimizer, path)
    keys = [k for k in KINDS[kind] if k in names]
    if family != "legacy" and kind == "sgd" and optimizer is not None:
        keys = [
            k for k in keys if _target_uses(optimizer, k)
        ]  # Keras 2's SGD keeps m at momentum 0
    values = [value(n) for n in originals]
    specs = [
        {"name": full_name(n), "shape": list(v.shape), "dtype": v.dtype.name}
        for n, v in zip(originals, values)
    ]
    unknown = "unknown (a TF checkpoint does not record the class)"
    header = _format.header(
        _format.described(kind, unknown, family, None, hypers, keys),
        iterations=iterations,
        variables=specs,
        source="TF checkpoint %s" % path,
    )
    return header, [{k: s[k] for k in keys} for s in slots], values


_KERAS_2_OR_3 = "keras2 or keras3 (a TF checkpoint does not say which)"


def _variable_list(own, children, value, optimizer, path):
    """(slots, model variable nodes, slot keys) from a Keras 3 optimizer's ``_variables`` and
    ``_trainable_variables`` (the variables it was built for, in order)."""
    from . import _access
    from . import _positional

    entries = children(own["_variables"])
    values = [value(entries[str(i)]) for i in range(len(entries))]
    built_for = (
        children(own["_trainable_variables"]) if "_trainable_variables" in own else {}
    )
    originals = [built_for[str(i)] for i in range(len(built_for))]
    head = 0
    while head < min(3, len(values)) and np.ndim(values[head]) == 0:
        head += 1  # the step, a float rate (and optcompat's weight_decay on jax)
    rest, n = values[head:], len(originals)
    if optimizer is not None:
        keys = list(_access.describe(optimizer)[1]["slots"])
    else:  # the count per variable says which: Adam (2, 3 with amsgrad) or SGD (1, 0)
        keys = {0: [], 1: ["momentum"], 2: ["m", "v"], 3: ["m", "v", "vhat"]}.get(
            len(rest) // n if n else 0, []
        )
    if len(rest) != n * len(keys):
        raise StateError(
            "%s: the optimizer lists %d variables for %d model variables, not %d each (%s): not a "
            "checkpoint of this optimizer?"
            % (path, len(rest), n, len(keys), ", ".join(keys) or "none")
        )
    columns = _positional._columns(rest, keys, n, "keras3") if keys else {}
    return (
        [{k: columns[k][i] for k in keys} for i in range(n if keys else 0)],
        (originals if keys else []),
        keys,
    )


def _find_optimizer(nodes):
    """The node of the saved root's child ``optimizer`` (breadth-first from the root)."""
    queue, seen = [0], {0}
    while queue:
        node_id = queue.pop(0)
        for child in nodes[node_id].children:
            if child.local_name == "optimizer":
                return child.node_id
            if child.node_id not in seen:
                seen.add(child.node_id)
                queue.append(child.node_id)
    return None


def _model_variable_order(nodes, opt_id):
    """Variable nodes in depth-first order from the root, the optimizer's subtree left out."""
    order, seen = [], {opt_id}

    def walk(node_id):
        if node_id in seen:
            return
        seen.add(node_id)
        if any(a.name == _VALUE for a in nodes[node_id].attributes):
            order.append(node_id)
        for child in nodes[node_id].children:
            walk(child.node_id)

    walk(0)
    return order


def _follow(order, shapes, value, path):
    """The model variables that slot lists of ``shapes`` belong to: in walk order, each the
    next variable of its slot's shape (a Keras 2 / 3 checkpoint ties them by position only;
    counters and statistics of other shapes are passed over)."""
    found, nodes = [], iter(order)
    for i, shape in enumerate(shapes):
        node = next(
            (n for n in nodes if value(n) is not None and value(n).shape == shape), None
        )
        if node is None:
            raise StateError(
                "%s: no model variable of shape %s for the optimizer's slot %d."
                % (path, shape, i)
            )
        found.append(node)
    return found


def _kind(names, optimizer, path):
    names = set(names)
    if names & {"m", "v", "vhat"}:
        return "adam"
    if names & {"momentum"}:
        return "sgd"
    if optimizer is not None:
        from . import _access

        return _access.describe(optimizer)[1]["kind"]
    return "sgd"  # no slots at all: SGD without momentum (Adam always has m and v)


def _target_uses(optimizer, key):
    from . import _access

    return key in _access.describe(optimizer)[1]["slots"]
