"""optcompat.keras_adamw, keras-adamw's API, in every family: trajectories across restart boundaries
against the float64 reference (AdamW, SGDW) and against the host's own Nadam stepped at keras-adamw's
rates (NadamW); t_cur / eta_t set between compiled steps; config and model files keeping them;
keras-adamw's helpers; bad values; keras-adamw 1.38 itself as the oracle where it installs (tf22, tf23).
keras-adamw's own test suite: tests/test_peer_suites.py."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deviations
import reference
from support import CAPTURE
from support import ORACLE_TOL
from support import TOL
from support import assert_close
from support import host_class

T = 5  # total_iterations: a restart every 5 steps
STEPS = 3 * T
LR = {"AdamW": 0.02, "SGDW": 0.05, "NadamW": 0.02}
OWN = {"w0": (0.02, 0.05)}  # keras-adamw's (l1, l2) of w0, normalized by sqrt(1 / T)
MULTIPLIERS = {"w1": 3.0}


def face(host):
    from optcompat.keras_adamw import for_family

    return for_family(host.family)


def problem(seed=0):
    rng = np.random.default_rng(seed)
    x0 = [rng.normal(size=s).astype(np.float32) for s in ((3, 4), (5,))]
    grads = [[rng.normal(size=x.shape).astype(np.float32) for x in x0] for _ in range(STEPS)]
    return x0, grads


def make(host, name, **kwargs):
    kw = dict(learning_rate=LR[name], use_cosine_annealing=True, total_iterations=T, lr_multipliers=MULTIPLIERS,
              weight_decays=OWN, init_verbose=False)
    if name == "SGDW":
        kw.update(momentum=0.9, nesterov=True)
    kw.update(kwargs)
    return getattr(face(host), name)(**kw)


def run(host, opt, x0, grads):
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    out = []
    for g in grads:
        host.apply(opt, g, variables)
        out.append([host.value(v) for v in variables])
    return out, variables


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_annealing_restarts_multipliers_and_decays_equal_the_reference(host, name):
    """Three restart periods: w0 with its own normalized (l1, l2) decays scaled by eta_t, w1 at three
    times the rate, against the float64 reference given keras-adamw's eta_t sequence."""
    x0, grads = problem()
    ours, _ = run(host, make(host, name), x0, grads)
    rule, norm = (reference.adamw if name == "AdamW" else reference.sgdw), (1.0 / T) ** 0.5
    extra = {} if name == "AdamW" else dict(momentum=0.9, nesterov=True)
    per_variable = []
    for i, x in enumerate(x0):
        factor = MULTIPLIERS["w1"] if i == 1 else 1.0
        rate = reference.keras_adamw_annealing(LR[name] * factor, T)
        own = dict(l1=OWN["w0"][0] * norm, weight_decay=OWN["w0"][1] * norm) if i == 0 else dict(weight_decay=0.0)
        per_variable.append(rule(x, [g[i] for g in grads], rate, convention="keras-adamw", lr_0=LR[name] * factor,
                                 **dict(extra, **own)))
    assert_close(ours, [[per_variable[i][t] for i in range(2)] for t in range(STEPS)], TOL)


def test_t_cur_and_eta_t_follow_keras_adamw(host):
    """After each step t_cur advances (back to 0 after T - 1) and eta_t is recomputed from it."""
    x0, grads = problem()
    opt = make(host, "AdamW")
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    etas, counters = [], []
    for g in grads:
        etas.append(float(host.value(opt.eta_t)))
        counters.append(int(host.value(opt.t_cur)))
        host.apply(opt, g, variables)
    expected = [reference.keras_adamw_annealing(1.0, T)(s) for s in range(STEPS)]
    assert np.allclose(etas, expected, rtol=0, atol=2e-7), etas
    assert counters == [s % T for s in range(STEPS)]


def _nadam_oracle(host, x0, grads, scale_of_step, factors, decays):
    """The host's own Nadam, one per variable (its state depends on the step only), its learning
    rate set before each step to keras-adamw's ``lr * eta_t * factor``, and keras-adamw's decay
    ``x - eta_t (l2 x + l1 sign(x))`` applied before the step."""
    nadam = host_class(host, "Nadam")
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    optimizers = [nadam(learning_rate=LR["NadamW"] * f) for f in factors]
    out = []
    for s, g in enumerate(grads):
        eta = scale_of_step(s)
        for i, (opt, v) in enumerate(zip(optimizers, variables)):
            opt.learning_rate = LR["NadamW"] * factors[i] * eta
            if decays[i] is not None:
                x = host.value(v).astype(np.float64)
                l1, l2 = decays[i]
                v.assign((x - eta * l2 * x - eta * l1 * np.sign(x)).astype(np.float32))
            host.apply(opt, [g[i]], [v])
        out.append([host.value(v) for v in variables])
    return out


