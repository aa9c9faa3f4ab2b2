"""optcompat.decoupled(OptimizerClass) in every family: decoupled(Adam) / decoupled(SGD) equal
optcompat's AdamW / SGDW (whose numbers the float64 reference checks); decoupled(Nadam) equals
the host's own Nadam(weight_decay) (Keras 3, Keras 2 on TF 2.11+) and TensorFlow Addons'
extend_with_decoupled_weight_decay(Nadam) (OptimizerV2, where TFA installs); the base's
variables unchanged; ``weight_decay`` as a schedule or callable (equal to AdamW / SGDW given the
same, and to TFA's extension given the same schedule); config, saving and bad arguments."""
import numpy as np
import pytest

import optcompat
from deviations import match
from deviations import oracle_tolerance
from support import ORACLE_TOL
from support import applies
from support import host_class
from support import problem
from support import steps
from support import tensorflow_addons
from support import worst

# the conventions whose step (not only the decay) is Keras's: decoupled(X) takes X's own step,
# so with "torch" / "paper" only the decay follows the convention (the epsilon, momentum are X's)
KERAS_STEP = ["keras", "tfa", "keras-adamw"]


def run(host, opt):
    x0, grads = problem()
    return steps(host, opt, x0, grads)[0]


@pytest.mark.parametrize("convention", KERAS_STEP)
@pytest.mark.parametrize("case", ["adam", "adam-amsgrad-schedule", "sgd-nesterov"])
def test_decoupled_host_optimizer_equals_adamw_sgdw(host, case, convention):
    base, ours, kw = {
        "adam": ("Adam", "AdamW", dict(learning_rate=0.01, weight_decay=0.05)),
        "adam-amsgrad-schedule": ("Adam", "AdamW", dict(learning_rate=None, weight_decay=0.1, amsgrad=True)),
        "sgd-nesterov": ("SGD", "SGDW", dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True)),
    }[case]
    if kw["learning_rate"] is None:
        kw["learning_rate"] = host.exponential_decay(0.02, 10, 0.5)
    cls = optcompat.decoupled(host_class(host, base))
    assert cls.__name__ == "Decoupled" + base
    theirs = run(host, host.make(ours, convention=convention, **kw))
    mine = run(host, cls(convention=convention, **kw))
    without = run(host, host_class(host, base)(**{k: v for k, v in kw.items() if k != "weight_decay"}))
    assert worst(mine, without) > 100 * ORACLE_TOL  # the decay is there
    # the base's own step: Keras 3 on torch rounds Adam's moments otherwise (deviations: drift)
    tol = oracle_tolerance(host, ours, ORACLE_TOL) or ORACLE_TOL
    assert worst(mine, theirs) <= tol, worst(mine, theirs)


def _host_nadam_takes_weight_decay(facts, params):
    # Keras 3 and the TF 2.11+ optimizers have decoupled decay in the base class (keras convention)
    return facts.family == "keras3" or (facts.family == "keras2" and (facts.at(tensorflow=">=2.11")
                                                                     or facts.has("tf_keras")))


@applies(_host_nadam_takes_weight_decay)
@pytest.mark.parametrize("exclude", [False, True])
def test_decoupled_nadam_equals_the_hosts_nadam_with_weight_decay(host, exclude):
    nadam = host_class(host, "Nadam")
    kw = dict(learning_rate=0.01, weight_decay=0.05)
    theirs_opt = nadam(**kw)
    mine_opt = optcompat.decoupled(nadam)(exclude_from_weight_decay=["w1"] if exclude else None, **kw)
    if exclude:
        theirs_opt.exclude_from_weight_decay(var_names=["w1"])
    theirs, mine = run(host, theirs_opt), run(host, mine_opt)
    assert worst(mine, run(host, nadam(learning_rate=0.01))) > 100 * ORACLE_TOL
    assert worst(mine, theirs) <= ORACLE_TOL, worst(mine, theirs)
    if exclude:  # w1 took Nadam's own steps only
        plain = run(host, nadam(learning_rate=0.01))
        assert max(np.max(np.abs(a[1] - b[1])) for a, b in zip(mine, plain)) <= ORACLE_TOL


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
@pytest.mark.parametrize("base", ["Nadam", "RMSprop"])
def test_decoupled_equals_tfa_extend_with_decoupled_weight_decay(host, base):
    """OptimizerV2: TFA's extension of the same class, convention="tfa" (its decay is not
    scaled by the learning rate)."""
    tfa = tensorflow_addons(host)
    cls = host_class(host, base)
    theirs = run(host, tfa.optimizers.extend_with_decoupled_weight_decay(cls)(weight_decay=0.01, learning_rate=0.01))
    mine = run(host, optcompat.decoupled(cls)(weight_decay=0.01, learning_rate=0.01, convention="tfa"))
    assert worst(mine, run(host, cls(learning_rate=0.01))) > 100 * ORACLE_TOL
    assert worst(mine, theirs) <= ORACLE_TOL, worst(mine, theirs)


