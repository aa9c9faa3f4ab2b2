"""``torch.optim``'s AdamW / Adam / SGD, for :mod:`optcompat.state`: their ``state`` read and
written as the file's slots, and a ``torch.save`` of their ``state_dict`` read as a file.

torch keeps, per parameter (``optimizer.state[param]``):

==================  ===================================  ========================
file slot           ``torch.optim.AdamW`` / ``Adam``     ``torch.optim.SGD``
==================  ===================================  ========================
``m``               ``exp_avg``
``v``               ``exp_avg_sq``
``vhat``            ``max_exp_avg_sq`` (``amsgrad``)
``momentum``                                             ``momentum_buffer``
step count          ``step`` (a 0-d tensor per param)    none: the file records 0
==================  ===================================  ========================

The moments mean what Keras's and optcompat's mean (``m = b1 m + (1 - b1) g``, ``v = b2 v +
(1 - b2) g^2``, ``vhat = max(vhat, v)``); SGD's buffer is ``b = mu b + g``, which optcompat
keeps with ``convention="torch"`` (or ``"optax"``).  The file records ``convention="torch"``.

Only what a decoupled optimizer expresses is read: Adam's and SGD's ``weight_decay`` is an
L2 term added to the gradient in torch (coupled), ``dampening`` and ``maximize`` have no
counterpart, and the parameter groups must share every hyperparameter but ``weight_decay``
(a group of excluded parameters, ``weight_decay=0``, is recorded per variable).  Loading
writes ``state`` as ``torch.optim`` holds it after those steps: the moments on each
parameter's device in its dtype, ``step`` a float tensor (on the parameter's device where the
group is ``capturable`` or ``fused``).
"""

import numpy as np

from .. import _detect
from . import _format
from ._access import Access
from ._format import StateError

# file slot -> torch's state key
KEYS = {
    "m": "exp_avg",
    "v": "exp_avg_sq",
    "vhat": "max_exp_avg_sq",
    "momentum": "momentum_buffer",
}
SLOT_OF = {v: k for k, v in KEYS.items()}
# group hyperparameters every group must share, as the file names them
SHARED = {
    "betas": ("beta_1", "beta_2"),
    "eps": ("epsilon",),
    "amsgrad": ("amsgrad",),
    "momentum": ("momentum",),
    "nesterov": ("nesterov",),
}


def _torch():
    import torch

    return torch


def _float(value):
    return float(value.item() if hasattr(value, "item") else value)


def kind_of(optimizer):
    """``(kind, class path)`` of a torch optimizer; StateError for another class."""
    optim = _torch().optim
    cls = type(optimizer)
    path = "%s.%s" % (cls.__module__, cls.__qualname__)
    for name, kind in (("AdamW", "adam"), ("Adam", "adam"), ("SGD", "sgd")):
        base = getattr(optim, name, None)
        if isinstance(base, type) and isinstance(optimizer, base):
            return kind, path, name
    raise StateError(
        "optcompat.state reads torch.optim.AdamW, Adam and SGD; %s keeps other state."
        % path
    )


