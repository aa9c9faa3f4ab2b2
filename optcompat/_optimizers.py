"""AdamW and SGDW, declared once: signature, defaults, checks, slots, per-step coefficients,
update and documentation.

A declaration is a mixin placed first in a family's class (``class AdamW(AdamWSpec,
_Keras3)``, made by :func:`make`): its ``__init__`` is the user's signature; it checks the
optimizer's own arguments, then hands the shared ones to
:func:`._construction.construct`, which checks them and calls the family's hooks.  The
update math is :mod:`._rule`; a declaration only says which slots, coefficients and rule an
optimizer has.
"""

import textwrap
import types

from . import _checks
from . import _construction
from . import _rule
from . import _step
from . import _validate
from ._conventions import DEFAULT

_SHARED_ARGS = """
    convention: whose numbers to reproduce, one of `optcompat.CONVENTIONS`:
        `"keras"` (default; the host's own optimizer), `"torch"` (`torch.optim`),
        `"optax"` (`optax.adamw`: torch's rule, rounded as optax rounds the decay),
        `"tfa"` (TensorFlow Addons: the decay not scaled by the learning rate),
        `"paper"` (Loshchilov & Hutter's Algorithm 2: the decay scaled by the schedule
        multiplier $\\mathrm{lr}_t / \\mathrm{lr}_0$), `"keras-adamw"` (the keras-adamw package:
        the paper's decay with Keras's epsilon).
    exclude_from_weight_decay: None or a list of regular expressions; a variable whose path
        (or name) matches one gets no decay.  `opt.exclude_from_weight_decay(var_list=...,
        var_names=...)` adds to it, as in Keras.
    clipnorm: None or > 0: clip each gradient to this norm.
    clipvalue: None or > 0: clip each gradient element to this magnitude.
    global_clipnorm: None or > 0: clip all gradients to this global norm (at most one of the
        three clipping arguments).
    name: the optimizer's name.
    lr_multipliers: None or `{pattern: factor}` (keras-adamw's): a variable whose path or
        name contains `pattern` (the first such key, in the dict's order) takes steps with
        $\\mathrm{lr}_t \\cdot$ `factor` (factor >= 0); its decay follows where $d_t$ follows
        $\\mathrm{lr}_t$.
    weight_decays: None or `{variable name: l2 or (l1, l2)}`, each >= 0 (keras-adamw's;
        `optcompat.weight_decays_from(model)` reads them from the layers' regularizers):
        that variable's decay in place of `weight_decay` ($l_2$ its $\\lambda$, $l_1$ an
        L1 decay), scaled by the convention as `weight_decay` is.
    strict_names: bool; True: every `lr_multipliers` pattern and `weight_decays` name must
        match a variable the optimizer is built for (`ValueError` naming it, else).
    fast_path: `"auto"` (default), `"fused"`, `"foreach"` (torch) or None: how the rule is
        evaluated (TensorFlow's and torch's fused kernels, or op by op), never what it computes.
    **kwargs: the host base class's other keyword arguments, as in Keras (`use_ema`,
        `gradient_accumulation_steps`, `loss_scale_factor`, OptimizerV2's `decay`, ...).
"""

_LEARNING_RATE = """
    learning_rate: a float >= 0, a host `LearningRateSchedule`, or (where the family
        calls one: Keras 3, OptimizerV2) a callable returning the rate; checked each eager
        step to be finite and >= 0.
"""

_RAISES = """
    ValueError: an argument out of its range (the message names it and the range allowed),
        before anything is created; at use time, a rate or decay that is NaN, infinite or
        negative, or a gradient whose shape differs from its variable's, before any variable
        or slot changes.
    TypeError: an argument of the wrong type (it is a `ValueError` too, as Keras raises
        `ValueError` for `AdamW(weight_decay=None)`).
"""


def _block(text, indent):
    return textwrap.indent(textwrap.dedent(text).strip("\n"), " " * indent) + "\n"


def _text(doc):
    """A docstring whose first line is unindented (`_rule`'s), indented as a class
    docstring's body."""
    first, _, rest = doc.partition("\n")
    return (
        textwrap.indent((first + "\n" + textwrap.dedent(rest)).strip("\n"), " " * 4)
        + "\n"
    )


def _doc(summary, args, rule, example):
    """An optimizer's docstring, Google style (the API reference renders it; its `$...$` are
    math): the summary, the equations, the arguments, the errors, an example, references."""
    return (
        summary
        + "\n\n"
        + _text(_rule.DECAY_DOC)
        + "\n"
        + _text(rule)
        + "\n    Args:\n"
        + "".join(_block(a, 8) for a in (_LEARNING_RATE, args, _SHARED_ARGS))
        + "\n    Raises:\n"
        + _block(_RAISES, 8)
        + "\n    Example:\n        ```python\n"
        + _block(example, 8)
        + "        ```\n"
        + "\n"
        + _block(_rule.REFERENCES.split("\n", 1)[0], 4)
        + _block(_rule.REFERENCES.split("\n", 1)[1], 8)
    )


