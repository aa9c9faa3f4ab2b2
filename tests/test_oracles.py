"""optcompat against real peers: the host's own AdamW / SGD, and torch.optim."""
import pytest

import reference
from deviations import DEVIATIONS
from deviations import match
from support import ORACLE_TOL
from support import applies
from support import expected
from support import has_builtin
from support import host_run
from support import problem
from support import run
from support import worst


def known(host, name):
    return match(("oracle", name), host.family, host.versions)


def assert_matches_host(host, name, ours, theirs, ref):
    if known(host, name) is None or worst(ours, theirs) <= ORACLE_TOL:
        assert worst(ours, theirs) <= ORACLE_TOL
        return
    # A documented host deviation (deviations.py): the host is off exact arithmetic by more
    # than float32 rounding, and optcompat must be at least as close to it as the host.
    assert worst(theirs, ref) > ORACLE_TOL
    assert worst(ours, ref) <= worst(theirs, ref)


# where each recorded deviation shows (deviations.DEVIATIONS, what ("oracle", name))
DEVIATION_CASES = {
    "AdamW": (reference.adamw, dict(learning_rate=0.01, weight_decay=0.05)),
    "SGDW": (reference.sgdw, dict(learning_rate=0.02, weight_decay=0.1, momentum=0.9)),
}


@applies(lambda facts, params: match(("oracle", params["name"]), facts.family, facts.versions))
@pytest.mark.parametrize("name", sorted(DEVIATION_CASES))
def test_known_deviations_are_still_real(host, name):
    """Each ("oracle", name) entry of deviations for this host must still reproduce (else
    remove it); collected only where one is recorded."""
    reason = known(host, name)
    assert reason is not None and any(d.reason is reason for d in DEVIATIONS)
    x0, grads = problem()
    fn, kw = DEVIATION_CASES[name]
    make = host.host_adamw if name == "AdamW" else host.host_sgd
    theirs, ref = host_run(host, lambda: make(**kw), x0, grads), expected(fn, kw, x0, grads)
    assert worst(theirs, ref) > ORACLE_TOL, reason
    assert worst(run(host, name, kw, x0, grads), ref) <= worst(theirs, ref)  # optcompat no farther


@applies(lambda facts, params: has_builtin(facts, "AdamW"))
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("schedule", [False, True])
def test_default_adamw_equals_host_adamw(host, amsgrad, schedule):
    x0, grads = problem()
    lr = host.exponential_decay(0.02, 10, 0.5) if schedule else 0.01
    kw = dict(learning_rate=lr, weight_decay=0.05, amsgrad=amsgrad)
    ours = run(host, "AdamW", kw, x0, grads)
    theirs = host_run(host, lambda: host.host_adamw(**kw), x0, grads)
    ref_kw = dict(kw, learning_rate=reference.exponential_decay(0.02, 10, 0.5) if schedule else 0.01)
    assert_matches_host(host, "AdamW", ours, theirs, expected(reference.adamw, ref_kw, x0, grads))


@applies(lambda facts, params: has_builtin(facts, "SGD(weight_decay)"))
@pytest.mark.parametrize("nesterov", [False, True])
def test_default_sgdw_equals_host_sgd_with_decay(host, nesterov):
    x0, grads = problem(1)
    kw = dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=nesterov)
    ours = run(host, "SGDW", kw, x0, grads)
    theirs = host_run(host, lambda: host.host_sgd(**kw), x0, grads)
    assert_matches_host(host, "SGDW", ours, theirs, expected(reference.sgdw, kw, x0, grads))


def _torch_trajectory(opt_cls, kw, x0, grads, sched=None):
    import torch

    params = [torch.nn.Parameter(torch.tensor(x, dtype=torch.float32)) for x in x0]
    opt = opt_cls(params, **kw)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, sched) if sched else None
    out = []
    for g in grads:
        for p, gi in zip(params, g):
            p.grad = torch.tensor(gi)
        opt.step()
        if lr_sched:
            lr_sched.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


@pytest.mark.installed("torch")  # the keras3-torch envs: torch 2.15 (keras3-torch), 2.13.0 (older Keras)
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("schedule", [False, True])
def test_torch_convention_equals_torch_adamw(host, amsgrad, schedule):
    import torch

    x0, grads = problem()
    lr = host.exponential_decay(0.02, 10, 0.5) if schedule else 0.01
    ours = run(host, "AdamW", dict(learning_rate=lr, weight_decay=0.05, amsgrad=amsgrad,
                                   epsilon=1e-8, convention="torch"), x0, grads)
    theirs = _torch_trajectory(
        torch.optim.AdamW, dict(lr=0.02 if schedule else 0.01, weight_decay=0.05, amsgrad=amsgrad,
                                eps=1e-8, foreach=False),
        x0, grads, sched=(lambda step: 0.5 ** (step / 10)) if schedule else None)
    assert worst(ours, theirs) <= ORACLE_TOL


@pytest.mark.installed("torch")  # the keras3-torch envs: torch 2.15 (keras3-torch), 2.13.0 (older Keras)
@pytest.mark.parametrize("nesterov", [False, True])
def test_torch_convention_equals_torch_sgd(host, nesterov):
    # torch's SGD decay is coupled (added to the gradient), so the oracle runs without decay.
    import torch

    x0, grads = problem(1)
    ours = run(host, "SGDW", dict(learning_rate=0.05, weight_decay=0.0, momentum=0.9,
                                  nesterov=nesterov, convention="torch"), x0, grads)
    theirs = _torch_trajectory(torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=nesterov,
                                                     foreach=False), x0, grads)
    assert worst(ours, theirs) <= ORACLE_TOL
