"""Fast evaluations of the rule on Keras 3's torch backend: all variables in one call.

The rule (:mod:`._rule`) stays the one definition; this module evaluates the same
formulas, with the coefficients from the plain path's own code (the declaration's
``_step_coefficients``, :mod:`._optimizers`), over *lists* of tensors instead of Keras's
per-variable ``update_step`` (a dozen small eager ops and their temporaries per variable).
Variables are grouped by (dtype, device, decayed or not) (:func:`groups`), so mixed dtypes
and ``exclude_from_weight_decay`` keep their own coefficients.  The adapter
(:class:`.keras3._Torch`) hands :func:`step` the tensors, the coefficients and the
optimizer's settings; this module reads nothing of the optimizer.

``"foreach"``
    ``torch._foreach_*`` ops, in place: ``m.lerp_(g, 1-b1)`` (= ``m + (g-m)(1-b1)``),
    ``v = b2 v + (1-b2) g g``, ``vhat = max(vhat, v)``, then the decay in the convention's
    ``decay_form`` (``x + (-d) x`` for ``x - x d``, or ``x (1 - d)``) and
    ``x += -alpha m / (sqrt(v) + eps_hat)``; one temporary (the denominator).  Every
    convention and option; SGDW likewise.
``"fused"`` (and ``"auto"``, the default)
    torch's fused AdamW kernel (``torch._fused_adamw_``), every convention.  The kernel
    evaluates ``x (1 - lr_t lambda_k) - lr_t/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps')``:
    the rule with ``eps' = eps_hat / sqrt(1-b2^t)`` (``eps`` where epsilon sits inside the
    bias correction, ``eps / sqrt(1-b2^t)`` where outside) and ``lambda_k = lambda`` where
    the decay is ``lr_t lambda`` (keras, torch), else ``d_t / lr_t`` (tfa, paper,
    keras-adamw; foreach at a zero rate, where that has no value).  Weight, gradient and
    both moments are read once and written once: the bytes-moved floor.  A torch without
    the kernel for the device (``_detect.torch_fused``) uses foreach.

    SGDW: torch's fused SGD kernel (``torch._fused_sgd_``: ``b = mu b + (1 - damp) g``,
    ``x -= lr_k (g + mu b | b)``), one read of weight, gradient and buffer and one write of
    weight and buffer, after the decay pass.  The torch momentum form is the kernel as is;
    the keras form ``u = mu u - lr g; x += u`` is the kernel with ``damp = 1 + lr`` and
    ``lr_k = -1`` (the kernel forms ``1 - damp = -lr`` in float64: exact for float32 and
    narrower weights, so float64 weights and keras-form Nesterov stay on foreach).  Without
    momentum the decay rides in the kernel's coupled weight decay, which at momentum 0 *is*
    the decoupled one: ``x - lr (g + (d/lr) x) = x (1 - d) - lr g``, one pass.

Decay rounding: the fused kernel decays as ``x (1 - d)`` with a float32 ``(1 - d)``, as
``torch.optim.AdamW`` and Keras's own torch AdamW do, where the keras convention's plain
path rounds ``x - x d`` (the TensorFlow fast path, :mod:`._tf_fast`, keeps the convention's
rounding).  A float32 ``1 - d`` is off by at most half a float32 ulp of 1 (3e-8), the same
way every step: the decay applied is off by at most ``3e-8 / d`` of itself (at Keras's
defaults, ``d = lr wd = 4e-6``, ``1 - d`` rounds to ``1 - 0.9984 d``: 0.16 % less decay
each step).  ``fast_path="foreach"`` or ``None`` keeps the subtract
rounding, at one more pass over the weights.

These round differently from the plain path (fused multiply-adds, float64 coefficients in
the kernel), never differently in exact arithmetic; ``tests/test_fast_paths.py`` holds every
mode to the float64 reference (the trajectory tolerance) and to the plain path (4e-6).
``optimizer.fast_path = None`` selects the plain per-variable path, and so does tracing by
``torch.compile`` (Keras's ``jit_compile=True``;
:meth:`.keras3._Torch._backend_update_step`).  Coefficients are read as Python floats
(one device sync per group and step on a GPU).  Imported only on the torch backend.
"""

import torch

from . import _detect
from . import _validate
from ._conventions import CONVENTIONS

