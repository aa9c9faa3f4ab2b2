"""optcompat.tfa, TensorFlow Addons' API, in every family: TFA's signatures and defaults over
optcompat's classes with convention="tfa" (equal to optcompat's AdamW / SGDW given the same, whose
numbers the float64 reference checks, and to TFA's own classes where TFA installs);
``decay_var_list`` taking priority over ``exclude_from_weight_decay``; the mixin written as TFA's
docs write it; fit, config, saving; and a model file saved with TFA's AdamW loading with
optcompat.tfa and no TFA.  TFA's own test file runs in tests/test_peer_suites.py."""
import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import optcompat
import optcompat.tfa
from deviations import match
from support import CAPTURE
from support import ORACLE_TOL
from support import host_class
from support import problem
from support import steps
from support import tensorflow_addons
from support import worst
from test_import import run_clean
from test_import import vendor

CASES = {
    "adamw": ("AdamW", dict(weight_decay=0.05, learning_rate=0.01)),
    "adamw-amsgrad": ("AdamW", dict(weight_decay=0.05, learning_rate=0.01, amsgrad=True, epsilon=1e-6)),
    "sgdw-momentum": ("SGDW", dict(weight_decay=0.02, learning_rate=0.05, momentum=0.9, nesterov=True)),
}


def tfa_of(host):
    return optcompat.tfa.for_family(host.family)


def run(host, opt, grads=None):
    x0, g = problem()
    return steps(host, opt, x0, grads or g)[0]


