"""Training lifecycle in every family: registered names, clipping, weight EMA, gradient
accumulation, loss scaling, mixed precision, XLA, errors at use time.  (Save/load/resume:
test_keras_integration.py; distribution: test_distribution.py.)"""
import numpy as np
import pytest

from deviations import Drift
from deviations import match
from deviations import oracle_tolerance
from support import CONVENTIONS
from support import ORACLE_TOL
from support import applies
from support import check_the_host_cannot_jit_compile
from support import data
from support import fit_setting_weight_decay
from support import has_builtin
from support import host_run
from support import problem
from support import run
from support import steps
from support import takes
from support import worst


def no_jit_deviation(facts, params):
    """Whether the host's own jit-compiled ``fit`` works (no "jit_compile" deviation recorded)."""
    return match("jit_compile", facts.family, facts.versions) is None


def test_registered_name_resolves_to_the_class(host):
    for name in ("AdamW", "SGDW"):
        cls = getattr(host.module, name)
        registered = host.registered_name(cls)
        assert registered == name if host.facts.writes_class_names else registered.endswith(">" + name), registered
        opt = host.keras.optimizers.get(registered)
        assert type(opt) is cls
    model = host.dense_model()
    model.compile(optimizer=host.registered_name(host.module.AdamW), loss="mse")
    assert type(model.optimizer) is host.module.AdamW


@pytest.mark.parametrize("clip", [dict(clipnorm=0.05), dict(clipvalue=0.01), dict(global_clipnorm=0.05)])
def test_clipping_as_the_host_does_it(host, clip):
    """With no decay, optcompat AdamW is the host's Adam -- clipping included."""
    x0, grads = problem()
    kw = dict(learning_rate=0.01, **clip)
    try:
        theirs_opt = host.host_adam(**kw)
    except (TypeError, ValueError) as e:
        pytest.skip("%r's Adam has no %s: %s" % (host, list(clip)[0], e))
    ours = run(host, "AdamW", dict(kw, weight_decay=0.0), x0, grads)
    theirs = host_run(host, lambda: theirs_opt, x0, grads)
    if worst(theirs, host_run(host, lambda: host.host_adam(learning_rate=0.01), x0, grads)) == 0:
        pytest.skip("upstream: %r's own Adam does not clip in apply_gradients (TF < 2.4 "
                    "OptimizerV2 clips in minimize / get_gradients only)" % host)
    unclipped = run(host, "AdamW", dict(learning_rate=0.01, weight_decay=0.0), x0, grads)
    assert worst(ours, theirs) <= ORACLE_TOL
    assert worst(ours, unclipped) > 1e-4  # clipping really acted


def has_twin(name=None, decay=None, options=()):
    """A collection predicate: whether the host has the twin ``_host_twin`` builds -- its base
    class takes ``options`` (or the test's ``options`` parameter), it has the built-in
    optimizer, and (with decay) that optimizer's numbers are not off by a recorded different
    formula.  ``name`` / ``decay``: fixed, or the test's parameters of those names."""
    def predicate(facts, params):
        n = name or params["name"]
        d = params["decay"] if decay is None else decay
        if not takes(facts, tuple(options) or tuple(params.get("options", {}))):
            return False
        builtin = ("AdamW" if d else "Adam") if n == "AdamW" else "SGD(weight_decay)"
        if not has_builtin(facts, builtin):
            return False
        reason = match(("oracle", n), facts.family, facts.versions) if d else None
        return reason is None or isinstance(reason, Drift)
    return predicate


def _host_twin(host, name, decay, **options):
    """``(make the host's own optimizer, optcompat kwargs, tolerance)``: the host's AdamW /
    SGD(weight_decay) with decay, its Adam / SGD without, giving optcompat's numbers within
    the tolerance (ORACLE_TOL, or the bound of a recorded rounding drift of the host's decay);
    ``options`` go to both.  Collected only where the host has such a twin (has_twin)."""
    wd = 0.05 if decay else 0.0
    kw = dict(learning_rate=0.01, **options)
    if name == "SGDW":
        kw["momentum"] = 0.9
    try:
        host.host_adam(learning_rate=0.01, **options)
    except (TypeError, ValueError) as e:
        pytest.fail("support.OPTIONS says %r's optimizers take %s: %s" % (host, ", ".join(options), str(e)[:200]))
    tol = oracle_tolerance(host, name, ORACLE_TOL) if decay else ORACLE_TOL
    assert tol is not None, match(("oracle", name), host.family, host.versions)
    if name == "AdamW":
        make = (lambda: host.host_adamw(weight_decay=wd, **kw)) if decay else (lambda: host.host_adam(**kw))
    else:
        make = lambda: host.host_sgd(weight_decay=wd, **kw)  # noqa: E731
    assert make() is not None, "support.has_builtin says %r has a built-in %s" % (
        host, "SGD(weight_decay)" if name == "SGDW" else "AdamW" if decay else "Adam")
    return make, dict(kw, weight_decay=wd), tol


