"""The rule's AdamW / SGDW steps through TensorFlow's fused training kernels.

TensorFlow's C++ Adam kernel (``ResourceApplyAdam``) computes, in the variable's dtype::

    alpha = lr * sqrt(1 - beta2_power) / (1 - beta1_power)
    m += (g - m) * (1 - beta1);   v += (g * g - v) * (1 - beta2)
    x -= (m * alpha) / (sqrt(v) + epsilon)

which is :func:`._rule.adam_update` term for term, with ``epsilon`` = the rule's
``eps_hat_t`` (``eps`` for keras / tfa / keras-adamw, ``eps sqrt(1 - b2^t)`` for torch /
paper); amsgrad
stays on the plain path (``ResourceApplyAdamWithAmsgrad`` has no XLA kernel).  SGDW's
kernels are :func:`._rule.sgd_update` likewise (:func:`apply_sgd`).

The decoupled decay comes first, in the convention's rounding (:func:`._rule.decayed`):
``x - x d`` (keras, tfa, paper, keras-adamw -- as Keras's own AdamW on TensorFlow rounds it:
``x d``, then subtracted -- in one kernel, ``ResourceApplyGradientDescent(x, d, x)``, which
subtracts ``d`` times the weights from the weights without a temporary ``x d``) or
``x (1 - d)`` (torch: one pass whose result replaces the variable's buffer).  The kernels have
no decay term, so in a plain ``tf.function`` the decay costs a pass over the weights that the
kernel alone does not (see ``docs/benchmarks.md``); under XLA it fuses.

One kernel per variable replaces about a dozen ops and their temporaries in a plain
``tf.function``.  Coefficients come from the plain path's code (``_coefficients``, the same
``pow`` of the same step), so the result equals the plain path to float32 rounding;
``tests/test_fast_paths.py`` holds it to the float64 reference and to the plain path.
Used by all three TensorFlow families (Keras 3 on tensorflow, Keras 2, OptimizerV2) for
float variables that expose a resource ``handle``; sparse gradients are densified first,
as the plain path does.  ``optimizer.fast_path = None`` selects the plain path.  The
adapters hand this module what a step needs -- handles, coefficients, the decay -- through
:func:`apply` (:class:`._tf.FusedKernels`, OptimizerV2's ``_resource_apply_dense``); it
reads nothing of the optimizer.
"""

import threading

from . import _validate
from ._conventions import CONVENTIONS

_FLOATS = ("float16", "bfloat16", "float32", "float64")


def usable(tf, fast_path, amsgrad, variable, convention):
    """Whether the kernel applies: ``fast_path`` not None, no amsgrad
    (``ResourceApplyAdamWithAmsgrad`` has no XLA kernel, and a step cannot tell whether it is
    being compiled), a convention whose decay is a pass of its own (not ``"combined"``: the
    kernels add their step to ``x`` themselves), a float variable with a resource handle."""
    return (
        _validate.fast_path(fast_path) is not None
        and not amsgrad
        and CONVENTIONS[convention].decay_form != "combined"
        and getattr(variable, "handle", None) is not None
        and tf.as_dtype(variable.dtype).name in _FLOATS
    )


class step_scope(object):
    """``with step_scope(owner):`` around one ``apply``.  Inside a ``tf.function`` the step's
    coefficients (learning rate, decay, step, beta powers) are then built once per (graph,
    device, dtype) and shared by every variable, as OptimizerV2's ``_prepare_local`` shares
    them, instead of a dozen scalar ops per variable (docs/benchmarks.md measures what that
    saves).  Eager steps compute their own (nothing to save).  Thread-local: where the
    updates run in another thread than ``apply`` (a ``MirroredStrategy``'s merge), they find
    no scope and compute their own."""

    def __init__(self, owner):
        self.key = id(owner)

    def __enter__(self):
        caches = _LOCAL.__dict__.setdefault("caches", {})
        self.outer = caches.get(self.key)
        caches[self.key] = {}
        return self

    def __exit__(self, *exc_info):
        caches = _LOCAL.caches
        if self.outer is None:
            caches.pop(self.key, None)
        else:
            caches[self.key] = self.outer


_LOCAL = threading.local()


def shared(tf, owner, variable, make):
    """``make()``, or what it gave for an earlier variable of this step (see
    :class:`step_scope`)."""
    cache = getattr(_LOCAL, "caches", {}).get(id(owner))
    if cache is None or tf.executing_eagerly():
        return make()
    # The graph: a nested function (an XLA-compiled update, a cond branch) builds its own.
    key = (
        id(tf.compat.v1.get_default_graph()),
        variable.handle.device,
        tf.as_dtype(variable.dtype).name,
    )
    if key not in cache:
        cache[key] = make()
    return cache[key]