def test_tfa_signatures_and_defaults(host):
    """TFA's argument order and defaults (weight_decay first, learning_rate 0.001, epsilon 1e-7,
    momentum 0), convention="tfa"."""
    t = tfa_of(host)
    adamw = inspect.signature(t.AdamW.__init__).parameters
    assert list(adamw)[1:8] == ["weight_decay", "learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad", "name"]
    assert [adamw[k].default for k in ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad", "name")] == \
        [0.001, 0.9, 0.999, 1e-07, False, "AdamW"]
    sgdw = inspect.signature(t.SGDW.__init__).parameters
    assert list(sgdw)[1:6] == ["weight_decay", "learning_rate", "momentum", "nesterov", "name"]
    assert [sgdw[k].default for k in ("learning_rate", "momentum", "nesterov", "name")] == [0.001, 0.0, False, "SGDW"]
    opt = t.AdamW(1e-4)  # positional, as TFA's users write it
    assert (opt.convention, float(opt.get_config()["weight_decay"])) == ("tfa", 1e-4)
    assert isinstance(opt, t.DecoupledWeightDecayExtension) and isinstance(opt, host.module.AdamW)
    assert isinstance(opt, optcompat.tfa.DecoupledWeightDecayExtension)


def test_tfas_module_paths_as_its_users_write_them(host):
    """``import optcompat.tfa as tfa; tfa.optimizers.AdamW(...)`` (keras-io's TFA-era examples),
    ``from optcompat.tfa.optimizers import ...`` and TFA's module ``weight_decay_optimizers``:
    TFA's four names, the same objects as ``optcompat.tfa``'s, the classes those of TFA's family
    for the user's Keras (:func:`optcompat.tfa.for_family`)."""
    import optcompat.tfa as tfa
    from optcompat.tfa.optimizers import SGDW
    from optcompat.tfa.optimizers import AdamW
    from optcompat.tfa.optimizers import DecoupledWeightDecayExtension
    from optcompat.tfa.optimizers import extend_with_decoupled_weight_decay
    from optcompat.tfa.optimizers import weight_decay_optimizers

    given = dict(AdamW=AdamW, SGDW=SGDW, DecoupledWeightDecayExtension=DecoupledWeightDecayExtension,
                 extend_with_decoupled_weight_decay=extend_with_decoupled_weight_decay)
    for name, value in given.items():
        assert value is getattr(tfa.optimizers, name) is getattr(weight_decay_optimizers, name) is getattr(tfa, name)
    assert (AdamW, SGDW) == (tfa.for_family().AdamW, tfa.for_family().SGDW)
    opt = tfa.optimizers.AdamW(weight_decay=1e-4, learning_rate=1e-3)
    assert opt.convention == "tfa" and isinstance(opt, tfa.optimizers.DecoupledWeightDecayExtension)


@pytest.mark.parametrize("case", sorted(CASES))
def test_equal_to_optcompat_with_the_tfa_convention(host, case):
    name, kw = CASES[case]
    t = tfa_of(host)
    mine = run(host, getattr(t, name)(**kw))
    core_kw = dict(kw, convention="tfa")
    if name == "AdamW":
        core_kw.setdefault("epsilon", 1e-7)
    theirs = run(host, host.make(name, **core_kw))
    assert worst(mine, theirs) == 0.0
    plain = run(host, host.make(name, **dict(core_kw, weight_decay=0.0)))
    assert worst(mine, plain) > 100 * ORACLE_TOL  # the decay is there


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
@pytest.mark.parametrize("case", sorted(CASES))
def test_equal_to_tensorflow_addons(host, case):
    """The same arguments given to TFA's own class (its release in this env) and to optcompat.tfa's."""
    name, kw = CASES[case]
    tfa = tensorflow_addons(host)
    theirs = run(host, getattr(tfa.optimizers, name)(**kw))
    mine = run(host, getattr(tfa_of(host), name)(**kw))
    assert worst(mine, theirs) <= ORACLE_TOL, worst(mine, theirs)


def _decay_var_list_run(host, opt, listed):
    x0, grads = problem()
    variables = [host.variable(x, name="w%d" % i) for i, x in enumerate(x0)]
    out = []
    for g in grads:
        opt.apply_gradients([(host.tensor(gi), v) for gi, v in zip(g, variables)],
                            decay_var_list=[variables[i] for i in listed] if listed is not None else None)
        out.append([host.value(v) for v in variables])
    return out


@pytest.mark.parametrize("cls", ["AdamW", "SGDW", "extended"])
def test_decay_var_list_takes_priority_over_exclusion(host, cls):
    """``decay_var_list=[w1]`` with ``exclude_from_weight_decay=["w1"]``: w1 decays (the list wins,
    as in TFA), w0 does not; equal to optcompat's class excluding w0.  Without a list, the
    exclusion holds again (the list is per call)."""
    t = tfa_of(host)
    kw = dict(weight_decay=0.05, learning_rate=0.01)
    if cls == "extended":
        make = lambda **k: t.extend_with_decoupled_weight_decay(host_class(host, "Adam"))(**k)  # noqa: E731
        core = lambda **k: optcompat.decoupled(host_class(host, "Adam"))(convention="tfa", **k)  # noqa: E731
    else:
        make = getattr(t, cls)
        core = lambda **k: host.make(cls, convention="tfa", **dict(k, epsilon=1e-7) if cls == "AdamW" else k)  # noqa
    mine = _decay_var_list_run(host, make(exclude_from_weight_decay=["w1"], **kw), [1])
    theirs = run(host, core(exclude_from_weight_decay=["w0"], **kw))
    assert worst(mine, theirs) <= ORACLE_TOL, worst(mine, theirs)
    excluded = _decay_var_list_run(host, make(exclude_from_weight_decay=["w1"], **kw), None)
    assert worst(excluded, run(host, core(exclude_from_weight_decay=["w1"], **kw))) <= ORACLE_TOL


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
def test_decay_var_list_equal_to_tensorflow_addons(host):
    """The list decays exactly its variables, over an exclusion (TFA 0.17+ has one)."""
    tfa = tensorflow_addons(host)
    if host.facts.at(tensorflow_addons="<0.7"):
        pytest.skip("TFA 0.6's decay_var_list puts the variables in a set, which TF 2.0 refuses "
                    "(\"Variable is unhashable if Tensor equality is enabled\"); TFA 0.9+ runs it")
    if host.facts.at(tensorflow_addons=">=0.16,<0.17"):
        pytest.skip("TFA 0.16's decay_var_list does not restrict the decay: it decays every variable "
                    "exclude_from_weight_decay does not exclude (TFA 0.15 and 0.17+ decay the list only)")
    kw = dict(weight_decay=0.05, learning_rate=0.01, exclude_from_weight_decay=["w1"])
    theirs_kw = kw if host.facts.at(tensorflow_addons=">=0.17") else dict(kw, exclude_from_weight_decay=None)
    theirs = _decay_var_list_run(host, tfa.optimizers.AdamW(**{k: v for k, v in theirs_kw.items() if v}), [1])
    mine = _decay_var_list_run(host, tfa_of(host).AdamW(**kw), [1])
    assert worst(mine, theirs) <= ORACLE_TOL, worst(mine, theirs)


def test_the_mixin_as_tfas_docs_write_it(host):
    """``class MyAdamW(DecoupledWeightDecayExtension, Adam)`` with TFA's ``__init__`` pattern:
    the decoupled decay of the base's family, equal to extend_with_decoupled_weight_decay(Adam)."""
    adam = host_class(host, "Adam")

    class MyAdamW(optcompat.tfa.DecoupledWeightDecayExtension, adam):
        def __init__(self, weight_decay, *args, **kwargs):
            super(MyAdamW, self).__init__(weight_decay, *args, **kwargs)

    mine = run(host, MyAdamW(weight_decay=0.05, learning_rate=0.01))
    extended = optcompat.tfa.extend_with_decoupled_weight_decay(adam)
    assert extended.__name__ == "OptimizerWithDecoupledWeightDecay"  # TFA's name
    theirs = run(host, extended(weight_decay=0.05, learning_rate=0.01))
    assert worst(mine, theirs) == 0.0
    assert worst(mine, run(host, adam(learning_rate=0.01))) > 100 * ORACLE_TOL
    assert issubclass(MyAdamW, optcompat.tfa.DecoupledWeightDecayExtension)


TFA_TAKES_THE_NAME = textwrap.dedent("""
    import sys
    import optcompat.tfa
    import tensorflow as tf
    import tensorflow_addons
    assert tf.keras.utils.get_custom_objects()["AdamW"] is tensorflow_addons.optimizers.AdamW
    try:
        tf.keras.models.load_model(sys.argv[1])
    except TypeError as e:
        print("REFUSED convention" if "convention" in str(e) else "REFUSED %s" % e)
""")


def tensorflow_addons_installed(host):
    return host.versions.get("tensorflow_addons") is not None


def test_fit_config_save_and_load(host, tmp_path):
    """compile + fit with optcompat.tfa.AdamW (a scheduled weight_decay, as TFA's tests), the
    config round trip, and the model file: the class, the decay and the step count come back."""
    t = tfa_of(host)
    wd = host.keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.9)
    opt = t.AdamW(weight_decay=wd, learning_rate=1e-3, exclude_from_weight_decay=["bias"])
    again = type(opt).from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    model = host.dense_model()
    model.compile(optimizer=opt, loss="mean_squared_error")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, x[:, :1], batch_size=16, epochs=2, verbose=0)
    formats = [f for f in ("keras", "h5") if f in host.formats]
    resuming = [f for f in formats if match(("save", f), host.family, host.versions) is None]
    if not formats:
        pytest.skip("%s has no model file format here" % host.family)
    path = host.save(model, (resuming or formats)[0], str(tmp_path / "m"))
    if match("tfa_bare_name", host.family, host.versions) and tensorflow_addons_installed(host):
        # TFA imported after optcompat takes the bare name (deviations): a fresh process shows it
        out = subprocess.run([sys.executable, "-c", TFA_TAKES_THE_NAME, path], **CAPTURE, timeout=600)
        assert out.returncode == 0 and "REFUSED convention" in out.stdout, out.stdout + out.stderr[-3000:]
    loaded = host.load_model(path)
    assert type(loaded.optimizer) is type(opt)
    assert loaded.optimizer.get_config() == opt.get_config()
    if resuming:
        assert host.iterations(loaded.optimizer) == 4


