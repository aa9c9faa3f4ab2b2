"""Per-variable decays read from a model's L1 / L2 regularizers (keras-adamw's
``get_weight_decays``), host-free: layers are read by their attributes, in every family.

Decoupled decay replaces a loss penalty, so the penalty is zeroed (``zero_penalties``), as
keras-adamw does, or the model would be penalised twice.
"""

from . import _validate

# an RNN cell's weights and their regularizer attributes, in keras-adamw's order
_CELL_WEIGHTS = (
    ("kernel", "kernel_regularizer"),
    ("recurrent_kernel", "recurrent_regularizer"),
    ("bias", "bias_regularizer"),
)
_LAYER_WEIGHTS = (("kernel", "kernel_regularizer"), ("bias", "bias_regularizer"))


def _name(variable):
    """The name ``weight_decays`` keys a variable by: its path (Keras 3), else its name."""
    return getattr(variable, "path", None) or variable.name


def _penalty(regularizer, zero):
    """``(l1, l2)`` of an ``L1`` / ``L2`` / ``L1L2`` regularizer (zeroed after reading where
    ``zero``); a regularizer of another kind is refused (its penalty has no decay equivalent)."""
    if not (hasattr(regularizer, "l1") or hasattr(regularizer, "l2")):
        raise TypeError(
            "weight_decays_from() reads L1 / L2 / L1L2 regularizers; %r is another kind "
            "(no decoupled equivalent): remove it or give `weight_decays` yourself."
            % (regularizer,)
        )
    l1, l2 = (float(getattr(regularizer, a, 0.0)) for a in ("l1", "l2"))
    if zero:
        for a in ("l1", "l2"):
            if hasattr(regularizer, a):
                setattr(regularizer, a, 0.0)
    return l1, l2


def _cells(layer):
    """The RNN cells of ``layer`` (a Bidirectional's two, a wrapped RNN's), else []."""
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        return _cells(layer.forward_layer) + _cells(layer.backward_layer)
    if hasattr(layer, "cell"):
        cells = getattr(layer.cell, "cells", None)  # StackedRNNCells
        return list(cells) if cells else [layer.cell]
    inner = getattr(layer, "layer", None)
    return _cells(inner) if inner is not None else []


def _layers(model):
    for layer in getattr(model, "layers", ()):
        # a nested model
        if getattr(layer, "layers", None) and not hasattr(layer, "cell"):
            for inner in _layers(layer):
                yield inner
        else:
            yield layer


def weight_decays_from(model, zero_penalties=True):
    """A model's L1 / L2 penalties as per-variable decays, to give as `weight_decays=`.

    Every weight with a nonzero L1 / L2 / L1L2 regularizer counts: kernels, biases, RNN
    kernels and recurrent kernels; wrappers, Bidirectional and nested models included.  The
    values are the penalties as written; keras-adamw scales them by
    $\\sqrt{1 / \\mathrm{total\\_iterations\\_wd}}$: `optcompat.normalized_weight_decay(l2, T)`.

    Args:
        model: a Keras model of any family.
        zero_penalties: set the regularizers to 0 after reading (default True, as keras-adamw's
            optimizers), so the loss no longer carries them: do it before `compile`.

    Returns:
        `{variable name: (l1, l2)}`.

    Raises:
        TypeError: `model` is no Keras model.

    Example:
        ```python
        import optcompat

        decays = optcompat.weight_decays_from(model)   # {} here: the model has no regularizers
        model.compile(optimizer=optcompat.AdamW(weight_decays=decays), loss="mse")
        ```
    """
    zero = _validate.boolean("zero_penalties", zero_penalties)
    if not hasattr(model, "layers"):
        raise TypeError(
            "weight_decays_from() takes a Keras model; received %r." % (model,)
        )
    found = {}
    for layer in _layers(model):
        cells = _cells(layer)
        owners = (
            [(c, _CELL_WEIGHTS) for c in cells]
            if cells
            else [(getattr(layer, "layer", layer), _LAYER_WEIGHTS)]
        )
        for owner, weights in owners:
            for weight, attribute in weights:
                regularizer, variable = (
                    getattr(owner, attribute, None),
                    getattr(owner, weight, None),
                )
                if regularizer is None or variable is None:
                    continue
                l1, l2 = _penalty(regularizer, zero)
                if l1 or l2:
                    found[_name(variable)] = (l1, l2)
    return found
