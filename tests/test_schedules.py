"""optcompat.schedules in every family: values against the float64 definitions (tests/reference.py),
trajectories across restart boundaries against the float64 reference optimizer, the host's own
schedules, torch's CosineAnnealingWarmRestarts and keras-adamw's annealing as oracles, saving
and loading with the model, and bad arguments refused."""
import importlib

import numpy as np
import pytest

import reference
from support import ENV, TOL, assert_close, expected, problem, steps, worst

STEPS = 80  # schedule values checked at 0..STEPS-1: several restarts of every case

# case -> (class name, arguments, the float64 definition of the same schedule)
CASES = {
    "cosine": ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=30),
               reference.cosine_decay(0.1, 30)),
    "cosine-alpha": ("CosineDecay", dict(initial_learning_rate=0.05, decay_steps=17, alpha=0.2),
                     reference.cosine_decay(0.05, 17, alpha=0.2)),
    "cosine-warmup": ("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=40, alpha=0.1,
                                          warmup_target=0.1, warmup_steps=12),
                      reference.cosine_decay(0.01, 40, 0.1, warmup_target=0.1, warmup_steps=12)),
    "restarts": ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10),
                 reference.cosine_decay_restarts(0.1, 10)),
    "restarts-t1": ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=9, t_mul=1.0,
                                                m_mul=0.8, alpha=0.05),
                    reference.cosine_decay_restarts(0.1, 9, 1.0, 0.8, 0.05)),
    "restarts-t1.5": ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=4, t_mul=1.5,
                                                  m_mul=0.5, alpha=0.1),
                      reference.cosine_decay_restarts(0.1, 4, 1.5, 0.5, 0.1)),
    "restarts-t3": ("CosineDecayRestarts", dict(initial_learning_rate=0.2, first_decay_steps=2, t_mul=3.0),
                    reference.cosine_decay_restarts(0.2, 2, 3.0)),
    "warmup-constant": ("WarmUp", dict(schedule=0.1, warmup_steps=8),
                        reference.warmup(lambda s: 0.1, 8)),
    "annealing": ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=12),
                  reference.keras_adamw_annealing(0.1, 12)),
    "annealing-bounds": ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=7, eta_min=0.1,
                                                 eta_max=0.9, t_cur=3),
                         reference.keras_adamw_annealing(0.1, 7, 0.1, 0.9, 3)),
    "annealing-no-restart": ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=10, autorestart=False),
                             reference.keras_adamw_annealing(0.1, 10, autorestart=False)),
}


def classes(host):
    """optcompat's schedule classes for ``host``'s family."""
    return importlib.import_module("optcompat").family_module(host.family).SCHEDULES


def build(host, name, kwargs):
    return classes(host)[name](**kwargs)


def values(host, schedule, n=STEPS):
    """The schedule at 0..n-1, called as the host's optimizers call it: with the step counter
    (an int64 variable) -- as float64."""
    counter = host.variable(np.array(0, np.int64), name="step")
    out = []
    for k in range(n):
        counter.assign(np.array(k, np.int64))
        out.append(float(host.value(schedule(counter))))
    return np.array(out)


def close(ours, theirs, scale, tol=1e-6):
    """float32 arithmetic: within ``tol`` of the schedule's scale, at every step."""
    error = np.max(np.abs(np.asarray(ours) - np.asarray(theirs)))
    assert error <= tol * scale, "max |difference| %.3g > %.1g" % (error, tol * scale)


@pytest.mark.parametrize("case", sorted(CASES))
def test_schedule_equals_its_float64_definition(host, case):
    name, kwargs, definition = CASES[case]
    ours = values(host, build(host, name, kwargs))
    close(ours, [definition(k) for k in range(STEPS)], 0.2)
    assert np.ptp(ours) > 0.01  # the schedule moves


