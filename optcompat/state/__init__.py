"""Move a training run's optimizer state: across optimizers, families and releases.

The file is a `.npz` with a JSON header that every family on every release reads: the step
count and, per model variable, its slots -- Adam's `m`, `v` (`vhat` with amsgrad) or SGD's
`momentum` -- with what they belong to (optimizer kind, family, convention, hyperparameters,
host versions, the variables' names, shapes, dtypes).

`save` reads optcompat's AdamW / SGDW and what users migrate from: the host's own Adam /
AdamW / SGD in every family, TensorFlow Addons' AdamW / SGDW, keras-adamw's AdamW / SGDW --
and the libraries runs move between: `torch.optim.AdamW` / `Adam` / `SGD` (with its parameters,
in order; convention "torch") and an optax state of `adamw` / `adam` / `sgd` (with
its params pytree; convention "optax"), which `load` writes too (for optax it returns the new
state).  A `torch.save` of an optimizer's `state_dict` reads as a file.
`load` writes into optcompat's optimizers and the host's own, and also reads directly a file
the host wrote (a TF checkpoint, an `.h5` model, a `.keras` file or a `.weights.h5`), so an
OptimizerV2 checkpoint of TF 1.15-2.10 continues in Keras 2 and 3.

Variables are matched by order, shape and dtype, and by name where both sides chose one: a
name the host generated for a variable created without one -- TensorFlow's `Variable`,
`Variable_1` (`Variable:0`), Keras 3's `variable`, `variable_14`, under any scope prefix --
counts variables in one process and says nothing about which variable it is, so it is not
compared (raw variables in a custom training loop load in the next process and in another
family).  `load(..., match="order")` matches chosen names by order too: a model whose
variables were renamed.

Everything is checked before anything changes; a refusal (`StateError`, a `ValueError`)
names what differs and leaves the optimizer and the model as they were: another model
(variable count, shapes, dtypes, chosen names), another optimizer kind (SGD state into Adam),
other slots (amsgrad, momentum), another convention (unless `allow_convention_change=True`:
the moments mean the same, the steps that follow do not), a truncated or corrupted file, a
newer format version.  The state is the optimizer's, not the model's: move the model's
weights as usual (`model.save_weights`), or pass `restore_variables=True` to set them from
the file.

Example:
    ```python
    import optcompat.state
    from optcompat import AdamW

    model.compile(optimizer=AdamW(learning_rate=1e-3), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    optcompat.state.save(model.optimizer, "run.npz", model.trainable_variables)
    # later, elsewhere: another TensorFlow, Keras 3, another backend, optcompat or the host's own
    optcompat.state.load(model.optimizer, "run.npz", model.trainable_variables)
    ```
"""

import re
import warnings

from .. import _saving
from . import _access
from . import _files
from . import _format
from ._format import FORMAT_VERSION
from ._format import KINDS
from ._format import StateError

__all__ = ["save", "load", "read", "State", "StateError", "FORMAT_VERSION", "MATCHES"]

# load's ``match``: "names" compares the names both sides chose; "order" takes the variables
# by position alone (count, shapes and dtypes are checked either way)
MATCHES = ("names", "order")


class State(object):
    """An optimizer's state, as the file holds it.

    Attributes:
        header: a dict: the optimizer, family, convention, step (`iterations`), hyperparameters,
            host versions and, per variable, its name, shape and dtype.
        slots: per variable, `{slot key: ndarray}` (`m`, `v`, `vhat`; `momentum`).
        values: per variable, its value at saving, or None.
    """

    def __init__(self, header, slots, values):
        self.header, self.slots, self.values = header, slots, values

    @property
    def iterations(self):
        return self.header["iterations"]

    @property
    def kind(self):
        return self.header["kind"]

    @property
    def convention(self):
        return self.header.get("convention")

    @property
    def variables(self):
        return self.header["variables"]

    def arrays(self):
        arrays = {}
        for i, slots in enumerate(self.slots):
            for key, array in slots.items():
                arrays["%d/%s" % (i, key)] = array
            if self.values[i] is not None:
                arrays["%d/value" % i] = self.values[i]
        return arrays

    @classmethod
    def from_arrays(cls, header, arrays, source):
        n = len(header.get("variables", ()))
        keys = header.get("slots", [])
        slots, values = [], []
        for i, spec in enumerate(header["variables"]):
            try:
                slots.append({k: arrays["%d/%s" % (i, k)] for k in keys})
            except KeyError as e:
                raise StateError(
                    "%s is corrupted: no array %s for variable %d (%s)."
                    % (source, e, i, spec["name"])
                )
            values.append(arrays.get("%d/value" % i))
        extra = set(arrays) - {
            "%d/%s" % (i, k) for i in range(n) for k in list(keys) + ["value"]
        }
        if extra:
            raise StateError(
                "%s is corrupted: arrays %s belong to no variable."
                % (source, sorted(extra))
            )
        return cls(header, slots, values)

    def summary(self):
        """A few lines for people (``python -m optcompat.state inspect``)."""
        return _summary(self.header)


