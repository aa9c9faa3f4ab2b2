"""Training lifecycle in every family: registered names, clipping, weight EMA, gradient
accumulation, loss scaling, mixed precision, XLA, errors at use time.  (Save/load/resume:
test_keras_integration.py; distribution: test_distribution.py.)"""
import numpy as np
import pytest

from deviations import decays_between_updates, jit_compile_fails, known, oracle_tolerance, stale_weight_decay
from test_keras_integration import data
from test_oracles import ORACLE_TOL, host_run, worst
from test_trajectories import CONVENTIONS, problem, run, steps


def test_registered_name_resolves_to_the_class(host):
    for name in ("AdamW", "SGDW"):
        cls = getattr(host.module, name)
        registered = host.registered_name(cls)
        assert registered.endswith(">" + name), registered
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


def _host_twin(host, name, decay, **options):
    """``(make the host's own optimizer, optcompat kwargs, tolerance)``: the host's AdamW /
    SGD(weight_decay) with decay, its Adam / SGD without, giving optcompat's numbers within
    the tolerance (ORACLE_TOL, or the bound of a recorded rounding drift of the host's decay);
    ``options`` go to both.  Skips, naming why, where this host has no such twin -- and where
    its base class does not take ``options``, checks first that optcompat refuses them too
    (rather than ignoring them)."""
    wd = 0.05 if decay else 0.0
    kw = dict(learning_rate=0.01, **options)
    if name == "SGDW":
        kw["momentum"] = 0.9
    try:
        host.host_adam(learning_rate=0.01, **options)
    except (TypeError, ValueError) as e:  # the host's base class does not take these options
        with pytest.raises((TypeError, ValueError)):
            host.make(name, **dict(kw, weight_decay=wd))
        pytest.skip("%r's optimizers have no %s (optcompat's refuse them too): %s"
                    % (host, ", ".join(options), str(e)[:200]))
    tol = oracle_tolerance(host, name, ORACLE_TOL) if decay else ORACLE_TOL
    if tol is None:
        pytest.skip("%r's own %s is off exact arithmetic (deviations.py): %s" % (host, name, known(host, name)))
    if name == "AdamW":
        make = (lambda: host.host_adamw(weight_decay=wd, **kw)) if decay else (lambda: host.host_adam(**kw))
    else:
        make = lambda: host.host_sgd(weight_decay=wd, **kw)  # noqa: E731
    if make() is None:
        pytest.skip("%r has no built-in %s to compare with" % (
            host, "SGD(weight_decay)" if name == "SGDW" else "AdamW" if decay else "Adam"))
    return make, dict(kw, weight_decay=wd), tol


def _steps(host, opt, x0, grads, finalize=False):
    """The weights after every step, and after ``finalize_variable_values`` (the EMA swap
    ``fit`` does at the end) when asked."""
    traj, variables = steps(host, opt, x0, grads)
    if finalize:
        opt.finalize_variable_values(variables)
    return traj, [host.value(v) for v in variables]


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
    reason = decays_between_updates(host) if decay else None
    if reason is None:
        assert worst(ours, theirs) <= tol
    else:  # the recorded host bug must still be real (else remove the entry): it decays at step 1
        assert worst([theirs[0]], [x0]) > 1e-4, reason


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


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_float8_fit_as_the_host(host, name):
    """Keras 3 float8 training (``model.quantize("float8")``): the base class overwrites the
    scale and amax-history variables with their "gradients" instead of stepping them, and
    optcompat must neither step nor decay them -- ``fit`` gives the host's weights, all of them."""
    if host.family != "keras3":
        pytest.skip("float8 training (model.quantize) is Keras 3's; %r has none" % host)
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


def test_loss_scale_overflow_step_changes_nothing(host):
    opt = host.make("AdamW", learning_rate=0.1, weight_decay=0.5)
    lso = host.loss_scale_optimizer(opt)
    if lso is None:
        pytest.skip("%r has no public LossScaleOptimizer for this optimizer family" % host)
    var = host.variable(np.ones((3,), np.float32))
    host.apply_scaled(lso, [np.full((3,), 0.5, np.float32)], [var])
    before = [host.value(var)] + [s for s in host.slots(opt) if s.ndim > 0]
    assert np.all(before[0] < 1.0)  # the finite step moved the weights
    host.apply_scaled(lso, [np.array([np.inf, 1.0, np.nan], np.float32)], [var])
    after = [host.value(var)] + [s for s in host.slots(opt) if s.ndim > 0]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # weights, m, v: no update and no decay
    assert np.all(np.isfinite(after[0]))