def test_warmup_in_front_of_a_schedule(host):
    """WarmUp wraps any schedule: optcompat's and the host's own (ExponentialDecay)."""
    s = classes(host)
    inner = s["CosineDecayRestarts"](0.1, 10, t_mul=1.0)
    close(values(host, s["WarmUp"](inner, 6, initial_learning_rate=0.01)),
          [reference.warmup(reference.cosine_decay_restarts(0.1, 10, 1.0), 6, 0.01)(k) for k in range(STEPS)], 0.1)
    host_exp = host.exponential_decay(0.1, 10, 0.5)
    close(values(host, s["WarmUp"](host_exp, 5)),
          [reference.warmup(reference.exponential_decay(0.1, 10, 0.5), 5)(k) for k in range(STEPS)], 0.1)


# -- the host's own schedules as oracles --------------------------------------------------------

def host_schedule(host, name):
    """The host's own schedule class ``name``: under optimizers.schedules, or (TF 2.2-2.x)
    keras.experimental; None where this release has none."""
    return (getattr(host.keras.optimizers.schedules, name, None)
            or getattr(getattr(host.keras, "experimental", None), name, None))


@pytest.mark.parametrize("case", sorted(c for c in CASES if CASES[c][0] in ("CosineDecay", "CosineDecayRestarts")))
def test_schedule_equals_the_hosts_own(host, case):
    """Keras's own CosineDecay / CosineDecayRestarts (warm-up: where the host's has one)."""
    name, kwargs, _ = CASES[case]
    theirs_cls = host_schedule(host, name)
    if theirs_cls is None:
        pytest.skip("%r has no %s" % (host, name))
    kw = dict(kwargs)
    try:
        theirs = theirs_cls(**kw)
    except TypeError as e:  # warmup_target arrived in TF 2.13 / Keras 3
        assert "warmup" in str(e)
        pytest.skip("%r's %s has no warm-up (%s)" % (host, name, e))
    close(values(host, build(host, name, kwargs)), values(host, theirs), 0.2, tol=1e-6)


def test_restart_boundaries_are_exact(host):
    """At every restart the rate is back at the period's top (m_mul^i initial): no period is
    entered one step late or early by float32 rounding (t_mul = 1.5 and 3 included)."""
    for t_mul, m_mul, first in ((1.5, 0.5, 4), (3.0, 1.0, 2), (1.0, 0.9, 9), (2.0, 1.0, 10)):
        s = build(host, "CosineDecayRestarts", dict(initial_learning_rate=1.0, first_decay_steps=first,
                                                    t_mul=t_mul, m_mul=m_mul))
        start, length, i = 0.0, float(first), 0
        ours = values(host, s, 400)
        checked = 0
        while start < 400:
            if start == int(start):  # (t_mul = 1.5: some periods start between two steps)
                assert abs(ours[int(start)] - m_mul ** i) <= 1e-6, (t_mul, i, start)
                assert ours[int(start) - 1] < 0.5 * m_mul ** (i - 1) if i else True  # the end of the one before
                checked += 1
            start, length, i = start + length, length * t_mul, i + 1
        assert checked >= 4


@pytest.mark.backends("torch")
@pytest.mark.parametrize("t_mult", [1, 2])
def test_restarts_equal_torch_cosine_annealing_warm_restarts(host, t_mult):
    """torch's CosineAnnealingWarmRestarts(T_0, T_mult, eta_min), stepped once per step, is
    CosineDecayRestarts(lr, T_0, t_mul=T_mult, alpha=eta_min / lr) (the keras3-torch env)."""
    import torch

    lr, t0, eta_min = 0.1, 7, 0.004
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=t_mult, eta_min=eta_min)
    theirs = []
    for _ in range(STEPS):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = values(host, build(host, "CosineDecayRestarts", dict(
        initial_learning_rate=lr, first_decay_steps=t0, t_mul=float(t_mult), alpha=eta_min / lr)))
    close(ours, theirs, lr, tol=1e-6)


# -- in the optimizers: trajectories across restarts ---------------------------------------------

