"""optcompat.schedules in every family: values against the float64 definitions (tests/reference.py),
trajectories across restart boundaries against the float64 reference optimizer, the host's own
schedules, torch's CosineAnnealingWarmRestarts and keras-adamw's annealing as oracles, saving
and loading with the model, and bad arguments refused."""
import importlib
import json

import numpy as np
import pytest

import reference
from deviations import match
from support import CONVENTIONS
from support import ENV
from support import ORACLE_TOL
from support import TOL
from support import assert_close
from support import expected
from support import problem
from support import steps
from support import tensorflow_addons
from support import worst

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


def resumes(facts, fmt):
    """Whether the deviations table lets a model come back from ``fmt`` in this family (legacy
    .keras on TF 2.13+: load_model fails on 2.13-2.14, loses the optimizer from 2.15)."""
    return match(("save", fmt), facts.family, facts.versions) is None


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
    ours, host_values = values(host, build(host, name, kwargs)), values(host, theirs)
    definition = np.array([CASES[case][2](k) for k in range(len(ours))])
    # Keras's own CosineDecayRestarts finds the period from a float32 log, and lands one period
    # off at some boundaries (measured: Keras 3.15 on torch 2.13, t_mul 1.5, step 10); ours is
    # corrected against the boundaries (test_restart_boundaries_are_exact).  Where the host is off
    # its own float64 definition, ours must be on it; elsewhere ours equals the host's.
    host_off = np.abs(host_values - definition) > 1e-6 * 0.2
    close(ours[~host_off], host_values[~host_off], 0.2, tol=1e-6)
    if host_off.any():
        close(ours[host_off], definition[host_off], 0.2, tol=1e-6)
    assert host_off.sum() <= 2, "the host's %s is off its definition at %d steps" % (name, host_off.sum())


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


@pytest.mark.parametrize("convention", CONVENTIONS)
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


# -- weight_decay as a schedule or a callable (TensorFlow Addons, optax) ---------------------------

WD_CASES = {
    # (optimizer, its arguments, learning-rate case or a float, weight_decay schedule case)
    "adamw-restarts": ("AdamW", dict(amsgrad=True), "restarts", "restarts-t1.5"),
    "adamw-float-lr": ("AdamW", dict(learning_rate=0.01), None, "cosine-warmup"),
    "sgdw-annealing": ("SGDW", dict(momentum=0.9), "annealing", "restarts-t1"),
}


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("case", sorted(WD_CASES))
def test_weight_decay_schedule_trajectory(host, case, convention):
    """``weight_decay`` a schedule (called with the step, as the learning rate's): 40 steps equal
    the float64 reference with lambda_t = the schedule's definition at each step, in every
    convention; and differ from a constant lambda = lambda_0 (the schedule is really used)."""
    name, kwargs, lr_case, wd_case = WD_CASES[case]
    wd_name, wd_kwargs, wd_definition = CASES[wd_case]
    kwargs = dict(kwargs)
    if lr_case is not None:
        kwargs["learning_rate"], lr_definition, base = scheduled(host, lr_case)
    else:
        lr_definition, base = kwargs["learning_rate"], None
    x0, grads = problem()
    ours = steps(host, host.make(name, weight_decay=build(host, wd_name, wd_kwargs), convention=convention,
                                 **kwargs), x0, grads)[0]
    ref_kwargs = dict(kwargs, learning_rate=lr_definition, convention=convention, lr_0=base)
    assert_close(ours, expected(RULES[name], dict(ref_kwargs, weight_decay=wd_definition), x0, grads), TOL)
    constant = expected(RULES[name], dict(ref_kwargs, weight_decay=wd_definition(0)), x0, grads)
    assert worst(ours, constant) > 10 * TOL