def _piecewise_wd(host):
    return host.keras.optimizers.schedules.PiecewiseConstantDecay([7, 20], [0.1, 0.02, 0.05])


@pytest.mark.parametrize("convention", KERAS_STEP)
@pytest.mark.parametrize("kind", ["schedule", "callable"])
@pytest.mark.parametrize("base,ours", [("Adam", "AdamW"), ("SGD", "SGDW")])
def test_scheduled_or_callable_weight_decay_equals_adamw_sgdw(host, base, ours, kind, convention):
    """``weight_decay`` a LearningRateSchedule (its value at the 0-based step) or a callable
    (called at each step: here one reading a list that changes between steps): decoupled(Adam) /
    decoupled(SGD) equal optcompat's AdamW / SGDW given the same (whose float64 reference checks
    both, tests/test_schedules.py); and a constant decay gives other numbers."""
    x0, grads = problem()
    values_at = [0.3 if k < 10 else 0.05 if k < 25 else 0.0 for k in range(len(grads))]

    def run_stepwise(opt):
        variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
        out = []
        for k, g in enumerate(grads):
            now[0] = values_at[k]
            host.apply(opt, g, variables)
            out.append([host.value(v) for v in variables])
        return out

    now = [values_at[0]]
    kw = dict(learning_rate=0.01, convention=convention, **(dict(momentum=0.9) if base == "SGD" else {}))
    cls = optcompat.decoupled(host_class(host, base))
    if kind == "schedule":
        mine = run(host, cls(weight_decay=_piecewise_wd(host), **kw))
        theirs = run(host, host.make(ours, weight_decay=_piecewise_wd(host), **kw))
        constant = run(host, cls(weight_decay=0.1, **kw))
    else:
        mine = run_stepwise(cls(weight_decay=lambda: now[0], **kw))
        theirs = run_stepwise(host.make(ours, weight_decay=lambda: now[0], **kw))
        constant = run_stepwise(cls(weight_decay=0.3, **kw))
    tol = oracle_tolerance(host, ours, ORACLE_TOL) or ORACLE_TOL
    assert worst(mine, theirs) <= tol, worst(mine, theirs)
    assert worst(mine, constant) > 100 * ORACLE_TOL


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
@pytest.mark.applies(lambda facts, params: facts.at(tensorflow=">=2.3"))  # TFA 0.10 (TF 2.2): no schedule
def test_scheduled_weight_decay_equals_tfa_extend_with_decoupled_weight_decay(host):
    """TFA's extension of Nadam with a scheduled ``weight_decay`` (the schedule at the step
    counter), convention="tfa"."""
    tfa = tensorflow_addons(host)
    nadam = host_class(host, "Nadam")
    theirs = run(host, tfa.optimizers.extend_with_decoupled_weight_decay(nadam)(
        weight_decay=_piecewise_wd(host), learning_rate=0.01))
    mine = run(host, optcompat.decoupled(nadam)(weight_decay=_piecewise_wd(host), learning_rate=0.01,
                                                 convention="tfa"))
    assert worst(mine, theirs) <= ORACLE_TOL, worst(mine, theirs)
    assert worst(mine, run(host, optcompat.decoupled(nadam)(weight_decay=0.1, learning_rate=0.01,
                                                            convention="tfa"))) > 100 * ORACLE_TOL


@pytest.mark.parametrize("bad", ["nan", "negative"])
def test_a_bad_weight_decay_callable_changes_nothing(host, bad):
    """A callable giving NaN or a negative decay is refused before the step: weights, slots and
    step counter unchanged, the error naming ``weight_decay`` and the step."""
    given = [0.1]
    opt = optcompat.decoupled(host_class(host, "Nadam"))(learning_rate=0.01, weight_decay=lambda: given[0])
    x0, grads = problem()
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    host.apply(opt, grads[0], variables)
    before = [host.value(v) for v in variables], host.slots(opt), host.iterations(opt)
    given[0] = {"nan": float("nan"), "negative": -0.1}[bad]
    with pytest.raises(ValueError, match="weight_decay.*iteration 1"):
        host.apply(opt, grads[1], variables)
    after = [host.value(v) for v in variables], host.slots(opt), host.iterations(opt)
    assert after[2] == before[2] == 1
    assert all(np.array_equal(a, b) for a, b in zip(after[0] + after[1], before[0] + before[1]))


