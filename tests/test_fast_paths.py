"""Every fast evaluation of the rule is held to the float64 reference and to the plain path.

A fast path (``optimizer.fast_path``) evaluates the same formulas differently: Keras 3 on
torch, ``"foreach"`` and ``"fused"`` over all variables at once (``optcompat/_torch_fast.py``);
TensorFlow variables (Keras 3 tensorflow backend, Keras 2, OptimizerV2), ``"fused"``: AdamW
and SGDW through TensorFlow's fused training kernels (``optcompat/_tf_fast.py``).
It must give the rule's numbers: within the trajectory tolerance of the float64 reference
(40 steps, every convention and option) and within 4e-6 of the plain per-variable path.
The fast paths each host has are a fact of the harness (support.Facts.fast_modes): a test is
deselected where its mode is not there, and fails where optcompat's differ from that table.
"""
import numpy as np
import pytest

import optcompat
import reference
from support import ADAM_CASES
from support import CONVENTIONS
from support import SGD_CASES
from support import TOL
from support import applies
from support import assert_close
from support import expected
from support import problem
from support import worst

# The fused torch kernel rounds the decay as x (1 - d) with a float32 (1 - d), the keras
# convention's plain path as x - x d: over these 40 steps (d = 5e-4) that alone is up to
# 2.6e-6 (measured), while both stay within 3.3e-6 of the float64 reference.
PLAIN_TOL = 4e-6
MODES = ["foreach", "fused"]


def has_mode(facts, params):
    """Whether the host has a fast path, and the test's ``mode`` (None: the plain path) of it."""
    modes = facts.fast_modes
    return bool(modes) and params.get("mode", "auto") in modes + (None, "auto")


pytestmark = applies(has_mode)


def make(host, name, kwargs, mode):
    kw = dict(kwargs)
    if isinstance(kw["learning_rate"], tuple):
        kw["learning_rate"] = host.exponential_decay(*kw["learning_rate"][1:])
    opt = host.make(name, **kw)
    modes = opt._fast_modes() if hasattr(opt, "_fast_modes") else ()
    assert tuple(modes) == host.facts.fast_modes, \
        "%r: optcompat's fast paths %s, the harness's table %s" % (host, modes, host.facts.fast_modes)
    opt.fast_path = mode
    return opt


def trajectory(host, opt, x0, grads, names=None):
    variables = [host.variable(x, name=(names[i] if names else "w%d" % i)) for i, x in enumerate(x0)]
    out = []
    for g in grads:
        host.apply(opt, g, variables)
        out.append([host.value(v) for v in variables])
    return out


def close_to_plain(fast, plain):
    worst = max(np.max(np.abs(a.astype(np.float64) - b)) for sa, sb in zip(fast, plain) for a, b in zip(sa, sb))
    assert worst <= PLAIN_TOL, "max |fast - plain| = %.3g > %.1g" % (worst, PLAIN_TOL)