def skip_where_the_host_cannot_jit_compile(host, check=False):
    """Skip, with the recorded reason, where the host's own jit-compiled ``fit`` fails
    (deviations.JIT_COMPILE_LIMITS); ``check``: first make sure it still fails."""
    reason = jit_compile_fails(host)
    if reason is None:
        return
    if check:
        x, y = data()
        model = host.dense_model()
        model.compile(optimizer=host.keras.optimizers.AdamW(learning_rate=0.01), loss="mse", jit_compile=True)
        try:
            model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        except Exception:  # noqa: BLE001 -- whatever the host raises, it did not train
            pass
        else:
            pytest.fail("%r's own AdamW fits under jit_compile=True now; remove the entry: %s" % (host, reason))
    pytest.skip("%r: %s" % (host, reason))


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_jit_compiled_fit_equals_plain_fit(host, name):
    """``compile(jit_compile=True)``: XLA on TensorFlow and jax; ``torch.compile`` (dynamo and
    inductor) on Keras 3's torch backend, where the fused kernels, which dynamo cannot trace,
    step aside for the per-variable rule -- the same numbers as the plain path."""
    skip_where_the_host_cannot_jit_compile(host, check=True)
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


WEIGHT_DECAY_BY_EPOCH = (0.2, 0.0, 0.05, 0.1)


def fit_setting_weight_decay(host, opt, eager, set_it=True, **compile_kw):
    """The weights after 4 epochs of ``fit``, a callback setting ``optimizer.weight_decay``
    from WEIGHT_DECAY_BY_EPOCH at the start of each (``set_it``), as a weight-decay schedule
    written for TensorFlow Addons' AdamW does; ``eager``: ``run_eagerly``."""
    class SetWeightDecay(host.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.optimizer.weight_decay = WEIGHT_DECAY_BY_EPOCH[epoch]

    x, y = data()
    model = host.dense_model()
    model.compile(optimizer=opt, loss="mse", run_eagerly=eager, **compile_kw)
    model.fit(x, y, batch_size=16, epochs=len(WEIGHT_DECAY_BY_EPOCH), verbose=0, shuffle=False,
              callbacks=[SetWeightDecay()] if set_it else [])
    return [np.concatenate([w.ravel() for w in model.get_weights()])]


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_set_during_fit_reaches_compiled_steps(host, name, convention):
    """``optimizer.weight_decay = x`` between steps changes the decay of the steps after it,
    in every family -- also where fit's step was traced before the change (jax.jit,
    tf.function, XLA): the compiled fit equals the eager one, whose steps read the value
    each time, and differs from the fit that keeps the constructed value.  SGDW starts from
    its default 0 (no decay until the callback sets one)."""
    kw = dict(learning_rate=0.02, weight_decay=0.05, convention=convention) if name == "AdamW" else \
        dict(learning_rate=0.02, momentum=0.9, convention=convention)
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


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_set_during_fit_reaches_jit_compiled_steps(host, name):
    """As above under ``compile(jit_compile=True)`` (XLA; ``torch.compile`` on torch), from
    a decay of 0: on TensorFlow the fused kernels' decay pass is then conditional on the
    value (no pass while it is 0), and must still run once it is set."""
    skip_where_the_host_cannot_jit_compile(host)
    kw = dict(learning_rate=0.02, weight_decay=0.0) if name == "AdamW" else dict(learning_rate=0.02, momentum=0.9)
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


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_set_during_fit_as_the_hosts_eager_steps(host, name):
    """With the decay set by a callback, optcompat's compiled fit gives the host's own
    AdamW / SGD(weight_decay) numbers in eager steps (which read the value each step); where
    the host's compiled steps keep the first value (deviations.STALE_WEIGHT_DECAY), the entry
    must still reproduce."""
    make, kw, tol = _host_twin(host, name, decay=True)
    theirs = fit_setting_weight_decay(host, make(), eager=True)
    theirs_compiled = fit_setting_weight_decay(host, make(), eager=False)
    stale = stale_weight_decay(host)
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