def _summary(h):
    """A state header in a few lines for people."""
    hypers = ", ".join(
        "%s=%s" % (k, _short(v))
        for k, v in sorted(h.get("hyperparameters", {}).items())
    )
    lines = [
        "optimizer:   %s (kind %s)" % (h.get("optimizer"), h["kind"]),
        "family:      %s" % h.get("family"),
        "convention:  %s" % h.get("convention"),
        "step:        %d" % h["iterations"],
        "hyperparameters: %s" % hypers,
        "versions:    %s"
        % (
            ", ".join("%s %s" % kv for kv in sorted(h.get("versions", {}).items()))
            or "not recorded in the file"
        ),
        "format:      %s%s%s"
        % (
            h.get("format"),
            "" if h.get("format_version") is None else " %s" % h["format_version"],
            "  (read from %s)" % h["source"] if h.get("source") else "",
        ),
        "variables:   %d, slots %s"
        % (len(h["variables"]), ", ".join(h.get("slots", [])) or "none"),
    ]
    for i, spec in enumerate(h["variables"]):
        note = "  (generated name)" if _generated(spec.get("name")) else ""
        lines.append(
            "  %3d  %-40s %-16s %s%s"
            % (
                i,
                spec.get("name") or "?",
                tuple(spec["shape"]),
                spec["dtype"],
                note,
            )
        )
    return "\n".join(lines)


def _short(value):
    if isinstance(value, dict):
        return "%s(...)" % (value.get("class_name") or "dict")
    return repr(value)


# -- files -------------------------------------------------------------------------------
def write(state, path):
    """Write `state` to `path` (the portable `.npz`)."""
    header = {
        k: v
        for k, v in state.header.items()
        if k not in ("arrays", "format", "format_version")
    }
    _format.write(path, header, state.arrays())


def read(path, optimizer=None, variables=None):
    """Read the optimizer state in a file.

    Args:
        path: optcompat's `.npz`, or a file the host wrote: a TF checkpoint prefix or
            directory, `.h5`, `.keras`, `.weights.h5`.
        optimizer: where the state will go, to read a file that lists state by position and
            does not say which optimizer wrote it (a `.weights.h5`); else None.
        variables: the variables it will go to, with `optimizer`.

    Returns:
        The `State` in `path`.

    Raises:
        StateError: the file is truncated or corrupted, of a newer format version, or holds no
            optimizer state optcompat reads.
    """
    if _format.is_state_file(path):
        header, arrays = _format.read(path)
        return State.from_arrays(header, arrays, path)
    header, slots, values = _files.read(path, optimizer, variables)
    return State(header, slots, values)


# -- optimizers ----------------------------------------------------------------------------
def save(optimizer, path, variables):
    """Write an optimizer's state to a portable `.npz` that `load` reads in every family.

    Args:
        optimizer: optcompat's AdamW / SGDW, the host's own Adam / AdamW / SGD (any family),
            TensorFlow Addons' AdamW / SGDW or keras-adamw's AdamW / SGDW; a
            `torch.optim.AdamW`, `Adam` or `SGD`; an optax state (`tx.init(params)` and its
            updates) of `adamw`, `adam` or `sgd`, under `inject_hyperparams`,
            `masked` or a `chain`.  One that has not taken a step yet saves zeros.
        path: the file to write.
        variables: the model's trainable variables, in order (`model.trainable_variables`);
            torch: the optimizer's parameters, in order; optax: the params pytree (its
            leaves in `jax.tree` order).

    Returns:
        The `State` written.

    Raises:
        StateError: the optimizer is none of those, or holds no slots for these variables
            after taking steps; torch: a parameter is not the optimizer's, or the optimizer
            keeps what a decoupled Keras optimizer cannot express (Adam's / SGD's coupled
            `weight_decay`, `dampening`, `maximize`, groups with other learning rates).
        TypeError: torch: `variables` are not tensors.
    """
    state = state_of(optimizer, variables)
    write(state, path)
    return state


