r"""The AdamW / SGDW update rule, written once.

Plain functions over an array namespace ``xp`` that provides ``cast``, ``sqrt``,
``maximum`` and ``power`` (``numpy``, ``keras.ops``, or the small TensorFlow namespace of
:mod:`._tf`).  They take current values and return new ones; the adapters only read and
assign variables.  Every convention (:mod:`._conventions`) is the same few lines with
different coefficients.  The equations: :data:`DECAY_DOC`, :func:`adam_update`,
:func:`sgd_update` (the optimizers' docstrings are made of them).
"""

from ._conventions import CONVENTIONS

DECAY_DOC = r"""Decoupled decay: with $t$ the 1-based step, $\mathrm{lr}_t$ the learning
    rate at this step, $\lambda$ the weight decay and $x$ the weight before the step
    (the decay and the step both use it), the fraction of $x$ removed is

    $$
    d_t = \begin{cases}
      \lambda \, \mathrm{lr}_t & \text{keras, torch, optax} \\
      \lambda & \text{tfa} \\
      \lambda \, \mathrm{lr}_t / \mathrm{lr}_0 & \text{paper, keras-adamw}
    \end{cases}
    $$

    with $\mathrm{lr}_0$ the schedule's reference rate ($\mathrm{lr}_t / \mathrm{lr}_0 = 1$
    where the rate is no schedule).  A variable given its own decays $(l_1, l_2)$
    (`weight_decays`, keras-adamw's) has $\lambda = l_2$ and also loses
    $s_t = d^{(1)}_t \operatorname{sign}(x)$, $d^{(1)}_t$ being $l_1$ scaled as $d_t$ is; an
    `lr_multipliers` factor $k$ multiplies its $\mathrm{lr}_t$ (and so $d_t$ where $d_t$
    follows $\mathrm{lr}_t$), not the schedule multiplier $\mathrm{lr}_t / \mathrm{lr}_0$.
"""

REFERENCES = """References:
        I. Loshchilov, F. Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019.
        D. Kingma, J. Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015.
"""


def decay_coefficient(convention, weight_decay, lr, lr0, eta=None):
    r""":math:`d_t`, the fraction of the pre-step weight removed by decoupled decay; ``lr0``
    is the schedule's rate at step 0, or None where the rate is no schedule (a float or a
    callable: :math:`\eta_t = 1`, whatever the rate is -- zero included).  ``eta``: the
    schedule multiplier :math:`\eta_t` itself, where the optimizer holds it (keras-adamw's
    ``eta_t`` variable, ``optcompat.keras_adamw``; ``lr`` is then ``eta_t`` times the rate), in
    place of ``lr / lr0``."""
    scale = CONVENTIONS[convention].decay
    if scale == "lr":
        return lr * weight_decay
    if eta is not None and scale != "one":
        return eta * weight_decay
    if scale == "one" or lr0 is None:
        return weight_decay
    return (lr / lr0) * weight_decay


def decayed(convention, x, decay, shrink=None):
    """:math:`x (1 - d_t)`, rounded the way the convention's peer rounds it; minus the L1
    shrinkage ``shrink`` (:func:`shrinkage`) where a variable has one.  (Applied alone, as
    ``decoupled()`` classes apply it before the host's step, ``"combined"`` is ``x - x d``.)"""
    if CONVENTIONS[convention].decay_form == "scale":
        x_decayed = x * (1 - decay)
    else:
        x_decayed = x - x * decay
    return x_decayed if shrink is None else x_decayed - shrink


def stepped(convention, x, decay, change, shrink=None, subtract=False):
    """``x (1 - d_t) + change`` (``- change`` where ``subtract``: the step's own sign, so no
    negation is added), rounded as the convention's peer: ``x (1 - d) + change`` /
    ``(x - x d) + change``, or ``"combined"`` (optax: its update ``-lr (u + wd x)`` is one sum)
    ``x + (change - x d)`` / ``x - (change + x d)``, where a tiny ``d x`` is not rounded away
    against ``x`` on its own."""
    if CONVENTIONS[convention].decay_form == "combined":
        if subtract:
            total = change + x * decay
            return x - (total if shrink is None else total + shrink)
        total = change - x * decay
        return x + (total if shrink is None else total - shrink)
    x_decayed = decayed(convention, x, decay, shrink)
    return x_decayed - change if subtract else x_decayed + change


def shrinkage(xp, x, l1):
    """:math:`s_t = d1_t sign(x)`, an L1 decay's step (None without one)."""
    return None if l1 is None else l1 * xp.sign(x)


def adam_coefficients(xp, convention, *, step, lr, beta_1, beta_2, epsilon):
    """Return ``(alpha_t, eps_hat_t)`` for the 1-based ``step`` (a float tensor)."""
    bias_2 = 1 - xp.power(beta_2, step)
    alpha = lr * xp.sqrt(bias_2) / (1 - xp.power(beta_1, step))
    if CONVENTIONS[convention].epsilon == "inside":
        return alpha, epsilon * xp.sqrt(bias_2)
    return alpha, epsilon