def test_nadamw_is_the_hosts_nadam_at_keras_adamws_rates(host):
    """NadamW: the host's own Nadam step at ``lr * eta_t * multiplier`` after keras-adamw's decay,
    over three restart periods (on Keras 3 torch, whose Nadam steps every variable at once with
    one rate, through Keras's per-variable loop)."""
    x0, grads = problem()
    ours, _ = run(host, make(host, "NadamW", lr_multipliers=MULTIPLIERS), x0, grads)
    norm = (1.0 / T) ** 0.5
    eta = reference.keras_adamw_annealing(1.0, T)
    theirs = _nadam_oracle(host, x0, grads, eta, [1.0, 3.0],
                           [tuple(d * norm for d in OWN["w0"]), None])
    error = max(np.max(np.abs(a - b)) for sa, sb in zip(ours, theirs) for a, b in zip(sa, sb))
    assert error <= ORACLE_TOL, error
    assert max(np.max(np.abs(a - b)) for a, b in zip(ours[-1], x0)) > 0.05


@pytest.mark.parametrize("name", ["AdamW", "NadamW", "SGDW"])
def test_setting_t_cur_and_eta_t_reaches_compiled_steps(host, name):
    """keras-adamw's test_updates: eta_t set to 0 and t_cur to T - 2 between compiled fit steps:
    the next steps do not move the weights (eta_t 0 for the step, then 0 again after t_cur reaches
    T - 1), and the counters moved on."""
    model = host.dense_model()
    # (SGDW without momentum: a momentum buffer keeps moving the weights at a zero rate, in
    # keras-adamw too; its test_updates starts with an empty one)
    opt = make(host, name, weight_decays=None, lr_multipliers=None, total_iterations=25,
               **(dict(momentum=0.0, nesterov=False) if name == "SGDW" else {}))
    model.compile(optimizer=opt, loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = x[:, :1]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # compiled (traced) once here
    opt.eta_t.assign(0.0)
    opt.t_cur.assign(23.0)
    before = model.get_weights()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert float(host.value(opt.t_cur)) == 24.0 and float(host.value(opt.eta_t)) == pytest.approx(0.0, abs=1e-7)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # eta_t 0 again: t_cur 24 = T - 1 -> 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert float(host.value(opt.t_cur)) == 0.0 and float(host.value(opt.eta_t)) == 1.0
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert max(np.max(np.abs(a - b)) for a, b in zip(before, model.get_weights())) > 0


@pytest.mark.parametrize("name", ["AdamW", "NadamW", "SGDW"])
def test_config_keeps_t_cur_eta_t_and_the_arguments(host, name):
    x0, grads = problem()
    opt = make(host, name, total_iterations_wd=40, lr_multipliers=MULTIPLIERS)
    _, variables = run(host, opt, x0, grads[:7])
    config = opt.get_config()
    assert config["t_cur"] == 2 and config["eta_t"] == pytest.approx(0.5, abs=1e-6)
    assert config["weight_decays"] == {"w0": [0.02, 0.05]}  # as given: normalized again when made
    assert config["total_iterations"] == T and config["total_iterations_wd"] == 40
    assert config["use_cosine_annealing"] is True and config["autorestart"] is True
    assert config["lr_multipliers"] == opt.lr_multipliers
    again = type(opt).from_config(config)
    assert float(host.value(again.t_cur)) == 2.0 and float(host.value(again.eta_t)) == pytest.approx(0.5, abs=1e-6)
    assert again.get_config()["weight_decays"] == config["weight_decays"]
    # the next steps of the copy (fresh slots, same counters) equal a run made with t_cur=2, eta_t=0.5
    fresh = make(host, name, total_iterations_wd=40, t_cur=2, eta_t=config["eta_t"],
                 lr_multipliers=config["lr_multipliers"])
    a, _ = run(host, again, x0, grads[7:10])
    b, _ = run(host, fresh, x0, grads[7:10])
    assert max(np.max(np.abs(p - q)) for sa, sb in zip(a, b) for p, q in zip(sa, sb)) == 0.0


@pytest.mark.parametrize("name", ["AdamW", "NadamW", "SGDW"])
def test_saved_model_file_resumes_with_its_counters(host, name, tmp_path):
    """A model saved mid-period in the family's own file format loads (the class found by its
    registered name) with t_cur, eta_t and the slots, and trains on as the original does."""
    fmt = next((f for f in ("keras", "h5") if f in host.formats and not deviations.match(
        ("save", f), host.family, host.versions)), None)  # (where the host's own optimizers resume)
    if fmt is None:
        pytest.skip("%r: no model file brings the host's own optimizers back with their state there "
                    "(deviations: resume from h5 / savedmodel)" % host)
    x = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32)
    y = x[:, :1] - x[:, 1:2]

    def resumed(optimizer, folder):
        """(the model trained on, the model saved, loaded and trained on, max |difference|)."""
        model = host.dense_model()
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)  # 8 steps: t_cur 2
        os.makedirs(str(tmp_path / folder))
        loaded = host.load_model(host.save(model, fmt, str(tmp_path / folder / "m")))
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        loaded.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return model, loaded, max(np.max(np.abs(a - b)) for a, b in zip(model.get_weights(), loaded.get_weights()))

    model, loaded, error = resumed(make(host, name, weight_decays=None, lr_multipliers=None, total_iterations=6),
                                   "ours")
    assert type(loaded.optimizer).__name__ == name
    assert float(host.value(loaded.optimizer.t_cur)) == float(host.value(model.optimizer.t_cur)) == 0.0
    if name == "NadamW":  # the host's own Nadam's step: where it does not resume, neither can this
        host_error = resumed(host_class(host, "Nadam")(learning_rate=LR[name]), "host")[2]
        if host_error > 1e-6:
            assert error > 1e-6
            pytest.skip("the host's own Nadam does not resume from .%s here either (%.2g away from the "
                        "uninterrupted run)" % (fmt, host_error))
    assert error <= 1e-6, error