class Spec(object):
    """What a declaration gives the shared core."""

    kind = None  # "adamw" / "sgdw": the fast paths' kernel
    # Slot keys (a family may name the slot variables otherwise) in groups: Keras 2 and 3
    # create a group's slots variable by variable (Adam: m0, v0, m1, v1, ..., then vhat0,
    # vhat1, ...), OptimizerV2 key by key (m0, m1, ..., v0, v1, ...).  Files and checkpoints
    # list optimizer variables by position, so the order is the host's own Adam / SGD's.
    SLOT_GROUPS = ()
    # the attribute holding each slot's list: the host's own Adam / SGD's (checkpoint names)
    SLOT_ATTRIBUTES = {"m": "_momentums", "v": "_velocities", "vhat": "_velocity_hats"}
    HYPERS = ()  # arguments read in the step: OptimizerV2 keeps them as hyperparameters
    OPTIONAL_DECAY = False  # whether weight_decay may be None (no decay, no variable)
    SLOTS = ()  # every slot key, in the declaration's order: SLOT_GROUPS flattened by make()

    def _has_slot(self, key):
        return True

    def _build_slots(self, var_list, make):
        """Each slot's list of variables, ``make(variable, key)`` each, in the host's order:
        a group's slots variable by variable (SLOT_GROUPS); None for a slot it lacks."""
        for group in self.SLOT_GROUPS:
            keys = [k for k in group if self._has_slot(k) or k in self._UNUSED_SLOTS]
            lists = {k: [] for k in keys}
            for v in var_list:
                for k in keys:
                    lists[k].append(make(v, k))
            for k in group:
                setattr(self, self.SLOT_ATTRIBUTES[k], lists.get(k))

    def _slots_at(self, index):
        """The slot variables of the model variable at ``index``, in the declaration's order
        (None for a slot this optimizer does not use)."""
        return tuple(
            getattr(self, self.SLOT_ATTRIBUTES[key])[index]
            if self._has_slot(key)
            else None
            for key in self.SLOTS
        )


class AdamWSpec(Spec):
    __doc__ = _doc(
        """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).""",
        """
    weight_decay: the decoupled decay $\\lambda$: a float >= 0, or a `LearningRateSchedule`
        (called with the 0-based step, as the learning rate's) or a callable (called each
        step), as TensorFlow Addons and optax take it; a schedule's or callable's value is
        checked each eager step (finite, >= 0).  A float: `opt.weight_decay = x` sets it for
        the steps that follow, compiled ones included (a callback's schedule).  Saved with
        the optimizer: a schedule serialized, a plain callable as its value at saving.
    beta_1: in [0, 1), the decay rate $\\beta_1$ of the first moment $m$.
    beta_2: in [0, 1), the decay rate $\\beta_2$ of the second moment $v$.
    epsilon: >= 0, the $\\epsilon$ added to $\\sqrt{v}$ (where: see `convention`).
    amsgrad: bool; use $\\hat v = \\max(\\hat v, v)$ in place of $v$ (one more slot).
""",
        _rule.adam_update.__doc__,
        """        from optcompat import AdamW

        model.compile(optimizer=AdamW(learning_rate=1e-3, weight_decay=4e-3,
                                      exclude_from_weight_decay=["bias"]), loss="mse")
        model.fit(x, y, epochs=2, verbose=0)
""",
    )

    kind = "adamw"
    SLOT_GROUPS = (("m", "v"), ("vhat",))
    HYPERS = ("beta_1", "beta_2")

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, amsgrad=False, convention=DEFAULT,
                 exclude_from_weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name="AdamW", lr_multipliers=None,
                 weight_decays=None, strict_names=False, fast_path="auto",
                 **kwargs):  # fmt: skip
        own = _validate.adamw(beta_1, beta_2, epsilon, amsgrad, self._host.read_hyper)
        _construction.construct(self, own, locals())

    def _has_slot(self, key):
        return key != "vhat" or self.amsgrad

    def _step_coefficients(self, xp, dtype, learning_rate, iterations, variable=None):
        """This step's coefficients in ``dtype``: ``lr`` (``lr_t``), ``decay`` (``d_t``),
        ``step`` (``t``), the betas, ``alpha`` (``alpha_t``), ``eps_hat``; ``variable``'s own
        where it has an lr multiplier or decays (``l1``: ``d1_t``)."""
        c = _step.rates(self, dtype, learning_rate, iterations, variable)
        c["step"] = step = xp.cast(iterations + 1, dtype)
        c["beta_1"], c["beta_2"] = (
            self._host.hyper_value(self, h, dtype) for h in self.HYPERS
        )
        c["alpha"], c["eps_hat"] = _rule.adam_coefficients(
            xp,
            self.convention,
            step=step,
            lr=c["lr"],
            beta_1=c["beta_1"],
            beta_2=c["beta_2"],
            epsilon=self.epsilon,
        )
        return c

    def _new_values(self, xp, x, g, slots, c, *, decay, l1=None):
        """``(x, m, v, vhat)`` after the step (``vhat`` None without amsgrad); ``l1``: an L1
        decay's ``d1_t`` (:data:`._rule.DECAY_DOC`)."""
        m, v, vhat = slots
        return _rule.adam_update(
            xp,
            self.convention,
            x=x,
            g=g,
            m=m,
            v=v,
            vhat=vhat,
            alpha=c["alpha"],
            eps_hat=c["eps_hat"],
            decay=decay,
            beta_1=c["beta_1"],
            beta_2=c["beta_2"],
            shrink=_rule.shrinkage(xp, x, l1),
        )