LACKING = {"ema": dict(use_ema=True, ema_momentum=0.9),
           "ema-overwrite": dict(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=5),
           "accumulation": dict(gradient_accumulation_steps=4),
           "loss-scale-factor": dict(loss_scale_factor=64.0)}


@applies(lambda facts, params: not takes(facts, params["options"]))
@pytest.mark.parametrize("options", [LACKING[k] for k in sorted(LACKING)], ids=sorted(LACKING))
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_options_the_base_class_lacks_are_refused(host, name, options):
    """Where the host's base class does not take an option (support.OPTIONS), the host's own
    Adam refuses it, and so does optcompat (rather than ignoring it), with and without decay."""
    with pytest.raises((TypeError, ValueError)):
        host.host_adam(learning_rate=0.01, **options)
    for wd in (0.0, 0.05):
        kw = dict(learning_rate=0.01, weight_decay=wd, **options)
        if name == "SGDW":
            kw["momentum"] = 0.9
        with pytest.raises((TypeError, ValueError)):
            host.make(name, **kw)


def _steps(host, opt, x0, grads, finalize=False):
    """The weights after every step, and after ``finalize_variable_values`` (the EMA swap
    ``fit`` does at the end) when asked."""
    traj, variables = steps(host, opt, x0, grads)
    if finalize:
        opt.finalize_variable_values(variables)
    return traj, [host.value(v) for v in variables]


@applies(has_twin("AdamW", options=("use_ema",)))
@pytest.mark.parametrize("overwrite", [None, 5])
@pytest.mark.parametrize("decay", [False, True])
def test_ema_as_the_host_does_it(host, decay, overwrite):
    """``use_ema`` is the host base class's: it averages optcompat's weights as it averages
    its own optimizer's, overwrites them every ``ema_overwrite_frequency`` steps, and swaps
    the average in at ``finalize_variable_values``."""
    x0, grads = problem()
    ema = dict(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=overwrite)
    make, ours_kw, tol = _host_twin(host, "AdamW", decay, **ema)
    ours, ours_final = _steps(host, host.make("AdamW", **ours_kw), x0, grads, finalize=True)
    theirs, theirs_final = _steps(host, make(), x0, grads, finalize=True)
    assert worst(ours, theirs) <= tol
    assert worst([ours_final], [theirs_final]) <= tol
    plain, _ = _steps(host, host.make("AdamW", **dict(ours_kw, use_ema=False, ema_overwrite_frequency=None)),
                      x0, grads)
    if overwrite:  # the average really overwrote the weights during training
        assert worst(ours, plain) > 1e-4
    else:  # training is the plain one; the average is swapped in only at the end
        assert worst(ours, plain) == 0
        assert worst([ours_final], [ours[-1]]) > 1e-4


@applies(has_twin(options=("gradient_accumulation_steps",)))
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
@pytest.mark.parametrize("decay", [False, True])
def test_gradient_accumulation_as_the_host_does_it(host, name, decay):
    """``gradient_accumulation_steps`` (Keras 3) is the host base class's: optcompat's rule
    runs on the mean of every 4 gradients, on the 4th step, as the host's own optimizer does."""
    x0, grads = problem()
    grads = grads[:12]  # 3 updates: an eager step with accumulation costs ~0.1 s on jax
    make, ours_kw, tol = _host_twin(host, name, decay, gradient_accumulation_steps=4)
    ours, _ = _steps(host, host.make(name, **ours_kw), x0, grads)
    theirs, _ = _steps(host, make(), x0, grads)
    # the weights move on steps 4, 8, ... only
    assert worst([ours[2]], [x0]) == 0 and worst([ours[3]], [x0]) > 1e-4
    assert worst([ours[6]], [ours[3]]) == 0 and worst([ours[7]], [ours[3]]) > 1e-4
    reason = match("accumulation_decay", host.family, host.versions) if decay else None
    if reason is None:
        assert worst(ours, theirs) <= tol
    else:  # the recorded host bug must still be real (else remove the entry): it decays at step 1
        assert worst([theirs[0]], [x0]) > 1e-4, reason