def test_model_argument_keeps_keras_adamws_numbers(host):
    """keras-adamw 1.38's AdamW(model=model) (zero_penalties=True) zeroes the penalties before
    reading them: no decay.  Kept, with a warning naming the penalties; zero_penalties=False reads
    them (the penalties stay in the loss, as keras-adamw leaves them)."""
    from test_per_variable import regularized_model

    model = regularized_model(host)
    with pytest.warns(UserWarning, match="no weight decay at all.*weight_decays_from"):
        opt = face(host).AdamW(model=model, total_iterations=12, init_verbose=False)
    assert opt.weight_decays == {} and opt.get_config()["weight_decays"] is None
    assert float(model.get_layer("dense").kernel_regularizer.l2) == 0.0
    model = regularized_model(host)
    opt = face(host).AdamW(model=model, total_iterations=12, zero_penalties=False, init_verbose=False)
    assert {k.split("/")[0].rstrip("_0123456789"): tuple(round(x, 6) for x in v) for k, v in opt.weight_decays.items()
            if "kernel" in k and "recurrent" not in k} == {"lstm": (0.01, 0.02), "dense": (0.0, 0.05)}
    assert float(model.get_layer("dense").kernel_regularizer.l2) == pytest.approx(0.05)


def test_total_iterations_one_drops_annealing_and_decays(host):
    with pytest.warns(UserWarning, match="total_iterations=1"):
        opt = face(host).AdamW(use_cosine_annealing=True, weight_decays=OWN, total_iterations=1)
    assert opt.use_cosine_annealing is False and opt.autorestart is False and opt.weight_decays == {}


def test_helpers(host):
    from optcompat import keras_adamw

    assert keras_adamw.fill_dict_in_order({"lstm": 0, "dense": 0}, [1e-4, 2e-4]) == {"lstm": 1e-4, "dense": 2e-4}
    with pytest.raises(ValueError, match="values"):
        keras_adamw.fill_dict_in_order({"a": 0, "b": 0}, [1])
    backend = host.keras.backend
    v = host.variable(np.full((2,), 3.0, np.float32))
    assert keras_adamw.K_eval(v, backend).tolist() == [3.0, 3.0]
    draws = []
    for _ in range(2):
        keras_adamw.reset_seeds(reset_graph_with_backend=backend, verbose=0)
        draws.append(np.random.rand(3))
    assert np.array_equal(draws[0], draws[1])
    from test_per_variable import regularized_model

    model = regularized_model(host)
    # (TF 2.2 names a second model's variables lstm_1/..., dense_1/...)
    assert {k.split("/")[0].rstrip("_0123456789") for k in keras_adamw.get_weight_decays(model)} == {"lstm", "dense"}
    with pytest.warns(UserWarning, match="no weight decay"):
        assert keras_adamw.get_weight_decays(model, zero_penalties=True) == {}