RULES = {"AdamW": (ADAM_CASES, reference.adamw), "SGDW": (SGD_CASES, reference.sgdw)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name,case", [(n, c) for n in RULES for c in sorted(RULES[n][0])])
def test_fast_path_trajectory(host, name, case, convention, mode):
    cases, rule = RULES[name]
    kwargs = dict(cases[case], convention=convention)
    x0, grads = problem()
    fast = trajectory(host, make(host, name, kwargs, mode), x0, grads)
    assert_close(fast, expected(rule, kwargs, x0, grads), TOL)
    close_to_plain(fast, trajectory(host, make(host, name, kwargs, None), x0, grads))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_fast_path_excluded_variables_and_mixed_dtypes(host, name, mode):
    """One optimizer over float32 and float64 variables, one excluded from decay: the fast
    path groups them, and each gets its own rule."""
    kwargs = dict(learning_rate=0.01, weight_decay=0.1, exclude_from_weight_decay=["bias"])
    if name == "SGDW":
        kwargs.update(momentum=0.9, learning_rate=0.05)
    x0, grads = problem(seed=3, shapes=((3, 4), (5,), (2, 3)))
    x0[2], grads = x0[2].astype(np.float64), [[g[0], g[1], g[2].astype(np.float64)] for g in grads]
    names = ["kernel", "bias", "kernel64"]
    fast = trajectory(host, make(host, name, kwargs, mode), x0, grads, names)
    plain = trajectory(host, make(host, name, kwargs, None), x0, grads, names)
    close_to_plain(fast, plain)
    assert fast[-1][2].dtype == np.float64
    fn = reference.adamw if name == "AdamW" else reference.sgdw
    ref_kw = {k: v for k, v in kwargs.items() if k != "exclude_from_weight_decay"}
    decayed = expected(fn, ref_kw, [x0[0], x0[2]], [[g[0], g[2]] for g in grads])
    undecayed = expected(fn, dict(ref_kw, weight_decay=0.0), [x0[1]], [[g[1]] for g in grads])
    assert_close([[s[0], s[2]] for s in fast], decayed, TOL)
    assert_close([[s[1]] for s in fast], undecayed, TOL)


@pytest.mark.backends("torch")  # torch's fused kernels are the Keras 3 torch backend's
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_fused_torch_kernel_takes_every_convention(host, convention, monkeypatch):
    """On torch, ``fast_path="fused"`` runs ``torch._fused_adamw_`` for every convention (its
    decay ``lr_t * lambda_k`` with ``lambda_k = d_t / lr_t`` where the decay is not
    ``lr_t * lambda``) -- and falls back to foreach, with the rule's numbers, at a zero rate,
    where ``d_t / lr_t`` has no value."""
    import torch
    calls = []
    fused = torch._fused_adamw_

    def counted(*args, **kwargs):  # torch's own kernel, counted
        calls.append(kwargs["weight_decay"])
        return fused(*args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adamw_", counted)
    kwargs = dict(ADAM_CASES["schedule"], convention=convention)
    x0, grads = problem()
    opt = make(host, "AdamW", kwargs, "fused")
    assert_close(trajectory(host, opt, x0, grads), expected(reference.adamw, kwargs, x0, grads), TOL)
    assert len(calls) == len(grads)
    del calls[:]
    opt = make(host, "AdamW", dict(kwargs, learning_rate=0.0), "fused")
    traj = trajectory(host, opt, x0, grads[:3])
    ref = expected(reference.adamw, dict(kwargs, learning_rate=0.0), x0, grads[:3])
    assert worst(traj, ref) <= TOL
    assert len(calls) == (3 if optcompat.CONVENTIONS[convention].decay == "lr" else 0)


def test_fast_path_is_validated_and_kept_in_the_config(host):
    with pytest.raises(ValueError, match="fast_path"):
        host.make("AdamW", fast_path="fastest")
    opt = host.make("SGDW", fast_path=None)
    with pytest.raises(ValueError, match="fast_path"):
        opt.fast_path = "fastest"
    assert opt.fast_path is None and opt.get_config()["fast_path"] is None
    assert type(opt).from_config(opt.get_config()).fast_path is None
    assert host.make("AdamW").get_config()["fast_path"] == "auto"


@pytest.mark.parametrize("mode", MODES + [None])
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_decay_rounding_is_not_a_drift(host, name, mode):
    """Decay only (zero gradients), 600 steps at Keras's defaults (d = lr wd = 4e-6), where the
    rounding is largest relative to d.  ``x (1 - d)`` with a float32 ``1 - d`` is off by the
    same fraction of d for every weight (here -0.16 %); ``x - x d`` rounds per weight (up to
    1.4 % here, unbiased on average).  Either way the decay applied stays within 2 % of the
    exact one per weight and 0.5 % on average -- and a skipped or doubled decay fails."""
    lr, wd, steps = 1e-3, 4e-3, 600
    opt = make(host, name, dict(learning_rate=lr, weight_decay=wd), mode)
    x0 = [np.linspace(0.5, 2.0, 1000).astype(np.float32)]
    variables = [host.variable(x0[0], name="w")]
    zero = [np.zeros_like(x0[0])]
    for _ in range(steps):
        host.apply(opt, zero, variables)
    applied = 1.0 - host.value(variables[0]).astype(np.float64) / x0[0]
    exact = 1.0 - (1.0 - lr * wd) ** steps
    np.testing.assert_allclose(applied, exact, rtol=0.02)
    assert abs(applied.mean() / exact - 1) < 0.005, applied.mean() / exact - 1