def adam_update(
    xp,
    convention,
    *,
    x,
    g,
    m,
    v,
    vhat,
    alpha,
    eps_hat,
    decay,
    beta_1,
    beta_2,
    shrink=None,
):
    r"""AdamW update ($g$ the gradient; returns `(x, m, v, vhat)`, `vhat` None without amsgrad):

    $$
    \begin{aligned}
    m_t &= m + (1 - \beta_1)(g - m) \\
    v_t &= v + (1 - \beta_2)(g^2 - v) \\
    \hat v_t &= \max(\hat v, v_t) \quad \text{(amsgrad: used in place of } v_t\text{)} \\
    \alpha_t &= \mathrm{lr}_t \, \sqrt{1 - \beta_2^t} \, / \, (1 - \beta_1^t) \\
    x_t &= x - d_t \, x - \alpha_t \, m_t / (\sqrt{v_t} + \hat\epsilon_t)
      \quad (- \, s_t \text{ with an L1 decay})
    \end{aligned}
    $$

    with $\hat\epsilon_t = \epsilon$ (keras, tfa, keras-adamw: epsilon outside the bias
    correction) or $\hat\epsilon_t = \epsilon \sqrt{1 - \beta_2^t}$ (torch, optax, paper: exactly
    $\mathrm{lr}_t \, \hat m_t / (\sqrt{\hat v_t} + \epsilon)$ with the bias-corrected moments).
    """
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    if vhat is not None:
        vhat = xp.maximum(vhat, v)
    x = stepped(
        convention,
        x,
        decay,
        (m * alpha) / (xp.sqrt(v if vhat is None else vhat) + eps_hat),
        shrink,
        subtract=True,
    )
    return x, m, v, vhat


def sgd_update(convention, *, x, g, buf, lr, decay, momentum, nesterov, shrink=None):
    r"""SGDW update with momentum $\mu$ (returns `(x, buf)`; no buffer when $\mu = 0$):

    $$
    \begin{aligned}
    \text{no momentum:} \quad & x_t = x - d_t \, x - \mathrm{lr}_t \, g \\
    \text{keras, tfa, paper, keras-adamw:} \quad & u_t = \mu u - \mathrm{lr}_t \, g,
      \quad x_t = x - d_t \, x + u_t \\
    \text{nesterov:} \quad & x_t = x - d_t \, x + \mu u_t - \mathrm{lr}_t \, g \\
    \text{torch, optax:} \quad & b_t = \mu b + g, \quad x_t = x - d_t \, x - \mathrm{lr}_t \, b_t \\
    \text{nesterov:} \quad & x_t = x - d_t \, x - \mathrm{lr}_t (g + \mu b_t)
    \end{aligned}
    $$

    `torch.optim` sets $b_1 = g_1$; with $b_0 = 0$ the formula gives the same.  An L1 decay
    subtracts $s_t$ too.
    """
    if buf is None:
        return stepped(convention, x, decay, lr * g, shrink, subtract=True), None
    if CONVENTIONS[convention].momentum == "torch":
        buf = momentum * buf + g
        return stepped(
            convention,
            x,
            decay,
            lr * (g + momentum * buf if nesterov else buf),
            shrink,
            subtract=True,
        ), buf
    buf = momentum * buf - lr * g
    return stepped(
        convention, x, decay, momentum * buf - lr * g if nesterov else buf, shrink
    ), buf


def normalized_weight_decay(
    lambda_norm,
    total_iterations=None,
    batch_size=None,
    samples_per_epoch=None,
    epochs=None,
):
    r"""The paper's normalized weight decay (Loshchilov & Hutter, Appendix B.1).

    $$
    \lambda = \lambda_\mathrm{norm} \sqrt{\frac{b}{B T}} = \lambda_\mathrm{norm}
      \sqrt{\frac{1}{\mathrm{total\_iterations}}}
    $$

    with $b$ the batch size, $B$ the training points per epoch and $T$ the epochs:
    keras-adamw's `l2 * sqrt(1 / total_iterations_wd)`.

    Args:
        lambda_norm: float >= 0, the normalized decay.
        total_iterations: the steps of the run; or give the next three.
        batch_size: int >= 1.
        samples_per_epoch: int >= 1.
        epochs: int >= 1.

    Returns:
        The weight decay $\lambda$, a float.

    Raises:
        TypeError: neither `total_iterations` nor all of the other three are given.
        ValueError: a value out of its range, named in the message.

    Example:
        ```python
        import optcompat

        assert abs(optcompat.normalized_weight_decay(0.05, total_iterations=100) - 0.005) < 1e-12
        ```
    """
    from . import _validate

    lambda_norm = _validate.at_least("lambda_norm", lambda_norm)
    if total_iterations is None:
        if None in (batch_size, samples_per_epoch, epochs):
            raise TypeError(
                "normalized_weight_decay() needs `total_iterations`, or `batch_size`, "
                "`samples_per_epoch` and `epochs`."
            )
        ratio = _validate.at_least("batch_size", batch_size, 1.0) / (
            _validate.at_least("samples_per_epoch", samples_per_epoch, 1.0)
            * _validate.at_least("epochs", epochs, 1.0)
        )
    else:
        ratio = 1.0 / _validate.at_least("total_iterations", total_iterations, 1.0)
    return lambda_norm * ratio**0.5