RULES = {"AdamW": reference.adamw, "SGDW": reference.sgdw}
OPTIMIZER_CASES = {
    # (optimizer, its arguments, schedule case or a WarmUp of one)
    "adamw-restarts": ("AdamW", dict(weight_decay=0.1, amsgrad=True), "restarts"),
    "adamw-warmup-restarts": ("AdamW", dict(weight_decay=0.1), ("warmup", "restarts-t1.5")),
    "adamw-annealing": ("AdamW", dict(weight_decay=0.1), "annealing"),
    "sgdw-restarts": ("SGDW", dict(weight_decay=0.1, momentum=0.9, nesterov=True), "restarts-t1"),
    "sgdw-cosine-warmup": ("SGDW", dict(weight_decay=0.1, momentum=0.5), "cosine-warmup"),
}


def scheduled(host, spec):
    """(optcompat's schedule, its float64 definition, eta_t's reference rate)."""
    if isinstance(spec, tuple):  # a warm-up in front of a case
        inner, definition, base = scheduled(host, spec[1])
        return (classes(host)["WarmUp"](inner, 5, initial_learning_rate=0.0),
                reference.warmup(definition, 5), base)
    name, kwargs, definition = CASES[spec]
    s = build(host, name, kwargs)
    return s, definition, s.base_learning_rate


@pytest.mark.parametrize("convention", ["keras", "torch", "tfa", "paper", "keras-adamw"])
@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
def test_trajectory_across_restarts(host, case, convention):
    """40 steps across restart boundaries equal the float64 reference, in every convention
    (paper, keras-adamw: the decay follows eta_t = lr_t / base_learning_rate)."""
    name, kwargs, spec = OPTIMIZER_CASES[case]
    schedule, definition, base = scheduled(host, spec)
    x0, grads = problem()
    ours = steps(host, host.make(name, learning_rate=schedule, convention=convention, **kwargs), x0, grads)[0]
    ref = expected(RULES[name], dict(kwargs, learning_rate=definition, convention=convention, lr_0=base), x0, grads)
    assert_close(ours, ref, TOL)


# -- saving and loading ----------------------------------------------------------------------------

def _keras_config_roundtrip(host, schedule):
    """The schedule through the host's own schedule (de)serialization (what an optimizer's
    get_config / from_config and model files use)."""
    ns = host.keras.optimizers.schedules
    return ns.deserialize(ns.serialize(schedule))


@pytest.mark.parametrize("case", sorted(CASES))
def test_schedule_config_roundtrips_through_the_host(host, case):
    name, kwargs, _ = CASES[case]
    schedule = build(host, name, kwargs)
    again = _keras_config_roundtrip(host, schedule)
    assert type(again) is type(schedule)
    assert again.get_config() == schedule.get_config()
    assert {k: again.get_config()[k] for k in kwargs} == kwargs  # the arguments as given
    close(values(host, again, 30), values(host, schedule, 30), 0.2, tol=0.0)


@pytest.mark.applies(lambda facts, params: params["fmt"] in facts.formats)  # .keras: TF 2.12+
@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("own", [False, True], ids=["optcompat", "host-adam"])
def test_saved_with_the_model(host, fmt, own, tmp_path):
    """A model compiled with a schedule (a WarmUp of CosineDecayRestarts), optcompat's AdamW or
    the host's own Adam, saved and loaded: the schedule comes back, same class, same values."""
    s = classes(host)
    schedule = s["WarmUp"](s["CosineDecayRestarts"](0.02, 10, m_mul=0.5), 3)
    opt = host.host_adam(learning_rate=schedule) if own else host.make("AdamW", learning_rate=schedule,
                                                                       weight_decay=0.01)
    model = host.dense_model()
    model.compile(optimizer=opt, loss="mean_squared_error")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    path = host.save(model, fmt, str(tmp_path / "m"))
    if own and fmt == "h5":
        # the host's own optimizer reads .h5 by class name (TF 2.13+: a registered schedule of
        # any package needs custom_objects there): as the README says
        loaded = host.keras.models.load_model(path, custom_objects={"WarmUp": type(schedule),
                                                                    "CosineDecayRestarts": type(schedule.schedule)})
    else:
        loaded = host.load_model(path)
    # the schedule itself (the public learning_rate gives its current value in Keras 2 / 3)
    lr = loaded.optimizer._hyper["learning_rate"] if host.family == "legacy" else loaded.optimizer._learning_rate
    assert type(lr).__name__ == "WarmUp" and type(lr) is type(schedule), type(lr)
    close(values(host, lr, 30), values(host, schedule, 30), 0.02, tol=0.0)