def state_of(optimizer, variables):
    """`optimizer`'s `State` for `variables` (nothing is written)."""
    access, info = _access.describe(optimizer)
    variables = access.leaves(variables)
    slots = access.slots(optimizer, variables, info["slots"])
    iterations = access.iterations(optimizer)
    if slots is None:  # not built: no step taken yet
        if iterations:
            raise StateError(
                "%s has taken %d steps but holds no slots for these variables."
                % (info["optimizer"], iterations)
            )
        slots = [{k: None for k in info["slots"]} for _ in variables]
    arrays, values, specs = [], [], []
    for variable, kept in zip(variables, slots):
        value = access.numpy(variable)
        specs.append(
            {
                "name": access.name(variable),
                "shape": list(value.shape),
                "dtype": value.dtype.name,
            }
        )
        values.append(value)
        arrays.append(
            {k: (0 * value if s is None else access.numpy(s)) for k, s in kept.items()}
        )
    for spec, rate in zip(specs, access.variable_rates(optimizer, variables) or ()):
        spec["weight_decay"] = rate  # torch's param groups: excluded variables at 0
    header = _format.header(
        dict(info, family=access.family),
        versions=_access.versions(),
        iterations=int(iterations),
        variables=specs,
    )
    return State(header, arrays, values)


def load(
    optimizer,
    path,
    variables,
    allow_convention_change=False,
    restore_variables=False,
    match="names",
):
    """Set an optimizer's state from a file, so that training continues as the saved run would have.

    Sets the step count and every slot, and, as the host's own checkpoints do, a float
    learning rate (and a float `weight_decay` of the same convention).  Everything is checked
    first, and nothing changes where a check fails.  optax's state is immutable: for an optax
    state, `load` returns a new one of the same structure, dtypes and devices (the `count`s,
    moments or trace, and `inject_hyperparams`' float `learning_rate` / `weight_decay` from
    the file), and the one passed in is left as it is.

    Args:
        optimizer: optcompat's AdamW / SGDW or the host's own Adam / AdamW / SGD, any family;
            a `torch.optim.AdamW` / `Adam` / `SGD` (its `state` written as torch keeps it, on
            each parameter's device and dtype); an optax state (`tx.init(params)`).
        path: optcompat's `.npz` or a file the host wrote (see `read`), or a `State`.
        variables: the model's trainable variables, in the order they were saved (torch: the
            optimizer's parameters; optax: the params pytree).
        allow_convention_change: accept a file of another convention (the moments carry
            over, but the run will not continue as it was).
        restore_variables: also set the variables to the values saved (not for optax: take
            them from `read(path).values`).
        match: `"names"` (the default) matches variables by position, shape and dtype, and
            compares their names (the part after the last `/`) where both the file and the
            variable here have one that was chosen; a generated name (TensorFlow's
            `Variable:0`, `Variable_3:0`, Keras 3's `variable`, `variable_14`: a variable
            created without a name) matches any.  `"order"` matches by position, shape and
            dtype alone: for a model whose variables were renamed since the file was saved.

    Returns:
        The `State` loaded; for an optax state, the new optax state.

    Raises:
        StateError: what differs: the optimizer kind (`adam`: Adam, AdamW; `sgd`: SGD,
            SGDW), its slots (amsgrad, momentum), the convention, the variables' count,
            shapes, dtypes or chosen names; or the file is truncated, corrupted or newer.
        ValueError: `match` is not one of `"names"`, `"order"`; `restore_variables` with
            an optax state.
    """
    if not isinstance(match, str) or match not in MATCHES:
        raise ValueError(
            "`match` must be one of %s (how variables are matched with the file's); received %r."
            % (", ".join(repr(m) for m in MATCHES), match)
        )
    access, info = _access.describe(optimizer)
    if restore_variables and getattr(access, "functional", False):
        raise ValueError(
            "`restore_variables` cannot set optax's params (immutable arrays): take them from "
            "optcompat.state.read(path).values."
        )
    variables = access.leaves(variables)
    access.check(optimizer, variables)
    state = path if isinstance(path, State) else read(path, optimizer, variables)
    source = state.header.get("source") or path
    _check(
        state,
        info,
        access=access,
        variables=variables,
        allow_convention_change=allow_convention_change,
        restore_variables=restore_variables,
        source=source,
        match=match,
        optimizer=optimizer,
    )
    _warn_hyperparameters(state, info, source)
    # nothing has changed so far; from here on every check has passed
    hypers = state.header.get("hyperparameters", {})
    names = ["learning_rate"] + (
        ["weight_decay"] if state.convention == info["convention"] else []
    )
    changed = {}
    for name in names:
        value = hypers.get(name)
        current = info["hyperparameters"].get(name)
        if (
            _plain_float(value)
            and _plain_float(current)
            and _saving.float32(value) != _saving.float32(current)
        ):
            changed[name] = float(value)  # (a float32 readback is no change)
    new = access.write(optimizer, variables, state, info, changed)
    if restore_variables:
        for variable, value in zip(variables, state.values):
            access.assign(variable, value)
    # optax: a new state; the optimizer's (a tuple of arrays) is as it was
    if new is not None:
        return new
    return state


