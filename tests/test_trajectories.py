"""40-step trajectories of optcompat vs the float64 reference, every convention and option.

The update-kernel tests run once per device (``conftest.device``): CPU always, GPU where the
env declares one (OPTCOMPAT_ENV_DEVICES), with the same tolerances; elsewhere the GPU cases
are deselected."""
import numpy as np
import pytest

import reference
from support import ADAM_CASES
from support import CONVENTIONS
from support import SGD_CASES
from support import TOL
from support import applies
from support import assert_close
from support import expected
from support import problem
from support import run
from support import steps
from support import worst


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


# keras2: its base class cannot call a plain function per step (test_tf_specifics checks it refuses one)
@applies(lambda facts, params: not (params["rate"] == "callable" and facts.family == "keras2"))
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
        except TypeError as e:
            pytest.fail("%r takes no callable learning rate: %s" % (host, str(e)[:150]))
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
    could pass vacuously); two that differ in float32 rounding only (torch, optax: the same
    rule, the decay rounded apart or with the step) stay within the trajectory tolerance."""
    x0, grads = problem()
    kw = dict(learning_rate=host.exponential_decay(0.02, 10, 0.5), weight_decay=0.1, epsilon=1e-3)
    finals = {c: run(host, "AdamW", dict(kw, convention=c), x0, grads)[-1][0] for c in CONVENTIONS}
    math = {c: reference.CONVENTION_MATH[c] for c in CONVENTIONS}
    for a in CONVENTIONS:
        for b in CONVENTIONS:
            if a < b and math[a] != math[b]:
                assert np.max(np.abs(finals[a] - finals[b])) > 1e-4, (a, b)
            elif a < b:
                assert np.max(np.abs(finals[a] - finals[b])) <= TOL, (a, b)


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
        if host.family == "keras2" and name == "SGDW" and not kwargs:
            n_slots = 1  # Keras 2's own SGD keeps an (unused) m per variable: files list it
        assert len(per_var) == n_slots * len(x0), (name, kwargs, shapes)