@applies(has_twin(options=("loss_scale_factor",)))
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
@pytest.mark.parametrize("decay", [False, True])
def test_loss_scale_factor_as_the_host_does_it(host, name, decay):
    """``loss_scale_factor`` (Keras 3): the base class divides the gradients by it before the
    rule; scaled gradients then give the unscaled step (exactly: the factor is a power of 2)."""
    x0, grads = problem()
    make, ours_kw, tol = _host_twin(host, name, decay, loss_scale_factor=64.0)
    scaled = [[g * np.float32(64.0) for g in step] for step in grads]
    plain_kw = {k: v for k, v in ours_kw.items() if k != "loss_scale_factor"}
    opts = [host.make(name, **ours_kw), host.make(name, **plain_kw), host.make(name, **plain_kw)]
    ours, plain, _ = (_steps(host, opt, x0, g)[0] for opt, g in zip(opts, (scaled, grads, scaled)))
    theirs, _ = _steps(host, make(), x0, scaled)
    assert worst(ours, theirs) <= tol
    assert worst(ours, plain) <= 1e-7
    slots = [host.slots(opt) for opt in opts]
    assert worst([slots[0]], [slots[1]]) <= 1e-7
    assert worst([slots[0]], [slots[2]]) > 1e-4  # the factor really acted (on m, v, the momentum)


@applies(has_twin("AdamW", decay=False))
@pytest.mark.parametrize("options", [dict(use_ema=True, ema_momentum=0.9),
                                     dict(use_ema=True, ema_momentum=0.9, gradient_accumulation_steps=2)],
                         ids=["ema", "ema+accumulation"])
def test_fit_with_ema_and_gradient_accumulation_as_the_host(host, options):
    """The options inside the host's own (compiled) train step: ``fit`` gives the host's
    Adam's weights, the moving average swapped in at the end."""
    x, y = data()
    make, ours_kw, _ = _host_twin(host, "AdamW", False, **options)
    weights = []
    for opt in (host.make("AdamW", **ours_kw), make()):
        model = host.dense_model()
        model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        weights.append(np.concatenate([w.ravel() for w in model.get_weights()]))
    assert np.max(np.abs(weights[0] - weights[1])) <= 1e-5
    assert np.max(np.abs(weights[0] - np.concatenate([w.ravel() for w in host.dense_model().get_weights()]))) > 1e-3


@pytest.mark.families("keras3")
@applies(has_twin(decay=True))
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_float8_fit_as_the_host(host, name):
    """Keras 3 float8 training (``model.quantize("float8")``): the base class overwrites the
    scale and amax-history variables with their "gradients" instead of stepping them, and
    optcompat must neither step nor decay them -- ``fit`` gives the host's weights, all of them."""
    make, kw, tol = _host_twin(host, name, True)
    x, y = data()
    weights = []
    for opt in (host.make(name, **kw), make()):
        model = host.dense_model()
        try:
            model.quantize("float8")
        except (AttributeError, NotImplementedError, ValueError) as e:
            pytest.skip("Keras %s cannot quantize to float8: %s" % (host.keras.__version__, str(e)[:200]))
        scales = [v for v in model.weights if getattr(v, "overwrite_with_gradient", False)]
        assert scales
        start = np.concatenate([w.ravel() for w in model.get_weights()])
        model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        weights.append(np.concatenate([w.ravel() for w in model.get_weights()]))
    assert np.max(np.abs(weights[0] - weights[1])) <= max(tol, 1e-5)
    assert np.max(np.abs(weights[0] - start)) > 1e-3


@pytest.fixture
def mixed_float16(host):
    host.set_policy("mixed_float16")
    yield
    host.set_policy("float32")