def test_weight_decay_callable_is_called_each_step(host):
    """``weight_decay`` a callable (no argument), called at each step: here one reading a host
    variable that changes between steps, equal to the float64 reference given the same values."""
    values_at = [0.3 if k < 10 else 0.05 if k < 25 else 0.0 for k in range(40)]
    holder = host.variable(np.array(values_at[0], np.float32), name="wd")
    opt = host.make("AdamW", learning_rate=0.01, weight_decay=lambda: holder)
    x0, grads = problem()
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    ours = []
    for k, g in enumerate(grads):
        holder.assign(np.array(values_at[k], np.float32))
        host.apply(opt, g, variables)
        ours.append([host.value(v) for v in variables])
    ref = expected(reference.adamw, dict(learning_rate=0.01, weight_decay=lambda k: values_at[k]), x0, grads)
    assert_close(ours, ref, TOL)
    assert opt.get_config()["weight_decay"] == 0.0  # a callable is saved as its value now


def test_weight_decay_schedule_in_compiled_fit(host):
    """In ``model.fit``'s compiled steps (tf.function, jax.jit, ...) the schedule is evaluated at
    each step's counter, not once when traced: equal to the same fit run eagerly."""
    s = classes(host)
    x = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    weights = []
    for eager in (False, True):
        model = host.dense_model()
        opt = host.make("AdamW", learning_rate=0.01, weight_decay=s["CosineDecayRestarts"](0.5, 3, t_mul=1.0))
        model.compile(optimizer=opt, loss="mean_squared_error", run_eagerly=eager)
        model.fit(x, x[:, :1], batch_size=8, epochs=2, shuffle=False, verbose=0)
        weights.append([host.value(w) for w in model.trainable_weights])
    assert worst([weights[0]], [weights[1]]) <= 1e-5
    model = host.dense_model()  # and the decay matters: a constant lambda gives other weights
    model.compile(optimizer=host.make("AdamW", learning_rate=0.01, weight_decay=0.5), loss="mean_squared_error")
    model.fit(x, x[:, :1], batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert worst([weights[0]], [[host.value(w) for w in model.trainable_weights]]) > 1e-4


@pytest.mark.parametrize("bad", ["nan", "negative"])
def test_a_bad_weight_decay_callable_changes_nothing(host, bad):
    """A callable giving NaN or a negative decay is refused before the step: the weights, slots
    and step counter are unchanged, and the error names ``weight_decay`` and the step."""
    value = {"nan": float("nan"), "negative": -0.1}[bad]
    given = [0.1]
    opt = host.make("AdamW", learning_rate=0.01, weight_decay=lambda: given[0])
    x0, grads = problem()
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    host.apply(opt, grads[0], variables)
    before = [host.value(v) for v in variables], host.slots(opt), host.iterations(opt)
    given[0] = value
    with pytest.raises(ValueError, match="weight_decay.*iteration 1"):
        host.apply(opt, grads[1], variables)
    after = [host.value(v) for v in variables], host.slots(opt), host.iterations(opt)
    assert after[2] == before[2] == 1
    assert all(np.array_equal(a, b) for a, b in zip(after[0] + after[1], before[0] + before[1]))


@pytest.mark.parametrize("value", ["a string", True, [0.1]])
def test_weight_decay_of_a_wrong_type_is_refused(host, value):
    with pytest.raises(TypeError, match="weight_decay"):
        host.make("AdamW", weight_decay=value)


def test_weight_decay_variable_cannot_become_a_callable(host):
    """A float weight_decay lives in a variable compiled steps read; a callable set later would
    not reach them: refused, naming the argument, the value unchanged (OptimizerV2's hyperparameter
    takes one, as its _set_hyper does)."""
    opt = host.make("AdamW", weight_decay=0.1)
    if host.family == "legacy":
        opt.weight_decay = lambda: 0.2
        assert float(opt._get_hyper("weight_decay")) == pytest.approx(0.2)
        return
    with pytest.raises(TypeError, match="weight_decay"):
        opt.weight_decay = lambda: 0.2
    assert opt.weight_decay == 0.1


@pytest.mark.parametrize("case", sorted(CASES))
def test_schedule_config_roundtrips_in_an_optimizers_config(host, case):
    """In an optimizer's get_config / from_config (what model files hold) the schedule comes
    back as optcompat's class on every release, TF 1.15-2.1 included (deviations: schedule_name)."""
    name, kwargs, _ = CASES[case]
    opt = host.make("AdamW", learning_rate=build(host, name, kwargs), weight_decay=0.01)
    config = host.keras.optimizers.serialize(opt)
    again = host.keras.optimizers.deserialize(json.loads(json.dumps(config)))
    assert type(again) is type(opt)
    rate = again.get_config()["learning_rate"]
    schedule = host.keras.optimizers.schedules.deserialize(rate) if isinstance(rate, dict) else None
    assert type(schedule) is type(build(host, name, kwargs))
    close(values(host, schedule, 30), values(host, build(host, name, kwargs), 30), 0.2, tol=0.0)


@pytest.mark.applies(lambda facts, params: params["fmt"] in facts.formats and resumes(facts, params["fmt"]))
@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_weight_decay_schedule_saved_with_the_model(host, fmt, tmp_path):
    """The schedule is in the optimizer's config and comes back with the model (same class,
    same values); from_config too."""
    s = classes(host)
    schedule = s["CosineDecayRestarts"](0.05, 6, m_mul=0.5)
    opt = host.make("AdamW", learning_rate=0.01, weight_decay=schedule)
    again = type(opt).from_config(opt.get_config())
    assert type(again.weight_decay) is type(schedule)
    assert again.weight_decay.get_config() == schedule.get_config()
    model = host.dense_model()
    model.compile(optimizer=opt, loss="mean_squared_error")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    loaded = host.load_model(host.save(model, fmt, str(tmp_path / "m")))
    wd = loaded.optimizer.weight_decay
    wd = loaded.optimizer._hyper["weight_decay"] if host.family == "legacy" else wd
    assert type(wd) is type(schedule), type(wd)
    close(values(host, wd, 20), values(host, schedule, 20), 0.05, tol=0.0)


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
@pytest.mark.applies(lambda facts, params: facts.at(tensorflow=">=2.3"))  # TFA 0.10 (TF 2.2): no schedule
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_schedule_equals_tfa(host, name):
    """TensorFlow Addons' AdamW / SGDW with a scheduled weight_decay (its own decayed_wd: the
    schedule at the step counter), convention="tfa"."""
    tfa = tensorflow_addons(host)
    ns = host.keras.optimizers.schedules
    extra = dict(momentum=0.9) if name == "SGDW" else {}

    def run(cls, weight_decay, **kw):
        return steps(host, cls(learning_rate=ns.ExponentialDecay(0.02, 10, 0.5), weight_decay=weight_decay,
                               **dict(extra, **kw)), x0, grads)[0]

    x0, grads = problem()
    scheduled_wd = lambda: ns.PiecewiseConstantDecay([7, 20], [0.1, 0.02, 0.05])  # noqa: E731
    theirs = run(getattr(tfa.optimizers, name), scheduled_wd())
    ours = run(getattr(host.module, name), scheduled_wd(), convention="tfa")
    assert worst(ours, theirs) <= ORACLE_TOL, worst(ours, theirs)
    constant = run(getattr(host.module, name), 0.1, convention="tfa")
    assert worst(ours, constant) > 100 * ORACLE_TOL


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
    ns = host.keras.optimizers.schedules
    if match("schedule_name", host.family, host.versions) and (
            hasattr(ns, name) or hasattr(host.keras.experimental, name)):  # TF 1.15-2.1's own name
        # the host's serialize writes the bare name, so its deserialize makes TF's own class
        assert ns.serialize(schedule)["class_name"] == name
        try:
            again = ns.deserialize(ns.serialize(schedule))
        except TypeError:  # TF's class has no argument of optcompat's (warmup_target)
            again = None
        assert again is None or type(again).__module__.startswith("tensorflow"), type(again)
        return
    again = _keras_config_roundtrip(host, schedule)
    assert type(again) is type(schedule)
    assert again.get_config() == schedule.get_config()
    assert {k: again.get_config()[k] for k in kwargs} == kwargs  # the arguments as given
    close(values(host, again, 30), values(host, schedule, 30), 0.2, tol=0.0)


@pytest.mark.applies(lambda facts, params: params["fmt"] in facts.formats and resumes(facts, params["fmt"]))
@pytest.mark.parametrize("fmt", ["keras", "h5"])  # .keras: TF 2.13+
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