def _hyperparameters(groups, kind, name, path):
    """The file's hyperparameters from torch's param groups; StateError where a decoupled
    Keras optimizer cannot express them."""
    first = groups[0]
    for group in groups:
        if group.get("maximize"):
            raise StateError(
                "%s maximizes (maximize=True): optcompat's optimizers minimize." % path
            )
        if _float(group["lr"]) != _float(first["lr"]):
            raise StateError(
                "%s has parameter groups with different learning rates (%s): one "
                "optimizer's file holds one learning rate. Save each group's "
                "parameters with an optimizer of their own."
                % (path, ", ".join(sorted({repr(_float(g["lr"])) for g in groups})))
            )
        for key in SHARED:
            if key in first and group.get(key) != first.get(key):
                raise StateError(
                    "%s has parameter groups with different %s (%r, %r): a Keras optimizer has one."
                    % (path, key, first.get(key), group.get(key))
                )
        decay = _float(group.get("weight_decay", 0.0))
        coupled = name == "SGD" or (
            name == "Adam" and not group.get("decoupled_weight_decay", False)
        )
        if decay and coupled:
            raise StateError(
                "%s's weight_decay (%r) is an L2 term added to the gradient (coupled "
                "decay), which optcompat's decoupled optimizers do not reproduce: use "
                "torch.optim.AdamW, or weight_decay=0%s."
                % (path, decay, " and decay in the loss" if name == "SGD" else "")
            )
        if _float(group.get("dampening", 0.0)):
            raise StateError(
                "%s has dampening=%r, which Keras's and optcompat's SGD do not have: dampening=0."
                % (path, group["dampening"])
            )
    decays = sorted({_float(g.get("weight_decay", 0.0)) for g in groups})
    if len(decays) > 2 or (len(decays) == 2 and decays[0] != 0.0):
        raise StateError(
            "%s decays its parameter groups at %s: a Keras optimizer has one rate, and excludes "
            "variables (rate 0)." % (path, ", ".join(map(repr, decays)))
        )
    hypers = {"learning_rate": _float(first["lr"]), "weight_decay": decays[-1]}
    if kind == "adam":
        hypers.update(
            beta_1=float(first["betas"][0]),
            beta_2=float(first["betas"][1]),
            epsilon=float(first["eps"]),
            amsgrad=bool(first.get("amsgrad", False)),
        )
    else:
        hypers.update(
            momentum=_float(first.get("momentum", 0.0)),
            nesterov=bool(first.get("nesterov", False)),
        )
    return hypers


def describe(optimizer):
    """``(access, info)`` for a torch optimizer (see :func:`._access.describe`)."""
    kind, path, name = kind_of(optimizer)
    hypers = _hyperparameters(optimizer.param_groups, kind, name, path)
    if kind == "adam":
        slots = ["m", "v"] + (["vhat"] if hypers["amsgrad"] else [])
    else:
        slots = ["momentum"] if hypers["momentum"] > 0.0 else []
    return STATE, _format.described(kind, path, "torch", "torch", hypers, slots)


class _TorchAccess(Access):
    family = "torch"

    def leaves(self, variables):
        torch = _torch()
        out = list(variables)
        for i, p in enumerate(out):
            if not isinstance(p, torch.Tensor):
                raise TypeError(
                    "`variables` must be the optimizer's parameters (torch tensors), "
                    "in order; item %d is %s." % (i, type(p).__name__)
                )
        return out

    def check(self, optimizer, variables):
        self._groups(optimizer, variables)

    def _groups(self, optimizer, variables):
        """Each variable's param group; StateError for a tensor the optimizer does not hold."""
        where = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        out = []
        for i, p in enumerate(variables):
            if id(p) not in where:
                raise StateError(
                    "`variables` item %d (a tensor of shape %s) is not one of %s's "
                    "parameters: pass the parameters it was constructed with, in order."
                    % (i, tuple(p.shape), type(optimizer).__name__)
                )
            out.append(where[id(p)])
        return out

    def slots(self, optimizer, variables, keys):
        self._groups(optimizer, variables)
        return _held_slots(optimizer, variables, keys)

    def iterations(self, optimizer):
        return _step_count(optimizer)

    def build(self, optimizer, variables):
        _build_state(optimizer, variables, self._groups(optimizer, variables))

    def numpy(self, value):
        torch = _torch()
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
        return np.asarray(value)

    def name(self, variable):
        return None  # torch parameters have no names: matched by order, shape and dtype

    def dtype(self, variable):
        return str(variable.dtype).replace("torch.", "")

    def assign(self, variable, value):
        torch = _torch()
        with torch.no_grad():
            variable.copy_(torch.as_tensor(np.asarray(value)))

    def set_iterations(self, optimizer, value):
        for s in optimizer.state.values():
            if "step" in s:
                step = s["step"]
                if hasattr(step, "fill_"):
                    step.fill_(float(value))
                else:
                    s["step"] = float(value)

    def set_hyperparameter(self, optimizer, name, value):
        key = {"learning_rate": "lr"}.get(name, name)
        excluded = (
            len({_float(g.get(key, 0.0)) == 0.0 for g in optimizer.param_groups}) > 1
        )
        for group in optimizer.param_groups:
            if key == "weight_decay" and excluded and not _float(group.get(key, 0.0)):
                continue  # a group of excluded parameters stays excluded
            if hasattr(group[key], "fill_"):
                group[key].fill_(value)
            else:
                group[key] = value

    def decayed(self, optimizer, variables):
        """One group decays every parameter it is given a rate for; groups that differ, those
        whose ``weight_decay`` is not 0."""
        decays = _decays(self._groups(optimizer, variables))
        return (
            [d > 0.0 for d in decays] if len(set(decays)) > 1 else [True] * len(decays)
        )

    def variable_rates(self, optimizer, variables):
        """Per variable, its group's ``weight_decay`` where the groups differ, else None."""
        decays = _decays(self._groups(optimizer, variables))
        return decays if len(set(decays)) > 1 else None