def test_the_base_layout_and_config(host):
    """The base's variables exactly (files of Nadam and decoupled(Nadam) interchange); the
    config gives the arguments back and makes the same optimizer."""
    nadam = host_class(host, "Nadam")
    cls = optcompat.decoupled(nadam)
    assert optcompat.decoupled(nadam) is cls  # made once
    mine = cls(learning_rate=0.01, weight_decay=0.05, convention="tfa", exclude_from_weight_decay=["bias"])
    theirs = nadam(learning_rate=0.01)
    x0, grads = problem()
    steps(host, mine, x0, grads[:2])
    steps(host, theirs, x0, grads[:2])
    assert [v.shape for v in host.slots(mine)] == [v.shape for v in host.slots(theirs)]
    config = mine.get_config()
    assert [config[k] for k in ("weight_decay", "convention", "exclude_from_weight_decay")] == [0.05, "tfa", ["bias"]]
    again = cls.from_config(config)
    assert (again.weight_decay, again.convention) == (0.05, "tfa")
    written = host.registered_name(cls)
    assert written == "DecoupledNadam" if host.facts.writes_class_names else written.endswith(">DecoupledNadam")


def test_fit_save_and_load(host, tmp_path):
    """compile, fit, save in the host's model format, load_model in this process: the class,
    its decay and the step count come back."""
    # a model format this family resumes an optimizer from (deviations: e.g. legacy .keras from
    # TF 2.13); TF 2.9-2.10's keras2 has none (then the step count is not asserted)
    formats = [f for f in ("keras", "h5") if f in host.formats]
    resuming = [f for f in formats if match(("save", f), host.family, host.versions) is None]
    fmt = (resuming or formats)[0]
    cls = optcompat.decoupled(host_class(host, "Nadam"))
    model = host.dense_model()
    model.compile(optimizer=cls(learning_rate=0.01, weight_decay=0.02, convention="torch"), loss="mean_squared_error")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, x[:, :1], batch_size=16, epochs=2, verbose=0)
    loaded = host.load_model(host.save(model, fmt, str(tmp_path / "m")))
    assert type(loaded.optimizer) is cls
    assert loaded.optimizer.get_config()["weight_decay"] == 0.02 and loaded.optimizer.convention == "torch"
    if resuming:
        assert host.iterations(loaded.optimizer) == 4


def test_a_weight_decay_schedule_is_saved_with_the_model(host, tmp_path):
    """A schedule ``weight_decay`` is serialized in the config (optcompat's own schedule class
    too) and comes back, same class and values, through from_config and load_model."""
    cls = optcompat.decoupled(host_class(host, "Nadam"))
    schedule = optcompat.family_module(host.family).SCHEDULES["CosineDecayRestarts"](0.05, 6, m_mul=0.5)
    opt = cls(learning_rate=0.01, weight_decay=schedule)
    config = opt.get_config()
    assert isinstance(config["weight_decay"], dict)
    again = cls.from_config(config)
    wd = again._hyper["weight_decay"] if host.family == "legacy" else again.weight_decay
    assert type(wd).__name__ == "CosineDecayRestarts" and wd.get_config() == schedule.get_config()
    formats = [f for f in ("keras", "h5")
               if f in host.formats and match(("save", f), host.family, host.versions) is None]
    if not formats:
        return
    model = host.dense_model()
    model.compile(optimizer=opt, loss="mean_squared_error")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    loaded = host.load_model(host.save(model, formats[0], str(tmp_path / "m")))
    wd = loaded.optimizer._hyper["weight_decay"] if host.family == "legacy" else loaded.optimizer.weight_decay
    assert type(wd).__name__ == "CosineDecayRestarts" and wd.get_config() == schedule.get_config()


BAD = [
    (dict(learning_rate=0.01), TypeError, "weight_decay"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(weight_decay=0.1, convention="pytorch"), ValueError, "convention"),
    (dict(weight_decay=0.1, exclude_from_weight_decay="bias"), TypeError, "exclude_from_weight_decay"),
    (dict(weight_decay="0.1"), TypeError, "weight_decay"),
    (dict(weight_decay=float("nan")), ValueError, "weight_decay"),
]


@pytest.mark.parametrize("kwargs,error,argument", BAD, ids=[b[2] + "-" + b[1].__name__ for b in BAD])
def test_bad_arguments_are_refused(host, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        optcompat.decoupled(host_class(host, "Nadam"))(**kwargs)


def test_not_an_optimizer_class_is_refused(host):
    with pytest.raises(TypeError, match="optimizer class"):
        optcompat.decoupled(dict)