def test_mixed_precision_fit(host, mixed_float16):
    x, y = data()
    try:  # where the host cannot train its own Adam under mixed_float16, say so
        control = host.dense_model()
        control.compile(optimizer=host.host_adam(learning_rate=0.01), loss="mse")
        control.fit(x, y, batch_size=16, epochs=1, verbose=0)
    except (TypeError, ValueError) as e:
        pytest.skip("upstream: %r's own Adam cannot train under mixed_float16: %s" % (host, str(e)[:200]))
    model = host.dense_model()
    model.compile(optimizer=host.make("AdamW", learning_rate=0.01, weight_decay=0.01), loss="mse")
    hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
    assert np.all(np.isfinite(hist.history["loss"])) and hist.history["loss"][-1] < hist.history["loss"][0]
    assert all(w.dtype == np.float32 for w in model.get_weights())  # float32 masters
    slots = [s for s in host.slots(model.optimizer) if s.ndim > 0]
    assert slots and all(s.dtype == np.float32 for s in slots)


# TF 2.9/2.10: the public LossScaleOptimizer wraps OptimizerV2 only, not the keras2 family's
@applies(lambda facts, params: not (facts.family == "keras2" and facts.at(tensorflow="<2.11")))
def test_loss_scale_overflow_step_changes_nothing(host):
    opt = host.make("AdamW", learning_rate=0.1, weight_decay=0.5)
    lso = host.loss_scale_optimizer(opt)
    assert lso is not None, "%r has no public LossScaleOptimizer for this optimizer family" % host
    var = host.variable(np.ones((3,), np.float32))
    host.apply_scaled(lso, [np.full((3,), 0.5, np.float32)], [var])
    before = [host.value(var)] + [s for s in host.slots(opt) if s.ndim > 0]
    assert np.all(before[0] < 1.0)  # the finite step moved the weights
    host.apply_scaled(lso, [np.array([np.inf, 1.0, np.nan], np.float32)], [var])
    after = [host.value(var)] + [s for s in host.slots(opt) if s.ndim > 0]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # weights, m, v: no update and no decay
    assert np.all(np.isfinite(after[0]))


@applies(lambda facts, params: not no_jit_deviation(facts, params))
def test_recorded_jit_compile_failure_is_still_real(host):
    """Where deviations records that the host's own jit-compiled ``fit`` fails ("jit_compile";
    the tests that need one are deselected there), it still fails (else remove the entry)."""
    reason = match("jit_compile", host.family, host.versions)
    assert reason
    check_the_host_cannot_jit_compile(host, reason)


@applies(no_jit_deviation)
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_jit_compiled_fit_equals_plain_fit(host, name):
    """``compile(jit_compile=True)``: XLA on TensorFlow and jax; ``torch.compile`` (dynamo and
    inductor) on Keras 3's torch backend, where the fused kernels, which dynamo cannot trace,
    step aside for the per-variable rule -- the same numbers as the plain path."""
    x, y = data()
    # options that take torch's fused kernels in eager steps (amsgrad and keras-form Nesterov do not)
    kw = dict(learning_rate=0.01, weight_decay=0.05) if name == "AdamW" else \
        dict(learning_rate=0.05, weight_decay=0.01, momentum=0.9)
    weights = {}
    for jit in (False, True):
        model = host.dense_model()
        opt = host.make(name, **kw)
        if host.backend == "torch" and not jit:
            opt.fast_path = None  # the eager run is the plain rule, as the compiled one
        try:
            model.compile(optimizer=opt, loss="mse", jit_compile=jit)
        except TypeError:
            pytest.skip("%r's Model.compile has no jit_compile" % host)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        weights[jit] = np.concatenate([w.ravel() for w in model.get_weights()])
    start = np.concatenate([w.ravel() for w in host.dense_model().get_weights()])
    assert np.max(np.abs(weights[False] - start)) > 1e-3
    assert np.max(np.abs(weights[True] - weights[False])) < 1e-6


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_set_during_fit_reaches_compiled_steps(host, name, convention):
    """``optimizer.weight_decay = x`` between steps changes the decay of the steps after it,
    in every family -- also where fit's step was traced before the change (jax.jit,
    tf.function, XLA): the compiled fit equals the eager one, whose steps read the value
    each time, and differs from the fit that keeps the constructed value.  SGDW starts from
    0 (no decay until the callback sets one; its default None keeps no variable)."""
    kw = dict(learning_rate=0.02, weight_decay=0.05, convention=convention) if name == "AdamW" else \
        dict(learning_rate=0.02, weight_decay=0.0, momentum=0.9, convention=convention)
    compiled = fit_setting_weight_decay(host, host.make(name, **kw), eager=False)
    eager = fit_setting_weight_decay(host, host.make(name, **kw), eager=True)
    constant = fit_setting_weight_decay(host, host.make(name, **kw), eager=False, set_it=False)
    assert worst(compiled, eager) < 1e-6
    assert worst(compiled, constant) > 1e-3  # the values set really acted
    opt = host.make(name, **kw)
    opt.weight_decay = 0.25
    assert opt.weight_decay == 0.25 and opt.get_config()["weight_decay"] == 0.25
    for bad, error in ((-0.1, ValueError), (float("nan"), ValueError), ("0.1", TypeError)):
        with pytest.raises(error, match="weight_decay"):
            opt.weight_decay = bad