# -- another family's optimizer takes the default family's schedule --------------------------------

@pytest.mark.applies(lambda facts, params: len({f for f in ENV.families}) > 1 and facts.family != ENV.default)
def test_another_familys_optimizer_takes_the_default_schedule(host):
    """``optcompat.schedules.X`` is the default family's class; an optimizer of another family
    (optcompat.legacy.AdamW next to Keras 3) takes it, made again for its own Keras."""
    from optcompat import schedules

    given = schedules.WarmUp(schedules.CosineDecayRestarts(0.05, 10), 4)
    opt = host.make("AdamW", learning_rate=given, weight_decay=0.1)
    x0, grads = problem()
    ours = steps(host, opt, x0, grads)[0]
    ref = expected(reference.adamw, dict(learning_rate=reference.warmup(reference.cosine_decay_restarts(0.05, 10), 4),
                                         weight_decay=0.1), x0, grads)
    assert_close(ours, ref, TOL)


# -- bad arguments ----------------------------------------------------------------------------------

BAD = [
    ("CosineDecay", dict(initial_learning_rate=-0.1, decay_steps=10), ValueError, "initial_learning_rate"),
    ("CosineDecay", dict(initial_learning_rate=float("nan"), decay_steps=10), ValueError, "initial_learning_rate"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=0), ValueError, "decay_steps"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=2.5), TypeError, "decay_steps"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10, alpha=1.5), ValueError, "alpha"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10, warmup_target="1"), TypeError, "warmup_target"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10, warmup_steps=-1), ValueError, "warmup_steps"),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10, t_mul=0.5), ValueError, "t_mul"),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10, m_mul=-1.0), ValueError, "m_mul"),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=True), TypeError, "first_decay_steps"),
    ("WarmUp", dict(schedule=lambda step: 0.1, warmup_steps=3), TypeError, "schedule"),
    ("WarmUp", dict(schedule=0.1, warmup_steps=3, initial_learning_rate=-1.0), ValueError, "initial_learning_rate"),
    ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=1), ValueError, "total_iterations"),
    ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=10, t_cur=10), ValueError, "t_cur"),
    ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=10, autorestart=1), TypeError, "autorestart"),
    ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=10, eta_max=float("inf")), ValueError, "eta_max"),
    ("CosineAnnealing", dict(learning_rate=0.1, total_iterations=10, eta_minn=0.1), TypeError, "eta_minn"),
]


@pytest.mark.parametrize("name,kwargs,error,argument", BAD, ids=["%s-%s" % (b[0], b[3]) for b in BAD])
def test_bad_arguments_are_refused(host, name, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        build(host, name, kwargs)


def test_paper_convention_refuses_a_schedule_at_zero(host):
    """eta_t = lr_t / base: a schedule whose base rate is 0 cannot scale the decay."""
    with pytest.raises(ValueError, match="learning_rate"):
        host.make("AdamW", learning_rate=build(host, "CosineDecay", dict(initial_learning_rate=0.0, decay_steps=5)),
                  convention="paper")


def test_trajectories_differ_from_keras_cosine_without_restarts(host):
    """The restarts matter: the old README mapping (CosineDecay(lr, T - 1)) of keras-adamw's
    annealing stops at 0 after one period; CosineAnnealing restarts (a check that the oracle
    comparison below cannot pass by accident)."""
    annealing = values(host, build(host, "CosineAnnealing", dict(learning_rate=0.01, total_iterations=8)), 30)
    assert annealing[24] == pytest.approx(0.01)  # a restart
    cosine = values(host, build(host, "CosineDecay", dict(initial_learning_rate=0.01, decay_steps=7)), 30)
    assert worst([[cosine]], [[annealing]]) > 0.005
