"""The rule's AdamW step through TensorFlow's fused Adam kernel (``ResourceApplyAdam``).

TensorFlow's C++ Adam kernel computes, in the variable's dtype::

    alpha = lr * sqrt(1 - beta2_power) / (1 - beta1_power)
    m += (g - m) * (1 - beta1);   v += (g * g - v) * (1 - beta2)
    x -= (m * alpha) / (sqrt(v) + epsilon)

which is :func:`._rule.adam_update` term for term, with ``epsilon`` = the rule's
``eps_hat_t`` (``eps`` for keras / tfa, ``eps sqrt(1 - b2^t)`` for torch / paper) and, with
amsgrad, ``ResourceApplyAdamWithAmsgrad`` (``vhat = max(vhat, v)``; unused for now: it
has no XLA kernel).  Sparse gradients are densified first, as the plain path does.  The decoupled decay
comes first, in the convention's rounding (:func:`._rule.decayed`): ``x -= x d``
(``assign_sub``) or ``x *= (1 - d)``.  One kernel per variable replaces about a dozen ops
and their temporaries in a plain ``tf.function``; under XLA the kernel is compiled too.
Coefficients come from the plain path's code (``_coefficients``, the same ``pow`` of the
same step), so the result equals the plain path to float32 rounding;
``tests/test_fast_paths.py`` holds it to the float64 reference and to the plain path.
Used for float variables that expose a resource ``handle``, without amsgrad.
"""
from . import _rule
from ._conventions import CONVENTIONS

_FLOATS = ("float16", "bfloat16", "float32", "float64")


def usable(opt, tf, variable):
    """Whether the kernel applies: a float variable with a resource handle, no amsgrad
    (``ResourceApplyAdamWithAmsgrad`` has no XLA kernel, and a step cannot tell whether it is
    being compiled)."""
    return (not opt.amsgrad and getattr(variable, "handle", None) is not None
            and tf.as_dtype(variable.dtype).name in _FLOATS)


def adamw(opt, tf, gradient, variable, learning_rate, iterations):
    xp = opt.xp
    dtype = variable.dtype
    lr, decay = opt._coefficients(variable, learning_rate)
    step = xp.cast(iterations + 1, dtype)
    _, eps_hat = _rule.adam_coefficients(xp, opt.convention, step, lr, opt.beta_1, opt.beta_2, opt.epsilon)
    beta_1 = tf.constant(opt.beta_1, dtype)
    beta_2 = tf.constant(opt.beta_2, dtype)
    if not (isinstance(decay, float) and decay == 0.0):
        if CONVENTIONS[opt.convention].decay_form == "scale":
            variable.assign(variable * (1 - decay))
        else:
            variable.assign_sub(variable * decay)
    m, v, vmax = (opt._slot(s, variable) for s in (opt._momentums, opt._velocities, opt._velocity_hats))
    args = dict(var=variable.handle, m=m.handle, v=v.handle, beta1_power=tf.pow(beta_1, step),
                beta2_power=tf.pow(beta_2, step), lr=lr, beta1=beta_1, beta2=beta_2,
                epsilon=tf.cast(eps_hat, dtype), grad=tf.cast(opt._dense(gradient), dtype))
    if vmax is None:
        tf.raw_ops.ResourceApplyAdam(**args)
    else:
        tf.raw_ops.ResourceApplyAdamWithAmsgrad(vhat=vmax.handle, **args)