def test_keras_adamws_module_paths_as_its_users_write_them(host):
    """keras-adamw's paths: ``from optcompat.keras_adamw.utils import K_eval`` (its example.py) and
    the helpers its README uses, the same functions as ``optcompat.keras_adamw``'s; its class
    modules ``optimizers`` / ``optimizers_v2``: the classes of ``optcompat.keras_adamw``."""
    import optcompat.keras_adamw as keras_adamw
    from optcompat.keras_adamw import optimizers
    from optcompat.keras_adamw import optimizers_v2
    from optcompat.keras_adamw.utils import K_eval
    from optcompat.keras_adamw.utils import fill_dict_in_order
    from optcompat.keras_adamw.utils import get_weight_decays
    from optcompat.keras_adamw.utils import reset_seeds

    assert (K_eval, fill_dict_in_order, get_weight_decays, reset_seeds) == (
        keras_adamw.K_eval, keras_adamw.fill_dict_in_order, keras_adamw.get_weight_decays, keras_adamw.reset_seeds)
    for name in ("AdamW", "NadamW", "SGDW"):
        assert getattr(optimizers, name) is getattr(optimizers_v2, name) is getattr(keras_adamw, name) \
            is getattr(keras_adamw.for_family(), name)
    opt = optimizers_v2.AdamW(lr=1e-3, use_cosine_annealing=True, total_iterations=4, init_verbose=False)
    assert opt.convention == "keras-adamw" and float(K_eval(opt.eta_t, host.keras.backend)) == 1.0


BAD = [
    (dict(use_cosine_annealing=False, autorestart=True), ValueError, "autorestart"),
    (dict(t_cur=-1), ValueError, "t_cur"),
    (dict(total_iterations="5"), TypeError, "total_iterations"),
    (dict(total_iterations_wd=0), ValueError, "total_iterations_wd"),
    (dict(eta_max=float("nan")), ValueError, "eta_max"),
    (dict(weight_decays=[("w0", 0.1)]), TypeError, "weight_decays"),
    (dict(weight_decays={"w0": (0.1, 0.2, 0.3)}), ValueError, "weight_decays"),
    (dict(lr_multipliers={"w1": -1.0}), ValueError, "lr_multipliers"),
    (dict(eta_t=-0.5), ValueError, "eta_t"),
]