class SGDWSpec(Spec):
    __doc__ = _doc(
        """SGD (optionally with momentum or Nesterov momentum) with decoupled weight decay.""",
        """
    weight_decay: None (the default, as Keras's SGD: no decay), or the decoupled decay
        $\\lambda$ as `AdamW` takes it (a float, a schedule, a callable).  None keeps
        no `weight_decay` variable (the host SGD's variables exactly), so a value set
        later reaches only steps traced after it: give `weight_decay=0.0` to schedule it.
    momentum: in [0, 1), the momentum $\\mu$; 0 keeps no momentum slot at all.
    nesterov: bool, Nesterov momentum.
""",
        _rule.sgd_update.__doc__,
        """        from optcompat import SGDW

        model.compile(optimizer=SGDW(learning_rate=0.1, weight_decay=1e-4, momentum=0.9,
                                     nesterov=True), loss="mse")
        model.fit(x, y, epochs=2, verbose=0)
""",
    )

    kind = "sgdw"
    SLOT_GROUPS = (("momentum",),)
    SLOT_ATTRIBUTES = {"momentum": "momentums"}  # Keras 2 / 3 SGD's attribute
    HYPERS = ("momentum",)
    OPTIONAL_DECAY = True

    def __init__(self, learning_rate=0.01, weight_decay=None, momentum=0.0,
                 nesterov=False, convention=DEFAULT, exclude_from_weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="SGDW",
                 lr_multipliers=None, weight_decays=None, strict_names=False,
                 fast_path="auto", **kwargs):  # fmt: skip
        own = _validate.sgdw(momentum, nesterov, self._host.read_hyper)
        _construction.construct(self, own, locals())
        # a Python bool fixed here decides whether the slot exists (momentum stays settable);
        # a tensor or callable momentum: by its value now (a symbolic one: a slot)
        m = _checks.as_float(self, own["momentum"])
        self._has_momentum = m is None or m > 0

    def _has_slot(self, key):
        return self._has_momentum

    def _step_coefficients(self, xp, dtype, learning_rate, iterations, variable=None):
        """This step's coefficients in ``dtype``: ``lr``, ``decay``, ``momentum`` (``variable``'s
        own where it has an lr multiplier or decays)."""
        c = _step.rates(self, dtype, learning_rate, iterations, variable)
        c["momentum"] = self._host.hyper_value(self, "momentum", dtype)
        return c

    def _new_values(self, xp, x, g, slots, c, *, decay, l1=None):
        """``(x, buf)`` after the step (``buf`` None without momentum)."""
        return _rule.sgd_update(
            self.convention,
            x=x,
            g=g,
            buf=slots[0],
            lr=c["lr"],
            decay=decay,
            momentum=c["momentum"],
            nesterov=self.nesterov,
            shrink=_rule.shrinkage(xp, x, l1),
        )


SPECS = (AdamWSpec, SGDWSpec)


def make(spec, adapter, family, module, register):
    """The family's class for a declaration: ``spec`` first, then the family's ``adapter``;
    registered with the host's serialization by ``register``."""
    name = spec.__name__[: -len("Spec")]
    doc = spec.__doc__ + "\n    Family: %s (`optcompat.%s`).\n" % (
        family,
        module.rsplit(".", 1)[-1],
    )
    body = {
        "__doc__": doc,
        "__module__": module,
        "__qualname__": name,
        "SLOTS": tuple(key for group in spec.SLOT_GROUPS for key in group),
    }  # once, not per step
    return register(
        types.new_class(name, (spec, adapter), exec_body=lambda ns: ns.update(body))
    )