# The dtypes torch's fused AdamW and SGD kernels take.
_FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def mode(fast_path):
    """``fast_path`` checked; None where it selects the per-variable path."""
    return _validate.fast_path(fast_path)


def groups(grads, variables, decays):
    """``(dtype, decays, [(gradient, variable), ...])`` for the variables that share their
    coefficients: the same dtype, device and ``decays(variable)``."""
    found = {}
    for g, v in zip(grads, variables):
        x = v.value
        found.setdefault((x.dtype, x.device, decays(v)), (v.dtype, []))[1].append(
            (g, v)
        )
    return [(dtype, key[2], pairs) for key, (dtype, pairs) in found.items()]


def step(kind, fast_path, *, xs, gs, slots, c, decays, t, settings):
    """One step of ``kind`` ("adamw", "sgdw") on the tensors ``xs`` (weights, in place),
    ``gs`` (gradients), ``slots`` (one list per declared slot, None for an absent one),
    with the step coefficients ``c`` of their dtype, ``decays`` (whether they decay), ``t()``
    the 1-based step as an int, and ``settings`` (convention, betas, epsilon, momentum,
    nesterov as Python values)."""
    fused = fast_path in ("auto", "fused")
    with torch.no_grad():
        gs = [_as(g, x) for g, x in zip(gs, xs)]
        decay = _scalar(c["decay"]) if decays else 0.0
        if kind == "adamw":
            # The fused kernel wins at every size, tiny tensors included (docs/benchmarks.md):
            # no size threshold.
            if not (
                fused
                and _fused_allowed(xs[0])
                and _adamw_fused(xs, gs, slots, c, decay, t, settings)
            ):
                _adamw_foreach(xs, gs, slots, c, decay, settings)
            return
        lr, buf = _scalar(c["lr"]), slots[0]
        if not (fused and _sgd_fused(xs, gs, buf, lr, decay, settings)):
            _sgdw_foreach(xs, gs, buf, lr, decay, settings)


def _as(g, x):
    return g if g.dtype == x.dtype else g.to(x.dtype)


def _fused_allowed(x):
    return x.dtype in _FUSED_DTYPES and _detect.torch_fused("adamw", x.device.type)


def _decay_(convention, xs, decay):
    """``x <- decayed(x)`` in place, in one pass and no temporary: ``x (1 - d)`` or
    ``x + (-d) x`` (the subtract form ``x - x d``, rounded once)."""
    if decay == 0.0:
        return  # x - x * 0 == x
    # "combined" (optax) rounds as the subtract form here: the kernels add their step to the
    # decayed x themselves (within the fast paths' tolerance of the rule; fast_path=None: exact)
    if CONVENTIONS[convention].decay_form == "scale":
        torch._foreach_mul_(xs, 1 - decay)
    else:
        torch._foreach_add_(xs, xs, alpha=-decay)


def _scalar(value):
    """A coefficient as a Python float, as the in-place foreach ops take it (``alpha=``,
    ``value=``).  It is the float32 (or float64) value itself, exactly; on a GPU, reading it
    synchronizes once per group and step."""
    return float(value)


def _adamw_foreach(xs, gs, slots, c, decay, s):
    ms, us, vmax = slots
    torch._foreach_lerp_(ms, gs, 1 - s["beta_1"])  # m + (g - m)(1 - b1)
    torch._foreach_mul_(us, s["beta_2"])  # v + (g g - v)(1 - b2) = b2 v + (1 - b2) g g
    torch._foreach_addcmul_(us, gs, gs, value=1 - s["beta_2"])
    if vmax is not None:
        torch._foreach_maximum_(vmax, us)
    denom = torch._foreach_sqrt(us if vmax is None else vmax)  # the one temporary
    torch._foreach_add_(denom, _scalar(c["eps_hat"]))
    _decay_(s["convention"], xs, decay)
    # - alpha m / (sqrt(v) + eps_hat)
    torch._foreach_addcdiv_(xs, ms, denom, value=-_scalar(c["alpha"]))