@pytest.mark.parametrize("name", ["AdamW", "NadamW", "SGDW"])
@pytest.mark.parametrize("kwargs,error,argument", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_arguments_are_refused(host, name, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        make(host, name, **kwargs)


def test_family_specific_refusals(host):
    """OptimizerV2's time-inverse ``decay`` elsewhere, and gradient accumulation."""
    if host.family != "legacy":
        with pytest.raises(ValueError, match="decay.*InverseTimeDecay"):
            face(host).AdamW(decay=1e-3)
    else:
        assert face(host).AdamW(decay=1e-3).get_config()["decay"] == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):  # t_cur counts steps
        face(host).AdamW(gradient_accumulation_steps=2)


# -- keras-adamw 1.38 itself -----------------------------------------------------------------------

@pytest.mark.families("legacy")
@pytest.mark.installed("keras_adamw")
@pytest.mark.parametrize("name", ["AdamW", "NadamW", "SGDW"])
def test_equals_keras_adamw_itself(host, name):
    """keras-adamw 1.38 and optcompat.keras_adamw given the same arguments (annealing with
    autorestart over three periods, lr_multipliers, weight_decays, amsgrad / nesterov), the same
    gradients: the same weights within 2e-6, and the same t_cur / eta_t."""
    from test_per_variable import _keras_adamw
    from test_per_variable import regularized_model

    keras_adamw = _keras_adamw(host)
    period = 12
    theirs_model, ours_model = regularized_model(host), regularized_model(host)
    # (each model's own names: a second LSTM's cell is named lstm_cell_1)
    from optcompat.keras_adamw import get_weight_decays

    theirs_decays, ours_decays = keras_adamw.get_weight_decays(theirs_model), get_weight_decays(ours_model)
    assert [tuple(v) for v in theirs_decays.values()] == [tuple(v) for v in ours_decays.values()]
    kw = dict(lr=0.01 if name != "SGDW" else 0.05, use_cosine_annealing=True, total_iterations=period,
              total_iterations_wd=3 * period, lr_multipliers={"lstm": 0.5, "head": 2.0}, init_verbose=False)
    kw.update({"AdamW": dict(amsgrad=True), "SGDW": dict(momentum=0.9, nesterov=True), "NadamW": {}}[name])
    theirs = getattr(keras_adamw, name)(weight_decays=theirs_decays, **kw)
    ours = getattr(face(host), name)(weight_decays=ours_decays, **kw)
    rng = np.random.default_rng(0)
    start = ours_model.get_weights()
    for _ in range(3 * period + 2):
        grads = [host.tensor(rng.normal(size=v.shape).astype(np.float32)) for v in theirs_model.trainable_variables]
        theirs.apply_gradients(zip(grads, theirs_model.trainable_variables))
        ours.apply_gradients(zip(grads, ours_model.trainable_variables))
    error = max(np.max(np.abs(a - b)) for a, b in zip(theirs_model.get_weights(), ours_model.get_weights()))
    assert max(np.max(np.abs(a - b)) for a, b in zip(ours_model.get_weights(), start)) > 0.05
    if deviations.match(("peer", name), host.family, host.versions):  # NadamW: epsilon inside the root
        assert ORACLE_TOL < error <= 5e-5, error
    else:
        assert error <= ORACLE_TOL, error
    assert int(host.value(theirs.t_cur)) == int(host.value(ours.t_cur)) == 2
    assert float(host.value(theirs.eta_t)) == pytest.approx(float(host.value(ours.eta_t)), abs=1e-7)


@pytest.mark.families("legacy")
@pytest.mark.installed("keras_adamw")
def test_a_keras_adamw_file_loads_into_optcompat(host, tmp_path):
    """A model saved (.h5) with keras-adamw's AdamW mid-period loads with optcompat.keras_adamw's
    class named in custom_objects (as keras-adamw's README has users load), slots and t_cur kept,
    and trains on as keras-adamw does."""
    from test_per_variable import _keras_adamw

    keras_adamw = _keras_adamw(host)
    x = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32)
    y = x[:, :1] - x[:, 1:2]
    model = host.dense_model()
    model.compile(optimizer=keras_adamw.AdamW(lr=0.01, use_cosine_annealing=True, total_iterations=6,
                                              init_verbose=False), loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = str(tmp_path / "theirs.h5")
    model.save(path)
    loaded = host.keras.models.load_model(path, custom_objects={"AdamW": face(host).AdamW})
    assert type(loaded.optimizer) is face(host).AdamW and int(host.value(loaded.optimizer.t_cur)) == 2
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    error = max(np.max(np.abs(a - b)) for a, b in zip(model.get_weights(), loaded.get_weights()))
    assert error <= ORACLE_TOL, error


LOAD_WITH_THE_IMPORT_ALONE = textwrap.dedent('''
    import importlib.abc, sys

    class NoKerasAdamW(importlib.abc.MetaPathFinder):  # keras-adamw is not installed, as far as this sees
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "keras_adamw":
                raise ModuleNotFoundError("No module named %r" % name)
            return None

    sys.meta_path.insert(0, NoKerasAdamW())
    import optcompat.keras_adamw  # nothing of it touched: the import registers keras-adamw's names
    import numpy as np, tensorflow as tf
    model = tf.keras.models.load_model(sys.argv[1])  # no custom_objects
    opt = model.optimizer
    print(type(opt).__module__, type(opt).__name__, int(opt.t_cur.numpy()))
''')


@pytest.mark.families("legacy")
@pytest.mark.installed("keras_adamw")
def test_a_keras_adamw_file_loads_after_the_import_alone(host, tmp_path):
    """keras-adamw registered no names: its files name the bare class (``AdamW``).  After
    ``import optcompat.keras_adamw`` alone, in a process where keras-adamw cannot be imported,
    ``load_model`` without ``custom_objects`` gives optcompat.keras_adamw's AdamW, t_cur kept."""
    from test_per_variable import _keras_adamw

    keras_adamw = _keras_adamw(host)
    x = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32)
    model = host.dense_model()
    model.compile(optimizer=keras_adamw.AdamW(lr=0.01, use_cosine_annealing=True, total_iterations=6,
                                              init_verbose=False), loss="mse")
    model.fit(x, x[:, :1], batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = str(tmp_path / "theirs.h5")
    model.save(path)
    script = tmp_path / "load.py"
    script.write_text(LOAD_WITH_THE_IMPORT_ALONE)
    proc = subprocess.run([sys.executable, str(script), path], **CAPTURE, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.split()[-3:] == ["optcompat.keras_adamw", "AdamW", "2"], proc.stdout