def kernel_coefficients(tf, kind, c, dtype):
    """The rule's step coefficients ``c`` (:meth:`._optimizers.AdamWSpec._step_coefficients`)
    with what the kernels take besides, in ``dtype``: for AdamW the betas as tensors and
    ``beta_i ** t``; for SGDW the momentum."""
    c = dict(c)
    if kind == "adamw":
        c["beta_1"], c["beta_2"] = (tf.cast(c[b], dtype) for b in ("beta_1", "beta_2"))
        c["beta_1_power"], c["beta_2_power"] = (
            tf.pow(c[b], c["step"]) for b in ("beta_1", "beta_2")
        )
    else:
        c["momentum"] = tf.cast(c["momentum"], dtype)
    return c


def apply(
    tf,
    kind,
    *,
    var,
    slots,
    grad,
    c,
    decay,
    convention,
    decay_may_be_zero,
    nesterov=False,
):
    """One step on resource handles: ``var``, its ``slots`` (AdamW: ``m``, ``v``; SGDW: the
    momentum buffer, or none), the dense gradient ``grad`` in the variable's dtype, the
    coefficients ``c`` (:func:`kernel_coefficients`) and this variable's decay ``decay``
    (None: no decay pass).  ``x <- decayed(x)`` in the convention's rounding, then the
    kind's kernel (:func:`_adam`, :func:`_sgd`), ordered explicitly (for TF1 graphs too);
    ``decay_may_be_zero``: see :func:`_decay`.  Returns the op."""
    dtype = grad.dtype
    if decay is not None and isinstance(decay, float) and decay == 0.0:
        decay = None
    form = CONVENTIONS[convention].decay_form
    with tf.control_dependencies(
        _decay(tf, var, decay, dtype, form, decay_may_be_zero)
    ):
        lr = tf.cast(c["lr"], dtype)
        if kind == "adamw":
            return _adam(tf, c, lr, var=var, slots=slots, grad=grad)
        return _sgd(
            tf,
            c,
            lr,
            var=var,
            slots=slots,
            grad=grad,
            momentum=CONVENTIONS[convention].momentum,
            nesterov=nesterov,
        )


def _decay(tf, var, decay, dtype, decay_form, may_be_zero=False):
    """``x <- decayed(x)`` on the handle ``var``; the ops to order after (none for None).
    ``may_be_zero``: inside a graph, the pass over the weights runs only where the decay is
    not 0 (a no-op pass would cost SGDW with momentum a full extra pass: docs/benchmarks.md)."""
    if decay is None:
        return []
    decay = tf.cast(decay, dtype)

    def assign():
        x = tf.raw_ops.ReadVariableOp(resource=var, dtype=dtype)
        # one pass, whose result replaces the variable's buffer
        if decay_form == "scale":
            op = tf.raw_ops.AssignVariableOp(resource=var, value=x * (1 - decay))
        else:  # x - x d, rounded as Keras's own AdamW on TensorFlow (x d, then subtracted), in one
            # kernel, var -= alpha delta with delta = x: no temporary x d (docs/benchmarks.md)
            op = tf.raw_ops.ResourceApplyGradientDescent(var=var, alpha=decay, delta=x)
        with tf.control_dependencies([op]):
            return tf.constant(True)

    if not may_be_zero or tf.executing_eagerly():
        return [assign()]
    return [tf.cond(tf.equal(decay, 0), lambda: tf.constant(False), assign)]


def _sgd(tf, c, lr, *, var, slots, grad, momentum, nesterov):
    """SGDW's kernel, whose update is the rule's for the ``momentum`` form
    (:func:`._rule.sgd_update`), ``lr`` a tensor in the gradient's dtype:

    * no momentum buffer, ``ResourceApplyGradientDescent``: ``x -= lr g``;
    * keras, ``ResourceApplyKerasMomentum``: ``u = mu u - lr g; x += u`` (Nesterov:
      ``x += mu u - lr g``);
    * torch, ``ResourceApplyMomentum``: ``b = mu b + g; x -= lr b`` (Nesterov:
      ``x -= lr g + lr mu b``).
    """
    if not slots:
        return tf.raw_ops.ResourceApplyGradientDescent(var=var, alpha=lr, delta=grad)
    kernel = (
        tf.raw_ops.ResourceApplyMomentum
        if momentum == "torch"
        else tf.raw_ops.ResourceApplyKerasMomentum
    )
    return kernel(
        var=var,
        accum=slots[0],
        lr=lr,
        grad=grad,
        momentum=tf.cast(c["momentum"], grad.dtype),
        use_nesterov=bool(nesterov),
    )


def _adam(tf, c, lr, *, var, slots, grad):
    """AdamW's kernel, ``ResourceApplyAdam`` on ``var`` and its slots ``m``, ``v``; ``lr``
    a tensor in the gradient's dtype, ``c``'s ``beta_i_power`` is ``beta_i ** t`` for the
    1-based step ``t``."""
    m, v = slots
    return tf.raw_ops.ResourceApplyAdam(  # the handles and gradient, then coefficients
        var=var,
        m=m,
        v=v,
        grad=grad,
        lr=lr,
        epsilon=tf.cast(c["eps_hat"], grad.dtype),
        beta1=c["beta_1"],
        beta2=c["beta_2"],
        beta1_power=c["beta_1_power"],
        beta2_power=c["beta_2_power"],
    )
