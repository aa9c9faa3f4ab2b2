"""40-step trajectories of optcompat vs the float64 reference, every convention and option.

The update-kernel tests run once per device (``conftest.device``): CPU always, GPU where the
host's backend sees one, with the same tolerances; without a GPU those cases are skipped."""
import numpy as np
import pytest

import optcompat

import reference

CONVENTIONS = list(optcompat.CONVENTIONS)  # a new convention must be in reference.py too
STEPS = 40
TOL = 2e-5

ADAM_CASES = {
    "plain": dict(learning_rate=0.01, weight_decay=0.05),
    "amsgrad": dict(learning_rate=0.01, weight_decay=0.05, amsgrad=True),
    "betas-eps": dict(learning_rate=0.003, weight_decay=0.2, beta_1=0.8, beta_2=0.95, epsilon=1e-3),
    "schedule": dict(learning_rate=("exp", 0.02, 10, 0.5), weight_decay=0.1),
    "schedule-amsgrad": dict(learning_rate=("exp", 0.02, 10, 0.5), weight_decay=0.1, amsgrad=True),
}
SGD_CASES = {
    "plain": dict(learning_rate=0.05, weight_decay=0.1),
    "momentum": dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9),
    "nesterov": dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True),
    "schedule-momentum": dict(learning_rate=("exp", 0.05, 10, 0.5), weight_decay=0.1, momentum=0.5),
}


def problem(seed=0, shapes=((3, 4), (5,))):
    rng = np.random.default_rng(seed)
    x0 = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(STEPS)]
    return x0, grads


def run(host, name, kwargs, x0, grads):
    kw = dict(kwargs)
    lr = kw["learning_rate"]
    if isinstance(lr, tuple):  # build the same schedule in the host and in the reference
        kw["learning_rate"] = host.exponential_decay(*lr[1:])
    return steps(host, host.make(name, **kw), x0, grads)[0]


def steps(host, opt, x0, grads):
    """``opt`` applied to fresh variables from ``x0``, one step per entry of ``grads``: the
    weights after every step, and the variables."""
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    traj = []
    for g in grads:
        host.apply(opt, g, variables)
        traj.append([host.value(v) for v in variables])
    return traj, variables


def expected(fn, kwargs, x0, grads):
    kw = dict(kwargs)
    if isinstance(kw["learning_rate"], tuple):
        kw["learning_rate"] = reference.exponential_decay(*kw["learning_rate"][1:])
    lr = kw.pop("learning_rate")
    per_var = [fn(x, [g[i] for g in grads], lr, **kw) for i, x in enumerate(x0)]
    return [[per_var[i][t] for i in range(len(x0))] for t in range(len(grads))]


def worst(a, b):
    """max |a - b| over two trajectories (lists of steps, each a list of arrays)."""
    return max(np.max(np.abs(x - y)) for sa, sb in zip(a, b) for x, y in zip(sa, sb))


def assert_close(traj, ref, tol):
    error = worst(traj, ref)
    assert error <= tol, "max |optcompat - reference| over %d steps = %.3g > %.1g" % (len(traj), error, tol)
    # the run must move the weights, or closeness proves nothing
    assert max(np.max(np.abs(a - b)) for a, b in zip(ref[-1], ref[0])) > 10 * tol


@pytest.mark.usefixtures("device")
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("case", sorted(ADAM_CASES))
def test_adamw_matches_reference(host, case, convention):
    kwargs = dict(ADAM_CASES[case], convention=convention)
    x0, grads = problem()
    assert_close(run(host, "AdamW", kwargs, x0, grads), expected(reference.adamw, kwargs, x0, grads), TOL)


@pytest.mark.usefixtures("device")
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("case", sorted(SGD_CASES))
def test_sgdw_matches_reference(host, case, convention):
    kwargs = dict(SGD_CASES[case], convention=convention)
    x0, grads = problem(1)
    assert_close(run(host, "SGDW", kwargs, x0, grads), expected(reference.sgdw, kwargs, x0, grads), TOL)