def _plain_float(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _leaf(name):
    """``kernel`` for ``sequential/dense_1/kernel:0``: what a variable is within its layer."""
    name = name.rsplit(":", 1)[0] if ":" in name else name
    return name.rsplit("/", 1)[-1]


# what a host names a variable created without a name, numbered by creation within a process
# (TensorFlow: tf.Variable, Keras 2's K.variable / add_weight -> Variable, Variable_1 in a graph;
# Keras 3 on every backend: keras.Variable, add_weight -> variable, variable_1, ...)
_GENERATED = re.compile(r"^(?:Variable|variable)(?:_[0-9]+)?$")


def _generated(name):
    """Whether `name` (any scope prefix, any `:0`) is one a host generated for a variable
    created without a name: it says nothing about which variable it is."""
    return bool(name) and bool(_GENERATED.match(_leaf(name)))


_KIND_NAMES = {
    "adam": "an Adam-kind optimizer (Adam, AdamW)",
    "sgd": "an SGD-kind optimizer (SGD, SGDW)",
}


def _check(
    state,
    info,
    *,
    access,
    variables,
    allow_convention_change,
    restore_variables,
    source,
    match,
    optimizer=None,
):
    """Raise `StateError` naming the first difference; changes nothing."""
    if state.kind != info["kind"]:
        raise StateError(
            "%s holds the state of %s (slots %s), but %s is %s (slots %s): one "
            "optimizer's slots mean nothing to the other."
            % (
                source,
                _KIND_NAMES[state.kind],
                ", ".join(KINDS[state.kind]),
                info["optimizer"],
                _KIND_NAMES[info["kind"]],
                ", ".join(KINDS[info["kind"]]),
            )
        )
    if list(state.header.get("slots", [])) != list(info["slots"]):
        raise StateError(
            "%s holds slots %s per variable, but %s uses %s (%s): construct it as the "
            "saved optimizer was."
            % (
                source,
                state.header.get("slots") or "none",
                info["optimizer"],
                list(info["slots"]) or "none",
                "amsgrad differs"
                if state.kind == "adam"
                else "momentum is 0 on one side only",
            )
        )
    if (
        state.convention != info["convention"]
        and not allow_convention_change
        and state.convention is not None
    ):
        raise StateError(
            "%s was saved with convention %r, but the optimizer uses %r: %s The run "
            "would not continue as it was. Construct the optimizer with convention=%r, "
            "or pass allow_convention_change=True to carry the state over anyway."
            % (
                source,
                state.convention,
                info["convention"],
                _why_conventions_differ(
                    state.kind, state.convention, info["convention"]
                ),
                state.convention,
            )
        )
    specs = state.variables
    if not specs and not info["slots"] and not restore_variables:
        pass  # no per-variable state at all (SGD without momentum, read from a TF checkpoint)
    elif len(specs) != len(variables):
        raise StateError(
            "%s holds state for %d variables, but %d were given (a file of another model?)."
            % (source, len(specs), len(variables))
        )
    for i, (spec, variable) in enumerate(zip(specs, variables)):
        name, shape, dtype = (
            access.name(variable),
            list(access.shape(variable)),
            access.dtype(variable),
        )
        if list(spec["shape"]) != shape or spec["dtype"] != dtype:
            raise StateError(
                "%s: variable %d is %s %s %s in the file, but %s %s %s here (a file of "
                "another model?)."
                % (
                    source,
                    i,
                    spec.get("name"),
                    tuple(spec["shape"]),
                    spec["dtype"],
                    name,
                    tuple(shape),
                    dtype,
                )
            )
        if (
            match == "names"
            and spec.get("name")
            and name
            and not _generated(spec["name"])
            and not _generated(name)
            and _leaf(spec["name"]) != _leaf(name)
        ):
            raise StateError(
                "%s: variable %d is %r in the file, but %r here: pass the variables in the order "
                "they were saved (model.trainable_variables), or, for a model whose variables "
                'were renamed, load(..., match="order") to match them by order, shape and '
                "dtype." % (source, i, spec["name"], name)
            )
        for key in info["slots"]:
            array = state.slots[i].get(key)
            if array is None or list(array.shape) != shape:
                raise StateError(
                    "%s is corrupted: slot %s of variable %d has shape %s, the variable %s."
                    % (
                        source,
                        key,
                        i,
                        None if array is None else tuple(array.shape),
                        tuple(shape),
                    )
                )
        if restore_variables and (
            state.values[i] is None or list(state.values[i].shape) != shape
        ):
            raise StateError(
                "%s holds no value for variable %d (%s): restore_variables needs one."
                % (source, i, spec.get("name"))
            )
    if not isinstance(state.iterations, int) or state.iterations < 0:
        raise StateError("%s is corrupted: step count %r." % (source, state.iterations))
    if optimizer is not None:
        _check_decayed(state, access, variables, source, optimizer, info)


def _check_decayed(state, access, variables, source, optimizer, info):
    """A file of per-variable decay rates (torch's param groups: some at 0) against which
    variables the optimizer decays, where it can tell."""
    rates = [spec.get("weight_decay") for spec in state.variables]
    if not rates or any(r is None for r in rates) or len(rates) != len(variables):
        return
    decayed = access.decayed(optimizer, variables)
    if decayed is None:
        return
    differ = [i for i, (r, d) in enumerate(zip(rates, decayed)) if (r > 0.0) != bool(d)]
    if differ:
        raise StateError(
            "%s decays variables %s and not %s (the saved optimizer's parameter "
            "groups), but %s decays %s: the run would not continue as it was. Exclude "
            "the same variables (exclude_from_weight_decay=[...]; torch: a parameter "
            "group with weight_decay=0)."
            % (
                source,
                [i for i, r in enumerate(rates) if r > 0.0],
                [i for i, r in enumerate(rates) if r <= 0.0],
                info["optimizer"],
                [i for i, d in enumerate(decayed) if d] or "none",
            )
        )


def _why_conventions_differ(kind, a, b):
    from .._conventions import CONVENTIONS

    ca, cb = CONVENTIONS.get(a), CONVENTIONS.get(b)
    if ca is None or cb is None:
        return "an unknown convention."
    if kind == "sgd" and ca.momentum != cb.momentum:
        return (
            "SGD's momentum buffer means something else (%s: u = mu u - lr g; %s: b = mu b + g)."
            % tuple(
                c.name for c in sorted((ca, cb), key=lambda c: c.momentum != "keras")
            )
        )
    parts = []
    if ca.decay != cb.decay:
        parts.append(
            "the weight decay is scaled differently (%s: %s; %s: %s)"
            % (a, _DECAY[ca.decay], b, _DECAY[cb.decay])
        )
    if kind == "adam" and ca.epsilon != cb.epsilon:
        parts.append(
            "epsilon sits %s the bias correction in %s, %s it in %s"
            % (ca.epsilon, a, cb.epsilon, b)
        )
    return ("; ".join(parts) or "the steps are rounded differently") + "."


_DECAY = {"lr": "lambda * lr_t", "one": "lambda", "schedule": "lambda * lr_t / lr_0"}


def _warn_hyperparameters(state, info, source):
    saved, here = state.header.get("hyperparameters", {}), info["hyperparameters"]
    differ = [
        "%s %r -> %r" % (k, saved[k], here[k])
        for k in ("beta_1", "beta_2", "epsilon", "momentum", "nesterov")
        if k in saved
        and k in here
        and saved[k] is not None
        and here[k] is not None
        and not _same(saved[k], here[k])
    ]
    if differ:
        warnings.warn(
            "Loading %s into an optimizer with other hyperparameters (%s): the run continues with "
            "the new ones." % (source, ", ".join(differ)),
            UserWarning,
            stacklevel=3,
        )


def _same(a, b):
    if _plain_float(a) and _plain_float(b):
        return abs(float(a) - float(b)) <= 1e-7 * max(1.0, abs(float(a)))
    return a == b
