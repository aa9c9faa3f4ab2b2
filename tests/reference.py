"""An independent float64 transcription of the conventions table (README.md), in NumPy.

Written from the equations as the peers state them -- not from optcompat's rule, which
rearranges them (e.g. the torch epsilon) -- so the two can disagree if either is wrong.
"""
import numpy as np


def exponential_decay(lr0, decay_steps, decay_rate):
    """Keras's ``ExponentialDecay`` (not staircase): lr0 * rate ** (step / decay_steps)."""
    return lambda step: lr0 * decay_rate ** (step / decay_steps)


# -- learning-rate schedules, from their definitions (step: the 0-based iteration count) ----

def cosine_decay(initial, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    """Keras 3's ``CosineDecay``: a linear warm-up to ``warmup_target`` (if given), then
    ``peak * ((1 - alpha) * (1 + cos(pi * min(s, S) / S)) / 2 + alpha)`` over the rest."""
    def at(step):
        if warmup_target is not None and step < warmup_steps:
            return initial + (warmup_target - initial) * step / warmup_steps
        peak = initial if warmup_target is None else warmup_target
        s = min(step - (warmup_steps if warmup_target is not None else 0), decay_steps)
        return peak * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * s / decay_steps)) + alpha)
    return at


def cosine_decay_restarts(initial, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
    """SGDR as Keras defines it, by walking the periods: period i lasts ``first * t_mul**i``
    steps and starts at ``m_mul**i`` times the first's height; within it the cosine falls to
    ``alpha * initial``."""
    def at(step):
        start, length, i = 0.0, float(first_decay_steps), 0
        while step >= start + length:
            start, length, i = start + length, length * t_mul, i + 1
        frac = (step - start) / length
        return initial * ((1 - alpha) * 0.5 * m_mul ** i * (1 + np.cos(np.pi * frac)) + alpha)
    return at


def warmup(schedule, warmup_steps, initial=0.0):
    """A linear ramp from ``initial`` to ``schedule(0)``, then ``schedule(s - warmup_steps)``."""
    def at(step):
        if step < warmup_steps:
            return initial + (schedule(0) - initial) * step / warmup_steps
        return schedule(step - warmup_steps)
    return at


def keras_adamw_annealing(lr, total_iterations, eta_min=0.0, eta_max=1.0, t_cur=0, autorestart=True):
    """keras-adamw 1.38's ``use_cosine_annealing`` as its code runs it: step s multiplies the
    rate by ``eta_t``, which starts at 1 and is recomputed after each step from ``t_cur``,
    itself advanced first (back to 0 after ``total_iterations - 1`` with autorestart)."""
    def at(step):
        eta, t = 1.0, t_cur
        for _ in range(step):  # the updates made at the end of the steps before this one
            t = 0 if (autorestart and t == total_iterations - 1) else t + 1
            eta = eta_min + 0.5 * (eta_max - eta_min) * (1 + np.cos(np.pi * t / (total_iterations - 1)))
        return lr * eta
    return at


# each convention's arithmetic, written out here (independent of optcompat._conventions):
# (what scales the decay, where epsilon sits, the SGD momentum form); torch and optax differ
# only in how float32 rounds the decay, which this float64 reference does not see
CONVENTION_MATH = {"keras": ("lr", "outside", "keras"), "torch": ("lr", "inside", "torch"),
                   "optax": ("lr", "inside", "torch"), "tfa": ("one", "outside", "keras"),
                   "paper": ("schedule", "inside", "keras"), "keras-adamw": ("schedule", "outside", "keras")}


def adamw(x0, grads, lr, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
          amsgrad=False, convention="keras", lr_0=None, l1=0.0):
    """Trajectory (list of weights after each step) of AdamW; ``lr`` float or step -> rate
    (``weight_decay`` too);
    ``lr_0``: what eta_t = lr_t / lr_0 is measured against (default: the schedule at 0);
    ``l1``: an L1 decay, ``sign(x)`` scaled as ``weight_decay`` scales ``x``."""
    sched = lr if callable(lr) else (lambda step: lr)
    if lr_0 is None:
        lr_0 = sched(0) if callable(lr) else None  # a float rate: no schedule, eta_t = 1
    x = np.array(x0, np.float64)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    vmax = np.zeros_like(x)
    out = []
    for i, g in enumerate(grads):
        g = np.asarray(g, np.float64)
        t = i + 1
        lr_t = sched(i)  # a schedule sees the 0-based iteration count
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        if convention in ("keras", "tfa", "keras-adamw"):  # keras-adamw: optimizers_v2.AdamW
            step = lr_t * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * m / (np.sqrt(vv) + epsilon)
        elif convention in ("torch", "optax"):
            step = lr_t / (1 - beta_1 ** t) * m / (np.sqrt(vv) / np.sqrt(1 - beta_2 ** t) + epsilon)
        elif convention == "paper":
            mhat, vhat = m / (1 - beta_1 ** t), vv / (1 - beta_2 ** t)
            step = lr_t * mhat / (np.sqrt(vhat) + epsilon)
        else:
            raise ValueError(convention)
        x = (x - _decay(convention, lr_t, lr_0, _at(weight_decay, i)) * x
             - _decay(convention, lr_t, lr_0, l1) * np.sign(x) - step)
        out.append(x.copy())
    return out


def sgdw(x0, grads, lr, weight_decay=0.0, momentum=0.0, nesterov=False, convention="keras", lr_0=None,
         l1=0.0):
    sched = lr if callable(lr) else (lambda step: lr)
    if lr_0 is None:
        lr_0 = sched(0) if callable(lr) else None  # a float rate: no schedule, eta_t = 1
    x = np.array(x0, np.float64)
    buf = np.zeros_like(x)
    out = []
    for i, g in enumerate(grads):
        g = np.asarray(g, np.float64)
        lr_t = sched(i)
        decay = (_decay(convention, lr_t, lr_0, _at(weight_decay, i)) * x
                 + _decay(convention, lr_t, lr_0, l1) * np.sign(x))
        if convention in ("torch", "optax"):
            buf = g.copy() if i == 0 else momentum * buf + g
            step = lr_t * (g + momentum * buf if nesterov else buf)
            x = x - decay - step
        else:
            buf = momentum * buf - lr_t * g
            x = x - decay + (momentum * buf - lr_t * g if nesterov else buf)
        out.append(x.copy())
    return out


def _at(weight_decay, step):
    """``weight_decay`` at the 0-based ``step``: a number, or a function of the step (a schedule)."""
    return weight_decay(step) if callable(weight_decay) else weight_decay


def _decay(convention, lr_t, lr_0, weight_decay):
    if convention in ("keras", "torch", "optax"):
        return lr_t * weight_decay
    if convention == "tfa":
        return weight_decay
    if convention in ("paper", "keras-adamw"):  # eta_t: the schedule multiplier (1 without one)
        return weight_decay if lr_0 is None else lr_t / lr_0 * weight_decay
    raise ValueError(convention)