@pytest.mark.parametrize("rate", ["float", "callable"])
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_zero_learning_rate(host, name, convention, rate):
    """A rate of 0 (a frozen phase, a warmup's first step): no step, and the convention's
    decay -- for paper / keras-adamw without a schedule eta_t = 1, never 0 / 0."""
    kwargs = dict(learning_rate=0.0, weight_decay=0.1, convention=convention)
    if name == "SGDW":
        kwargs["momentum"] = 0.9
    x0, grads = problem()
    grads = grads[:5]
    ref = expected(reference.adamw if name == "AdamW" else reference.sgdw, kwargs, x0, grads)
    if rate == "callable":
        try:
            # Keras 3.0 calls it with the iteration count, later releases and tf.keras without
            opt = host.make(name, **dict(kwargs, learning_rate=lambda *iterations: 0.0))
        except TypeError as e:  # keras2: its base class cannot call a plain function per step
            pytest.skip("%r takes no callable learning rate: %s" % (host, str(e)[:150]))
        traj = steps(host, opt, x0, grads)[0]
    else:
        traj = run(host, name, kwargs, x0, grads)
    error = worst(traj, ref)
    assert np.isfinite(error) and error <= TOL, error


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_update_runs_on_the_device(host, device, name):
    """The update-kernel tests above really run where the ``device`` fixture says: the
    variables and the optimizer's slots live on that device after a step."""
    x0, grads = problem()
    opt = host.make(name, learning_rate=0.01, weight_decay=0.1, **({"momentum": 0.9} if name == "SGDW" else {}))
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    host.apply(opt, grads[0], variables)
    assert [host.device_of(v) for v in variables] == [device] * len(variables)
    slots = [v for v in _slot_variables(opt) if tuple(v.shape) in [x.shape for x in x0]]
    assert slots, "no slot variables found on %r" % opt
    assert {host.device_of(v) for v in slots} == {device}


def _slot_variables(opt):
    variables = opt.variables
    return list(variables() if callable(variables) else variables)


def test_conventions_differ(host):
    """Every two conventions give different AdamW numbers under a schedule (else the tests above
    could pass vacuously)."""
    x0, grads = problem()
    kw = dict(learning_rate=host.exponential_decay(0.02, 10, 0.5), weight_decay=0.1, epsilon=1e-3)
    finals = {c: run(host, "AdamW", dict(kw, convention=c), x0, grads)[-1][0] for c in CONVENTIONS}
    for a in CONVENTIONS:
        for b in CONVENTIONS:
            if a < b:
                assert np.max(np.abs(finals[a] - finals[b])) > 1e-4, (a, b)


def test_excluded_variables_get_no_decay(host):
    x0, grads = problem()
    kwargs = dict(learning_rate=0.01, weight_decay=0.5, exclude_from_weight_decay=["w1"])
    traj = run(host, "AdamW", kwargs, x0, grads)
    decayed = expected(reference.adamw, dict(learning_rate=0.01, weight_decay=0.5), x0, grads)
    undecayed = expected(reference.adamw, dict(learning_rate=0.01, weight_decay=0.0), x0, grads)
    assert_close([[s[0]] for s in traj], [[s[0]] for s in decayed], TOL)
    assert_close([[s[1]] for s in traj], [[s[1]] for s in undecayed], TOL)


def test_no_unneeded_slots(host):
    x0, grads = problem()
    for name, kwargs, n_slots in [("AdamW", {}, 2), ("AdamW", dict(amsgrad=True), 3),
                                  ("SGDW", {}, 0), ("SGDW", dict(momentum=0.9), 1)]:
        opt = host.make(name, **kwargs)
        variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
        host.apply(opt, grads[0], variables)
        shapes = [s.shape for s in host.slots(opt)]
        per_var = [s for s in shapes if s in [x.shape for x in x0]]
        assert len(per_var) == n_slots * len(x0), (name, kwargs, shapes)
