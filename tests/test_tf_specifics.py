"""Families with TensorFlow variables (legacy, keras2): TF1 graphs, hyperparameters held in
variables, plain configs, registration in every import order, TensorFlow Addons as the
oracle of ``convention="tfa"`` and keras-adamw as that of ``convention="keras-adamw"``.
Collected for the legacy and keras2 families only (deselected on Keras 3 hosts).  (Sparse
gradients and tf.function / XLA: test_sparse_and_graph.py.)"""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import optcompat
import reference
from support import CAPTURE
from support import ORACLE_TOL
from support import TOL
from support import applies
from support import assert_close
from support import expected
from support import fit_setting_weight_decay
from support import host_class
from support import import_peer
from support import problem
from support import run
from support import steps
from support import tensorflow_addons
from support import worst

EXACT = 1e-6  # the same arithmetic, grouped differently, in float32

# backend variables, no tf.IndexedSlices / OptimizerV2 hyperparameters in Keras 3
pytestmark = pytest.mark.families("keras2", "legacy")

CASES = {
    "adamw": ("AdamW", dict(learning_rate=0.01, weight_decay=0.05)),
    "adamw-amsgrad": ("AdamW", dict(learning_rate=0.01, weight_decay=0.05, amsgrad=True)),
    "sgdw": ("SGDW", dict(learning_rate=0.05, weight_decay=0.1)),
    "sgdw-nesterov": ("SGDW", dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True)),
}
REFERENCE = {"AdamW": reference.adamw, "SGDW": reference.sgdw}


@pytest.fixture
def tfh(host):
    assert host.family in ("keras2", "legacy") and host.tf is not None
    return host


def moved(traj, x0):
    return max(np.max(np.abs(a - b)) for a, b in zip(traj[-1], x0))


def trajectory(host, opt, x0, grads):
    """The weights after every step of ``opt`` (any optimizer of this host's variables)."""
    return steps(host, opt, x0, grads)[0]


# -- TF1 graphs ----------------------------------------------------------------------------

@pytest.mark.families("legacy")  # the keras2 API runs eagerly or in tf.function only (no TF1 graph mode)
@pytest.mark.parametrize("case", sorted(CASES))
def test_tf1_graph_equals_eager(tfh, case):
    assert hasattr(tfh.optimizer_base, "get_updates"), "%r: OptimizerV2 without TF1 graph mode" % tfh
    tf = tfh.tf
    name, kw = CASES[case]
    kw = dict(kw, learning_rate=tfh.exponential_decay(0.02, 10, 0.5), convention="torch")
    x0, grads = problem()
    grads = grads[:15]
    eager = trajectory(tfh, tfh.make(name, **kw), x0, grads)
    graph = []
    with tf.Graph().as_default():
        variables = [tf.Variable(x, name="w%d" % i) for i, x in enumerate(x0)]
        feeds = [tf.compat.v1.placeholder(tf.float32, x.shape) for x in x0]
        opt = tfh.make(name, **kw)
        update = opt.apply_gradients(zip(feeds, variables))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for g in grads:
                sess.run(update, feed_dict=dict(zip(feeds, g)))
                graph.append(sess.run(variables))
    assert moved(eager, x0) > 100 * EXACT
    assert worst(graph, eager) <= EXACT, worst(graph, eager)


# -- hyperparameters -----------------------------------------------------------------------