LOAD_WITHOUT_TFA = textwrap.dedent('''
    import importlib, importlib.abc, sys

    class NoTFA(importlib.abc.MetaPathFinder):  # TensorFlow Addons is not installed, as far as this process sees
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow_addons" or name.startswith("tensorflow_addons."):
                raise ModuleNotFoundError("No module named %r" % name)
            return None

    sys.meta_path.insert(0, NoTFA())
    face, first, namespace = sys.argv[4], sys.argv[5], sys.argv[6]
    if first == "face":
        importlib.import_module(face)  # `import optcompat.tfa`, nothing of it touched: the import registers
    import numpy as np, tensorflow as tf
    if first != "face":
        importlib.import_module(face)
    top, _, rest = namespace.partition(".")
    keras = importlib.import_module(top)  # the Keras of TFA's family here: tf.keras, tf_keras
    for part in filter(None, rest.split(".")):
        keras = getattr(keras, part)
    model = keras.models.load_model(sys.argv[1])
    x = np.load(sys.argv[2])
    model.train_on_batch(x, x[:, :1])  # one step more: a SavedModel's slots are restored as they are made
    opt = model.optimizer
    print(type(opt).__module__, type(opt).__name__, int(opt.iterations.numpy()))
    np.save(sys.argv[3], np.concatenate([np.ravel(w) for w in model.get_weights()]))
''')


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
@pytest.mark.parametrize("how", ["import-first", "import-last", "vendored"])
@pytest.mark.parametrize("fmt", ["h5", "savedmodel", "keras"])
def test_a_model_saved_with_tfa_loads_without_tfa(host, fmt, how, tmp_path):
    """A model compiled with TFA's own AdamW, fitted and saved (.h5; a SavedModel; .keras where the
    release writes it), loads in a process where TensorFlow Addons cannot be imported, after
    ``import optcompat.tfa`` alone (no attribute touched; before or after ``import tensorflow``;
    a vendored copy's, where no top-level optcompat is importable): the class is
    optcompat.tfa.AdamW, and its next step
    equals TFA's next step (the step count and the moments came back); from a format that keeps
    no optimizer state here (the deviations table: TFA's own class loads fresh from it too),
    equal to TFA's class loaded from the same file."""
    if fmt not in host.formats:
        pytest.skip("no %s format in this family" % fmt)
    tfa = tensorflow_addons(host)
    model = host.dense_model()
    model.compile(optimizer=tfa.optimizers.AdamW(weight_decay=1e-3, learning_rate=1e-2), loss="mean_squared_error")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, x[:, :1], batch_size=16, epochs=2, verbose=0)
    path = host.save(model, fmt, str(tmp_path / "m"))
    np.save(str(tmp_path / "x.npy"), x[:16])
    resumes = match(("save", fmt), host.family, host.versions) is None
    args = [path, str(tmp_path / "x.npy"), str(tmp_path / "w.npy")]
    if fmt == "keras" and host.facts.at(tensorflow=">=2.13,<2.15"):
        # Keras 2.13-2.14's load_model of a .keras file calls optimizer.build(), which no
        # OptimizerV2 has (the deviations row of legacy's .keras): TFA's own class fails to load,
        # and optcompat.tfa's the same way
        with pytest.raises(AttributeError, match="has no attribute 'build'"):
            host.load_model(path)
        # ("'AdamW' object": without TFA, the class the file names was found, optcompat.tfa's)
        load_without_tfa(host, tmp_path, args, how, fails="'AdamW' object has no attribute 'build'")
        return
    if not resumes:  # the format keeps no optimizer state (deviations): TFA's own class loaded from it
        model = host.load_model(path)
        # (TF < 2.2 writes the bare name "AdamW", which optcompat.tfa, imported here, also takes)
        allowed = (tfa.optimizers.AdamW,) + ((optcompat.tfa.AdamW,)
                                             if host.facts.writes_class_names else ())
        assert type(model.optimizer) in allowed, type(model.optimizer)
    model.train_on_batch(x[:16], x[:16, :1])  # TFA's next step, for the loaded model's to equal
    mine, _ = load_without_tfa(host, tmp_path, args, how, resumes)
    theirs = np.concatenate([np.ravel(w) for w in model.get_weights()])
    # equal after a step only if the step count and both moments came back (a fresh Adam's
    # first step moves every weight by about the learning rate, 1e-2)
    assert mine.shape == theirs.shape and np.max(np.abs(mine - theirs)) <= ORACLE_TOL, np.max(np.abs(mine - theirs))


