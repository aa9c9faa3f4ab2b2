"""An independent float64 transcription of the conventions table (README.md), in NumPy.

Written from the equations as the peers state them -- not from optcompat's rule, which
rearranges them (e.g. the torch epsilon) -- so the two can disagree if either is wrong.
"""
import numpy as np


def exponential_decay(lr0, decay_steps, decay_rate):
    """Keras's ``ExponentialDecay`` (not staircase): lr0 * rate ** (step / decay_steps)."""
    return lambda step: lr0 * decay_rate ** (step / decay_steps)


def adamw(x0, grads, lr, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
          amsgrad=False, convention="keras"):
    """Trajectory (list of weights after each step) of AdamW; ``lr`` float or step -> rate."""
    sched = lr if callable(lr) else (lambda step: lr)
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
        elif convention == "torch":
            step = lr_t / (1 - beta_1 ** t) * m / (np.sqrt(vv) / np.sqrt(1 - beta_2 ** t) + epsilon)
        elif convention == "paper":
            mhat, vhat = m / (1 - beta_1 ** t), vv / (1 - beta_2 ** t)
            step = lr_t * mhat / (np.sqrt(vhat) + epsilon)
        else:
            raise ValueError(convention)
        x = x - _decay(convention, lr_t, lr_0, weight_decay) * x - step
        out.append(x.copy())
    return out


def sgdw(x0, grads, lr, weight_decay=0.0, momentum=0.0, nesterov=False, convention="keras"):
    sched = lr if callable(lr) else (lambda step: lr)
    lr_0 = sched(0) if callable(lr) else None  # a float rate: no schedule, eta_t = 1
    x = np.array(x0, np.float64)
    buf = np.zeros_like(x)
    out = []
    for i, g in enumerate(grads):
        g = np.asarray(g, np.float64)
        lr_t = sched(i)
        decay = _decay(convention, lr_t, lr_0, weight_decay) * x
        if convention == "torch":
            buf = g.copy() if i == 0 else momentum * buf + g
            step = lr_t * (g + momentum * buf if nesterov else buf)
            x = x - decay - step
        else:
            buf = momentum * buf - lr_t * g
            x = x - decay + (momentum * buf - lr_t * g if nesterov else buf)
        out.append(x.copy())
    return out


def _decay(convention, lr_t, lr_0, weight_decay):
    if convention in ("keras", "torch"):
        return lr_t * weight_decay
    if convention == "tfa":
        return weight_decay
    if convention in ("paper", "keras-adamw"):  # eta_t: the schedule multiplier (1 without one)
        return weight_decay if lr_0 is None else lr_t / lr_0 * weight_decay
    raise ValueError(convention)