@pytest.mark.parametrize("how", ["attribute", "set_value"])
@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_changing_the_learning_rate_takes_effect_on_the_next_step(tfh, name, mode, how):
    lr, change_at = 0.02, 5
    kw = dict(learning_rate=lr, weight_decay=0.1)
    if name == "SGDW":
        kw["momentum"] = 0.9
    x0, grads = problem()
    grads = grads[:12]
    opt = tfh.make(name, **kw)
    variables = [tfh.variable(x, name="w%d" % i) for i, x in enumerate(x0)]

    def apply(gs):
        opt.apply_gradients(zip(gs, variables))

    step = tfh.tf.function(apply) if mode == "tf.function" else apply
    traj = []
    for i, g in enumerate(grads):
        if i == change_at:  # the optimizer is built, and the tf.function traced
            if how == "attribute":
                opt.learning_rate = 0.5 * lr
            else:
                tfh.keras.backend.set_value(opt.learning_rate, 0.5 * lr)
        step([tfh.tensor(gi) for gi in g])
        traj.append([tfh.value(v) for v in variables])
    assert float(tfh.value(opt.learning_rate)) == pytest.approx(0.5 * lr)
    ref = expected(REFERENCE[name], dict(kw, learning_rate=lambda t: lr if t < change_at else 0.5 * lr),
                   x0, grads)
    unchanged = expected(REFERENCE[name], kw, x0, grads)
    assert worst(ref, unchanged) > 10 * TOL  # the change is visible in the numbers
    assert_close(traj, ref, TOL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_is_plain_python_after_training(tfh, case):
    name, kw = CASES[case]
    x0, grads = problem()
    opt = tfh.make(name, **kw)
    trajectory(tfh, opt, x0, grads[:2])
    config = opt.get_config()
    json.dumps(config)  # no NumPy scalars or tensors
    assert config["learning_rate"] == pytest.approx(kw["learning_rate"], rel=1e-6)
    assert config["weight_decay"] == pytest.approx(kw["weight_decay"], rel=1e-6)
    clone = type(opt).from_config(config)
    assert worst(trajectory(tfh, clone, x0, grads[:3]),
                 trajectory(tfh, tfh.make(name, **kw), x0, grads[:3])) <= EXACT



TFA_CASES = {
    "adamw": ("AdamW", dict(learning_rate=0.01, weight_decay=0.01)),
    "adamw-amsgrad-betas": ("AdamW", dict(learning_rate=0.003, weight_decay=0.02, amsgrad=True,
                                          beta_1=0.8, beta_2=0.95, epsilon=1e-3)),
    "adamw-schedule": ("AdamW", dict(learning_rate=("exp", 0.02, 10, 0.5), weight_decay=0.01)),
    "sgdw": ("SGDW", dict(learning_rate=0.05, weight_decay=0.01)),
    "sgdw-momentum": ("SGDW", dict(learning_rate=0.05, weight_decay=0.01, momentum=0.9)),
    "sgdw-nesterov-schedule": ("SGDW", dict(learning_rate=("exp", 0.05, 10, 0.5), weight_decay=0.01,
                                            momentum=0.9, nesterov=True)),
}


@pytest.mark.installed("tensorflow_addons")  # tox envs tf22..tf215 pin a TFA that works
@pytest.mark.parametrize("case", sorted(TFA_CASES))
def test_tfa_convention_equals_tensorflow_addons(tfh, case):
    tfa = tensorflow_addons(tfh)
    name, kw = TFA_CASES[case]
    kw = dict(kw)
    if isinstance(kw["learning_rate"], tuple):
        kw["learning_rate"] = tfh.exponential_decay(*kw["learning_rate"][1:])
    x0, grads = problem()
    ours = run(tfh, name, dict(kw, convention="tfa"), x0, grads)
    theirs = trajectory(tfh, getattr(tfa.optimizers, name)(**kw), x0, grads)
    assert moved(theirs, x0) > 100 * ORACLE_TOL
    assert worst(ours, theirs) <= ORACLE_TOL, worst(ours, theirs)


@pytest.mark.installed("tensorflow_addons")  # tox envs tf22..tf215 pin a TFA that works
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_weight_decay_schedule_callback_as_tensorflow_addons(tfh, name):
    """A weight-decay schedule written for TensorFlow Addons -- a callback that sets
    ``optimizer.weight_decay`` each epoch -- gives TFA's numbers in a compiled ``fit`` with
    ``convention="tfa"``, in both TensorFlow families."""
    tfa = tensorflow_addons(tfh)
    kw = dict(learning_rate=0.02, weight_decay=0.05) if name == "AdamW" else \
        dict(learning_rate=0.02, weight_decay=0.05, momentum=0.9)
    theirs = fit_setting_weight_decay(tfh, getattr(tfa.optimizers, name)(**kw), eager=False)
    ours = fit_setting_weight_decay(tfh, tfh.make(name, convention="tfa", **kw), eager=False)
    constant = fit_setting_weight_decay(tfh, tfh.make(name, convention="tfa", **kw), eager=False,
                                         set_it=False)
    assert worst(theirs, constant) > 1e-3  # TFA follows the callback
    assert worst(ours, theirs) <= ORACLE_TOL, worst(ours, theirs)


@pytest.mark.installed("tensorflow_addons")  # tox envs tf22..tf215 pin a TFA that works
@pytest.mark.parametrize("case", ["adamw-amsgrad-eps", "sgdw-nesterov"])
def test_keras_adamw_convention_equals_tfa_with_decay_following_the_schedule(tfh, case):
    """TensorFlow Addons' documented way to schedule the decay -- ``weight_decay`` a callable
    that follows the learning-rate schedule, ``wd * s(t) / s(0)`` -- is the keras-adamw
    convention with ``weight_decay=wd`` (not ``tfa``, whose decay is constant)."""
    tfa = tensorflow_addons(tfh)
    name, kw = {"adamw-amsgrad-eps": ("AdamW", dict(amsgrad=True, epsilon=1e-3)),
                "sgdw-nesterov": ("SGDW", dict(momentum=0.9, nesterov=True))}[case]
    lr0, wd = 0.02, 0.01
    schedule = tfh.exponential_decay(lr0, 10, 0.5)
    # the callable is called at apply time, once `theirs_opt` is bound
    theirs_opt = getattr(tfa.optimizers, name)(
        learning_rate=schedule, weight_decay=lambda: wd * schedule(theirs_opt.iterations) / lr0, **kw)
    x0, grads = problem()
    theirs = trajectory(tfh, theirs_opt, x0, grads)
    ours = run(tfh, name, dict(kw, learning_rate=("exp", lr0, 10, 0.5), weight_decay=wd,
                               convention="keras-adamw"), x0, grads)
    assert moved(theirs, x0) > 100 * ORACLE_TOL
    assert worst(ours, theirs) <= ORACLE_TOL, worst(ours, theirs)
    constant = run(tfh, name, dict(kw, learning_rate=("exp", lr0, 10, 0.5), weight_decay=wd,
                                   convention="tfa"), x0, grads)
    assert worst(constant, theirs) > 100 * ORACLE_TOL


def _keras_adamw(host):
    assert host.family == "legacy"
    os.environ["TF_KERAS"] = "1"  # keras-adamw picks its tf.keras code at import
    return import_peer(host, "keras_adamw", "keras-adamw 1.38 runs on TF 2.2-2.3 (tox envs "
                        "tf22, tf23 install it)")


# (class, keras-adamw's own arguments, its cosine annealing's (eta_min, eta_max, autorestart)
# or None: no annealing)
KERAS_ADAMW_CASES = {
    "adamw": ("AdamW", dict(learning_rate=0.01), None),
    "adamw-anneal": ("AdamW", dict(learning_rate=0.01), (0.0, 1.0, None)),
    "adamw-amsgrad-eps-anneal": ("AdamW", dict(learning_rate=0.01, amsgrad=True, epsilon=1e-3), (0.1, 1.0, None)),
    "adamw-anneal-no-restart": ("AdamW", dict(learning_rate=0.01), (0.05, 0.8, False)),
    "sgdw-momentum": ("SGDW", dict(learning_rate=0.05, momentum=0.9), None),
    "sgdw-nesterov-anneal": ("SGDW", dict(learning_rate=0.05, momentum=0.9, nesterov=True), (0.1, 1.0, None)),
}
KERAS_ADAMW_PERIOD = 12  # total_iterations: the 40 steps cross three restarts


# keras-adamw subclasses tf.keras's OptimizerV2: its oracle runs in the legacy family, where
# installed (keras-adamw 1.38 runs on TF 2.2-2.3: tox envs tf22, tf23)
@pytest.mark.families("legacy")
@pytest.mark.installed("keras_adamw")
@pytest.mark.parametrize("case", sorted(KERAS_ADAMW_CASES))
def test_keras_adamw_convention_equals_keras_adamw(tfh, case):
    """convention="keras-adamw" gives keras-adamw's numbers, written as the README says a
    user migrates: its L2 penalty ``l2`` (normalized by ``sqrt(1 / total_iterations)``) is
    ``weight_decay``, and its cosine annealing (with its default autorestart: a warm restart
    every ``total_iterations`` steps) is ``optcompat.schedules.CosineAnnealing``."""
    keras_adamw = _keras_adamw(tfh)
    name, kw, annealing = KERAS_ADAMW_CASES[case]
    l2 = 0.1
    x0, grads = problem()
    total = KERAS_ADAMW_PERIOD
    theirs_kw = dict(kw)
    if annealing is not None:
        theirs_kw.update(use_cosine_annealing=True, eta_min=annealing[0], eta_max=annealing[1])
        if annealing[2] is not None:
            theirs_kw["autorestart"] = annealing[2]
    theirs = trajectory(tfh, getattr(keras_adamw, name)(
        weight_decays={"w%d:0" % i: (0.0, l2) for i in range(len(x0))}, total_iterations=total,
        init_verbose=False, **theirs_kw), x0, grads)
    ours_kw = dict(kw, weight_decay=optcompat.normalized_weight_decay(l2, total_iterations=total))
    if annealing is not None:
        from optcompat.schedules import for_family

        ours_kw["learning_rate"] = for_family(tfh.family).CosineAnnealing(
            kw["learning_rate"], total_iterations=total, eta_min=annealing[0], eta_max=annealing[1],
            autorestart=annealing[2] is not False)
    ours = run(tfh, name, dict(ours_kw, convention="keras-adamw"), x0, grads)
    assert moved(theirs, x0) > 100 * ORACLE_TOL
    assert worst(ours, theirs) <= ORACLE_TOL, worst(ours, theirs)
    if name == "AdamW" and kw.get("epsilon", 0) >= 1e-3:
        # the paper's epsilon (inside the bias correction) is not keras-adamw's
        paper = run(tfh, name, dict(ours_kw, convention="paper"), x0, grads)
        assert worst(paper, theirs) > 100 * ORACLE_TOL
    if annealing is not None and annealing[2] is None:
        # the README's former mapping, CosineDecay(lr, T - 1, alpha=eta_min), has no restarts
        schedules = tfh.keras.optimizers.schedules
        cosine = getattr(schedules, "CosineDecay", None) or tfh.keras.experimental.CosineDecay  # TF 2.2
        old = run(tfh, name, dict(ours_kw, learning_rate=cosine(kw["learning_rate"], total - 1, alpha=annealing[0]),
                                  convention="keras-adamw"), x0, grads)
        assert worst(old, theirs) > 100 * ORACLE_TOL


# -- the host's own optimizers of this family, without decay -------------------------------

@pytest.mark.parametrize("case", ["adam", "adam-amsgrad-schedule", "sgd-momentum", "sgd-nesterov"])
def test_without_decay_equals_the_host_optimizer(tfh, case):
    """weight_decay=0 and the keras convention: the host's own Adam / SGD of this family."""
    ours, theirs, kw = {
        "adam": ("AdamW", "Adam", dict(learning_rate=0.01)),
        "adam-amsgrad-schedule": ("AdamW", "Adam", dict(learning_rate=("exp", 0.02, 10, 0.5), amsgrad=True)),
        "sgd-momentum": ("SGDW", "SGD", dict(learning_rate=0.05, momentum=0.9)),
        "sgd-nesterov": ("SGDW", "SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    }[case]
    cls = host_class(tfh, theirs)
    if cls is None:
        pytest.skip("%r has no built-in %s of this family" % (tfh, theirs))
    if isinstance(kw["learning_rate"], tuple):
        kw["learning_rate"] = tfh.exponential_decay(*kw["learning_rate"][1:])
    x0, grads = problem()
    mine = run(tfh, ours, dict(kw, weight_decay=0.0), x0, grads)
    host = trajectory(tfh, cls(**kw), x0, grads)
    assert moved(host, x0) > 100 * ORACLE_TOL
    assert worst(mine, host) <= ORACLE_TOL, worst(mine, host)


# -- registration in every import order ----------------------------------------------------

ORDER = textwrap.dedent("""
    import importlib, sys
    first, second, family, top, registered_name, tests = sys.argv[1:7]
    importlib.import_module(first)
    importlib.import_module(second)
    print("TOP", top in sys.modules, "LOADED", "optcompat." + family in sys.modules)
    if top in sys.modules:
        sys.path.insert(0, tests)
        from support import host_namespace
        keras = host_namespace(family)[0]
        get = getattr(keras.utils, "get_registered_object", None)  # (TF 2.0 has none)
        found = get(registered_name) if get else keras.utils.get_custom_objects().get(registered_name)
        print("REGISTERED", found is not None)
""")


@applies(lambda facts, params: facts.has(params["module"]))  # the module is installed
@pytest.mark.parametrize("order", ["optcompat-first", "host-first"])
@pytest.mark.parametrize("module", ["tensorflow", "keras", "tf_keras"])
def test_registered_in_every_import_order(tfh, module, order, tmp_path):
    """Importing ``module`` before or after optcompat registers the family's classes as soon
    as their host namespace is imported -- and never imports a host that was not."""
    assert importlib.util.find_spec(module) is not None
    top = optcompat_host_top(tfh)
    # (tf.keras before TF 2.2 writes bare class names: there the family's name is looked up)
    name = ("optcompat.legacy>AdamW" if tfh.facts.writes_class_names
            else tfh.keras.utils.get_registered_name(tfh.module.AdamW))
    assert name != "AdamW", "AdamW is not registered with %s" % tfh.namespace
    first, second = ("optcompat", module) if order == "optcompat-first" else (module, "optcompat")
    script = tmp_path / "order.py"
    script.write_text(ORDER)
    out = subprocess.run([sys.executable, str(script), first, second, tfh.family, top, name,
                          os.path.dirname(os.path.abspath(__file__))],
                         **CAPTURE, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-4000:]
    assert "could not register" not in out.stderr, out.stderr[-4000:]
    if "TOP True" in out.stdout:
        assert "LOADED True" in out.stdout and "REGISTERED True" in out.stdout, out.stdout
    else:
        assert "LOADED False" in out.stdout, out.stdout


def optcompat_host_top(host):
    """The top package of the family's host (tensorflow, tf_keras): the harness's table."""
    return host.facts.base.split(".")[0]


@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_callable_learning_rate_is_read_at_every_step(tfh, name):
    lr = {"value": 0.02}
    kw = dict(weight_decay=0.1, convention="torch")
    if tfh.family == "keras2":  # its base class turns a callable into a constant variable
        with pytest.raises(TypeError, match="`learning_rate`"):
            tfh.make(name, learning_rate=lambda: lr["value"], **kw)
        return
    if name == "SGDW":
        kw["momentum"] = 0.9
    x0, grads = problem()
    grads = grads[:10]
    opt = tfh.make(name, learning_rate=lambda: lr["value"], **kw)
    variables = [tfh.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    traj = []
    for i, g in enumerate(grads):
        if i == 4:
            lr["value"] = 0.005
        opt.apply_gradients([(tfh.tensor(gi), v) for gi, v in zip(g, variables)])
        traj.append([tfh.value(v) for v in variables])
    ref = expected(REFERENCE[name], dict(kw, learning_rate=lambda t: 0.02 if t < 4 else 0.005), x0, grads)
    assert worst(ref, expected(REFERENCE[name], dict(kw, learning_rate=0.02), x0, grads)) > 10 * TOL
    assert_close(traj, ref, TOL)