def _adamw_fused(xs, gs, slots, c, decay, t, s):
    """AdamW through ``torch._fused_adamw_``; False, having changed nothing, where the
    kernel cannot give the rule (a decay not ``lr_t lambda`` at a zero rate)."""
    lr = _scalar(c["lr"])  # lr_t in the variable dtype, as the rule
    convention = s["convention"]
    if decay == 0.0:  # excluded from decay, or lambda = 0
        weight_decay = 0.0
    elif CONVENTIONS[convention].decay == "lr":
        weight_decay = _scalar(c["weight_decay"])
    elif lr > 0.0:
        weight_decay = decay / lr  # the kernel's lr_t * lambda_k is d_t
    else:
        return False
    t = t()
    bias_2 = 1.0 - s["beta_2"] ** t
    eps = s["epsilon"]
    if CONVENTIONS[convention].epsilon == "outside":
        eps = eps / bias_2**0.5  # the kernel adds eps' to sqrt(v)/sqrt(1-b2^t)
    ms, us, vmax = slots
    step = torch.full((), float(t), dtype=torch.float32, device=xs[0].device)
    torch._fused_adamw_(
        xs,
        gs,
        ms,
        us,
        vmax if vmax is not None else [],
        [step] * len(xs),
        lr=lr,
        beta1=s["beta_1"],
        beta2=s["beta_2"],
        weight_decay=weight_decay,
        eps=eps,
        amsgrad=vmax is not None,
        maximize=False,
    )
    return True


def _sgd_fused(xs, gs, bufs, lr, decay, s):
    """SGDW through ``torch._fused_sgd_`` where it gives the rule (see the module
    docstring); False, having changed nothing, where it does not.  One kernel call, its
    arguments by the case:

    * no momentum: ``x (1 - d) - lr g``, the decay as the kernel's coupled decay (one pass);
    * torch's form: ``b = mu b + g; x -= lr (g + mu b | b)`` on ``decayed(x)``;
    * Keras's form: ``u = mu u + (1 - (1 + lr)) g = mu u - lr g; x -= (-1) u`` on
      ``decayed(x)`` (no Nesterov, no float64: the kernel's form cannot give them).
    """
    x = xs[0]
    if not _detect.torch_fused("sgd", x.device.type) or x.dtype not in _FUSED_DTYPES:
        return False
    convention, nesterov = s["convention"], s["nesterov"]
    torch_form = CONVENTIONS[convention].momentum == "torch"
    if bufs is None:
        if lr == 0.0:
            _decay_(convention, xs, decay)
            return True
        kernel = dict(
            weight_decay=decay / lr,
            momentum=0.0,
            lr=lr,
            dampening=0.0,
            nesterov=False,
        )
    elif torch_form:
        kernel = dict(
            weight_decay=0.0,
            momentum=s["momentum"],
            lr=lr,
            dampening=0.0,
            nesterov=bool(nesterov),
        )
    elif nesterov or x.dtype == torch.float64:
        return False
    else:
        kernel = dict(
            weight_decay=0.0,
            momentum=s["momentum"],
            lr=-1.0,
            dampening=1.0 + lr,
            nesterov=False,
        )
    if bufs is not None:
        _decay_(convention, xs, decay)  # the momentum forms add to decayed(x)
    # buffers start at zero: no first-step copy
    torch._fused_sgd_(
        xs,
        gs,
        [] if bufs is None else bufs,
        maximize=False,
        is_first_step=False,
        **kernel,
    )
    return True


def _sgdw_foreach(xs, gs, bufs, lr, decay, s):
    convention, mu = s["convention"], s["momentum"]
    _decay_(convention, xs, decay)  # every update below adds to decayed(x)
    if bufs is None:  # x = decayed(x) - lr g
        torch._foreach_add_(xs, gs, alpha=-lr)
    elif CONVENTIONS[convention].momentum == "torch":
        # b = mu b + g;  x = decayed(x) - lr (g + mu b | b)
        torch._foreach_mul_(bufs, mu)
        torch._foreach_add_(bufs, gs)
        if s["nesterov"]:  # torch.optim.SGD's own evaluation: d = g + mu b; x += -lr d
            torch._foreach_add_(xs, torch._foreach_add(gs, bufs, alpha=mu), alpha=-lr)
        else:
            torch._foreach_add_(xs, bufs, alpha=-lr)
    else:
        # u = mu u - lr g;  x = decayed(x) + (mu u - lr g | u)
        torch._foreach_mul_(bufs, mu)
        torch._foreach_add_(bufs, gs, alpha=-lr)
        if s["nesterov"]:
            torch._foreach_add_(xs, bufs, alpha=mu)
            torch._foreach_add_(xs, gs, alpha=-lr)
        else:
            torch._foreach_add_(xs, bufs)