def load_without_tfa(host, tmp_path, args, how, resumes=True, fails=None):
    """Run LOAD_WITHOUT_TFA (``args``: the file, the batch, where the weights go) as ``how`` says;
    the weights after the loaded model's next step (``fails``: the run must fail with this error instead)."""
    script = tmp_path / "load.py"
    script.write_text(LOAD_WITHOUT_TFA)
    # a registration that fails warns and goes on: here it fails the run
    args = ["-W", "error:optcompat could not register:RuntimeWarning", str(script)] + list(args)
    if how == "vendored":
        vendor(tmp_path)
        face = "myproj._vendor.optcompat.tfa"
        proc = run_clean(tmp_path, args + [face, "face", host.namespace], without=("optcompat", "tensorflow_addons"))
    else:
        face = "optcompat.tfa"
        first = "face" if how == "import-first" else "tensorflow"
        proc = subprocess.run([sys.executable] + args + [face, first, host.namespace], **CAPTURE,
                              timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if fails is not None:
        assert proc.returncode != 0 and fails in proc.stderr, proc.stdout[-3000:] + proc.stderr[-6000:]
        return None, face
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.split()[-3:] == [face, "AdamW", "5" if resumes else "1"], proc.stdout
    return np.load(args[-1]), face


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
@pytest.mark.applies(lambda facts, params: facts.at(tensorflow_addons=">=0.17"))
def test_the_tfa_file_for_envs_without_tfa_is_tfas(host):
    """tests/data/tfa-0.23-adamw (tests/tfa_file.py, made with TFA 0.23 on TF 2.15): TFA's own
    AdamW loads from it (this env's TFA release; before 0.17 TFA's AdamW takes no
    ``exclude_from_weight_decay``, which 0.23's config has) and its next step gives ``next.npy``."""
    import tfa_file

    tensorflow_addons(host)
    model = host.load_model(os.path.join(tfa_file.FOLDER, "m.h5"))
    assert type(model.optimizer).__module__.startswith("tensorflow_addons.")
    assert int(host.value(model.optimizer.iterations)) == 4
    x = np.load(os.path.join(tfa_file.FOLDER, "x.npy"))
    model.train_on_batch(x, x[:, :1])
    error = np.max(np.abs(tfa_file.flat(model) - np.load(os.path.join(tfa_file.FOLDER, "next.npy"))))
    assert error <= ORACLE_TOL, error


@pytest.mark.families("legacy")
@pytest.mark.applies(lambda facts, params: not facts.has("tensorflow_addons") and facts.at(tensorflow=">=2.16"))
@pytest.mark.parametrize("how", ["import-first", "vendored"])
def test_a_tfa_file_loads_where_tfa_cannot_install(host, how, tmp_path):
    """Where TFA cannot install (TF 2.16+; OptimizerV2 is tf_keras's), a model saved with TFA 0.23's
    AdamW on TF 2.15 (tests/data/tfa-0.23-adamw) loads after ``import optcompat.tfa`` alone (a
    vendored copy's too): optcompat.tfa.AdamW with TFA's step count and moments, its next step
    equal to TFA's own (``next.npy``)."""
    import tfa_file

    folder = tfa_file.FOLDER
    mine, _ = load_without_tfa(host, tmp_path, [os.path.join(folder, "m.h5"), os.path.join(folder, "x.npy"),
                                                str(tmp_path / "w.npy")], how)
    error = np.max(np.abs(mine - np.load(os.path.join(folder, "next.npy"))))
    assert error <= ORACLE_TOL, error


BAD = [
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(weight_decay="x"), TypeError, "weight_decay"),
    (dict(weight_decay=0.1, learning_rate=-1.0), ValueError, "learning_rate"),
    (dict(weight_decay=0.1, convention="pytorch"), ValueError, "convention"),
]


@pytest.mark.parametrize("kwargs,error,argument", BAD, ids=[b[2] + "-" + b[1].__name__ for b in BAD])
def test_bad_arguments_are_refused(host, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        tfa_of(host).AdamW(**kwargs)


def test_extend_refuses_what_is_not_an_optimizer_class(host):
    with pytest.raises(TypeError, match="optimizer class"):
        optcompat.tfa.extend_with_decoupled_weight_decay(dict)