STATE = _TorchAccess()


def _held_slots(optimizer, variables, keys):
    """Per variable, ``{key: its state tensor}`` (None: no step taken yet); StateError where
    the parameters' states differ or lack a slot."""
    held = [optimizer.state.get(p) for p in variables]
    have = [bool(s) for s in held]
    if not any(have):
        return None if keys else [{} for _ in variables]  # no step taken yet
    if not all(have) and keys:
        raise StateError(
            "%s holds state for parameters %s only, not for %s: every parameter "
            "must have taken the same steps."
            % (
                type(optimizer).__name__,
                [i for i, h in enumerate(have) if h],
                [i for i, h in enumerate(have) if not h],
            )
        )
    out = []
    for i, s in enumerate(held):
        if any(s.get(KEYS[k]) is None for k in keys):
            raise StateError(
                "%s's state for parameter %d has no %s."
                % (
                    type(optimizer).__name__,
                    i,
                    ", ".join(KEYS[k] for k in keys if s.get(KEYS[k]) is None),
                )
            )
        out.append({k: s[KEYS[k]] for k in keys})
    return out


def _build_state(optimizer, variables, groups):
    """Create the torch state a step would (``step`` and the moments, or the momentum
    buffer) where it is missing, for ``variables`` of param ``groups``."""
    torch = _torch()
    kind, _, _ = kind_of(optimizer)
    scalar = (
        torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    )
    for p, group in zip(variables, groups):
        s = optimizer.state[p]
        if kind == "adam":
            if "step" not in s:
                on_device = group.get("capturable") or group.get("fused")
                s["step"] = (
                    torch.zeros((), dtype=torch.float32, device=p.device)
                    if on_device
                    else torch.tensor(0.0, dtype=scalar)
                )
            for key in ("exp_avg", "exp_avg_sq") + (
                ("max_exp_avg_sq",) if group.get("amsgrad") else ()
            ):
                if s.get(key) is None:
                    s[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
        elif (
            _float(group.get("momentum", 0.0)) > 0.0
            and s.get("momentum_buffer") is None
        ):
            s["momentum_buffer"] = torch.zeros_like(
                p, memory_format=torch.preserve_format
            )


def _step_count(optimizer):
    """The one step count of the optimizer's parameters (0: none taken); StateError where they
    differ."""
    steps = {_float(s["step"]) for s in optimizer.state.values() if "step" in s}
    if len(steps) > 1:
        raise StateError(
            "%s's parameters have taken different numbers of steps (%s): the file "
            "holds one step count."
            % (
                type(optimizer).__name__,
                ", ".join(str(int(s)) for s in sorted(steps)),
            )
        )
    return int(steps.pop()) if steps else 0


def _decays(groups):
    """Each param group's ``weight_decay`` as a float."""
    return [_float(g.get("weight_decay", 0.0)) for g in groups]


# -- a torch.save file of a state_dict ------------------------------------------------------
def is_torch_file(path):
    """Whether ``path`` is a ``torch.save`` file (a zip holding ``<name>/data.pkl``; a damaged
    one by its first entry's name): cheap, no torch."""
    import zipfile

    try:
        with zipfile.ZipFile(str(path)) as z:
            return any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        pass
    try:
        with open(str(path), "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") and b"data.pkl" in head


def read(path):
    """``(header, slots, values)`` of a ``torch.save(optimizer.state_dict(), path)`` file.

    A ``state_dict`` numbers the parameters (``param_groups[i]["params"]``) and keeps no class
    name: the kind is read from the state's keys (``exp_avg``: Adam-kind; ``momentum_buffer``
    or none: SGD), and the shapes from the state."""
    if _detect.installed("torch") is None:
        raise StateError(
            "%s is a torch.save file: reading it needs torch. Convert it where torch is installed: "
            "python -m optcompat.state convert %s state.npz" % (path, path)
        )
    torch = _torch()
    try:
        try:
            saved = torch.load(str(path), map_location="cpu", weights_only=True)
        except TypeError:  # torch < 1.13: no weights_only
            saved = torch.load(str(path), map_location="cpu")
    except Exception as e:
        raise StateError(
            "%s cannot be read as a torch.save file (%s: %s)."
            % (path, type(e).__name__, str(e).splitlines()[0][:200])
        )
    if (
        not isinstance(saved, dict)
        or "state" not in saved
        or "param_groups" not in saved
    ):
        raise StateError(
            "%s holds no optimizer state_dict (a dict with 'state' and 'param_groups'): save "
            "optimizer.state_dict()." % path
        )
    groups, state = saved["param_groups"], saved["state"]
    order = [i for g in groups for i in g["params"]]
    keys = sorted({k for s in state.values() for k in s if k in SLOT_OF})
    kind = "adam" if "exp_avg" in keys or "betas" in groups[0] else "sgd"
    # a state_dict does not say Adam or AdamW: torch >= 2.6 records decoupled_weight_decay
    name = (
        "SGD"
        if kind == "sgd"
        else ("Adam" if groups[0].get("decoupled_weight_decay") is False else "AdamW")
    )
    hypers = _hyperparameters(groups, kind, name, path)
    if kind == "adam":
        slots = ["m", "v"] + (["vhat"] if hypers["amsgrad"] else [])
    else:
        slots = ["momentum"] if hypers["momentum"] > 0.0 else []
    missing = [i for i in order if slots and i not in state]
    if missing:
        raise StateError(
            "%s holds no state for parameters %s (an optimizer that has not taken a step keeps "
            "none): every parameter must have taken the same steps." % (path, missing)
        )
    steps = {
        _float(state[i]["step"]) for i in order if i in state and "step" in state[i]
    }
    if len(steps) > 1:
        raise StateError(
            "%s: the parameters have taken different numbers of steps (%s)."
            % (path, sorted(steps))
        )
    arrays = [{k: STATE.numpy(state[i][KEYS[k]]) for k in slots} for i in order]
    specs = []
    for a in arrays:
        if not a:  # SGD without momentum: torch keeps nothing, not even the shape
            break
        first = next(iter(a.values()))
        specs.append(
            {"name": None, "shape": list(first.shape), "dtype": first.dtype.name}
        )
    if len(specs) != len(order):
        specs, arrays = [], []
    decays = [_float(g.get("weight_decay", 0.0)) for g in groups for _ in g["params"]]
    if specs and len(set(decays)) > 1:
        for spec, decay in zip(specs, decays):
            spec["weight_decay"] = decay
    unknown = "torch.optim (a state_dict does not record the class: %s-kind)" % kind
    header = _format.header(
        _format.described(kind, unknown, "torch", "torch", hypers, slots),
        iterations=int(steps.pop()) if steps else 0,
        variables=specs,
        source="torch.save file %s" % path,
    )
    return header, arrays, [None] * len(arrays)
