r"""The AdamW / SGDW update rule, written once.

Plain functions over an array namespace ``xp`` that provides ``sqrt``, ``maximum`` and
``power`` (``numpy``, ``keras.ops``, or the small TensorFlow namespace an adapter binds).
They take current values and return new ones; the adapters only read and assign
variables.  Every convention (see :mod:`._conventions`) is the same few lines with
different coefficients.

With ``t`` the 1-based step, ``lr_t`` the learning rate at this step, ``lambda`` the
weight decay and ``x`` the weight *before* the step (both the decay and the step use it):

.. math::

    d_t &= \lambda \cdot \{\, lr_t \;(keras, torch) \mid 1 \;(tfa) \mid lr_t / lr_0 \;(paper, keras\text{-}adamw) \,\}

AdamW (``amsgrad`` replaces :math:`v_t` by :math:`\hat v_t = \max(\hat v_{t-1}, v_t)`):

.. math::

    m_t &= m_{t-1} + (1-\beta_1)(g_t - m_{t-1}) \\
    v_t &= v_{t-1} + (1-\beta_2)(g_t^2 - v_{t-1}) \\
    \alpha_t &= lr_t \sqrt{1-\beta_2^t} / (1-\beta_1^t) \\
    x_t &= x_{t-1} - d_t x_{t-1} - \alpha_t m_t / (\sqrt{v_t} + \hat\epsilon_t)

where :math:`\hat\epsilon_t = \epsilon` (keras, tfa, keras-adamw: epsilon outside the bias correction) or
:math:`\hat\epsilon_t = \epsilon\sqrt{1-\beta_2^t}` (torch, paper: which is exactly
:math:`lr_t\,\hat m_t / (\sqrt{\hat v_t} + \epsilon)`).

SGDW with momentum :math:`\mu` (no buffer at all when :math:`\mu = 0`):

.. math::

    keras:&\quad u_t = \mu u_{t-1} - lr_t g_t,\quad
        x_t = x_{t-1} - d_t x_{t-1} + \{u_t \mid \mu u_t - lr_t g_t \;(nesterov)\} \\
    torch:&\quad b_t = \mu b_{t-1} + g_t,\quad
        x_t = x_{t-1} - d_t x_{t-1} - lr_t \{b_t \mid g_t + \mu b_t \;(nesterov)\}

(torch sets :math:`b_1 = g_1`; with :math:`b_0 = 0` the formula gives the same.)

References: I. Loshchilov, F. Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019;
D. Kingma, J. Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015.
"""
from ._conventions import CONVENTIONS


def decay_coefficient(convention, weight_decay, lr, lr0):
    """:math:`d_t`, the fraction of the pre-step weight removed by decoupled decay; ``lr0``
    is the schedule's rate at step 0, or None where the rate is no schedule (a float or a
    callable: :math:`\eta_t = 1`, whatever the rate is -- zero included)."""
    scale = CONVENTIONS[convention].decay
    if scale == "lr":
        return lr * weight_decay
    if scale == "one" or lr0 is None:
        return weight_decay
    return (lr / lr0) * weight_decay


def decayed(convention, x, decay):
    """:math:`x (1 - d_t)`, rounded the way the convention's peer rounds it."""
    if CONVENTIONS[convention].decay_form == "scale":
        return x * (1 - decay)
    return x - x * decay


def adam_coefficients(xp, convention, step, lr, beta_1, beta_2, epsilon):
    """Return ``(alpha_t, eps_hat_t)`` for the 1-based ``step`` (a float tensor)."""
    bias_2 = 1 - xp.power(beta_2, step)
    alpha = lr * xp.sqrt(bias_2) / (1 - xp.power(beta_1, step))
    if CONVENTIONS[convention].epsilon == "inside":
        return alpha, epsilon * xp.sqrt(bias_2)
    return alpha, epsilon


def adam_update(xp, convention, x, g, m, v, vmax, alpha, eps_hat, decay, beta_1, beta_2):
    """One AdamW step; returns ``(x, m, v, vmax)`` (``vmax`` None without amsgrad)."""
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    if vmax is not None:
        vmax = xp.maximum(vmax, v)
    x = decayed(convention, x, decay) - (m * alpha) / (xp.sqrt(v if vmax is None else vmax) + eps_hat)
    return x, m, v, vmax


def sgd_update(convention, x, g, buf, lr, decay, momentum, nesterov):
    """One SGDW step; returns ``(x, buf)`` (``buf`` None when there is no momentum)."""
    x_decayed = decayed(convention, x, decay)
    if buf is None:
        return x_decayed - lr * g, None
    if CONVENTIONS[convention].momentum == "torch":
        buf = momentum * buf + g
        return x_decayed - lr * (g + momentum * buf if nesterov else buf), buf
    buf = momentum * buf - lr * g
    return x_decayed + (momentum * buf - lr * g if nesterov else buf), buf