@applies(no_jit_deviation)
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_set_during_fit_reaches_jit_compiled_steps(host, name):
    """As above under ``compile(jit_compile=True)`` (XLA; ``torch.compile`` on torch), from
    a decay of 0: on TensorFlow the fused kernels' decay pass is then conditional on the
    value (no pass while it is 0), and must still run once it is set."""
    kw = dict(learning_rate=0.02, weight_decay=0.0) if name == "AdamW" else \
        dict(learning_rate=0.02, weight_decay=0.0, momentum=0.9)
    try:
        jitted = fit_setting_weight_decay(host, host.make(name, **kw), eager=False, jit_compile=True)
    except TypeError:
        pytest.skip("%r's Model.compile has no jit_compile" % host)
    opt = host.make(name, **kw)
    if host.backend == "torch":
        opt.fast_path = None  # the eager run is the plain rule, as the compiled one
    eager = fit_setting_weight_decay(host, opt, eager=True)
    constant = fit_setting_weight_decay(host, host.make(name, **kw), eager=True, set_it=False)
    assert worst(jitted, eager) < 1e-6
    assert worst(jitted, constant) > 1e-3


@applies(has_twin(decay=True))
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_set_during_fit_as_the_hosts_eager_steps(host, name):
    """With the decay set by a callback, optcompat's compiled fit gives the host's own
    AdamW / SGD(weight_decay) numbers in eager steps (which read the value each step); where
    the host's compiled steps keep the first value ("stale_weight_decay" in deviations), the entry
    must still reproduce."""
    make, kw, tol = _host_twin(host, name, decay=True)
    theirs = fit_setting_weight_decay(host, make(), eager=True)
    theirs_compiled = fit_setting_weight_decay(host, make(), eager=False)
    stale = match("stale_weight_decay", host.family, host.versions)
    if stale:
        assert worst(theirs_compiled, theirs) > 1e-3, "the host follows now; remove the entry: " + stale
    else:
        assert worst(theirs_compiled, theirs) <= tol
    assert worst(fit_setting_weight_decay(host, host.make(name, **kw), eager=False), theirs) <= tol


def test_non_float_variable_is_refused_before_any_change(host):
    opt = host.make("AdamW")
    good = host.variable(np.ones((2,), np.float32), name="good")
    ints = host.variable(np.ones((2,), np.int32), name="ints")
    with pytest.raises(TypeError, match="ints"):
        opt.apply_gradients([(host.tensor(np.ones((2,), np.float32)), good),
                             (host.tensor(np.ones((2,), np.int32)), ints)])
    np.testing.assert_array_equal(host.value(good), np.ones((2,), np.float32))


def test_nan_learning_rate_from_a_schedule_is_refused_before_any_change(host):
    class NanAfterTwoSteps(host.keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.01 if float(np.asarray(step)) < 2 else float("nan")

        def get_config(self):
            return {}

    for name in ("AdamW", "SGDW"):
        opt = host.make(name, learning_rate=NanAfterTwoSteps(), **({"momentum": 0.9} if name == "SGDW" else {}))
        var = host.variable(np.ones((3,), np.float32))
        for _ in range(2):
            host.apply(opt, [np.full((3,), 0.5, np.float32)], [var])
        before = [host.value(var)] + host.slots(opt)
        with pytest.raises(ValueError, match="`learning_rate`.*nan"):
            host.apply(opt, [np.full((3,), 0.5, np.float32)], [var])
        after = [host.value(var)] + host.slots(opt)
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b)
