"""`import optcompat` imports no framework; a vendored copy works under another name, also
where `packaging` cannot be imported."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest

import optcompat
import reference
from deviations import match
from support import CAPTURE
from support import ENV
from support import TOL
from support import applies

PKG = os.path.dirname(optcompat.__file__)
HEAVY = ("tensorflow", "keras", "tf_keras", "jax", "torch")


def python(code, **env):
    out = subprocess.run([sys.executable, "-c", code], **CAPTURE,
                         env=dict(os.environ, **env), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_import_loads_no_framework():
    out = python("import sys, json, optcompat; optcompat.describe(); optcompat.available_families();"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_state_module_loads_no_framework():
    """optcompat.state reads and writes its files with NumPy alone (a host is imported only to
    reach an optimizer, or to read a TF checkpoint)."""
    out = python("import sys, json, optcompat.state, optcompat.state.__main__;"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_telling_torch_and_optax_optimizers_apart_imports_neither():
    """optcompat.state asks whether an object is torch's or optax's from sys.modules alone: a
    library not imported cannot have made it."""
    out = python("import sys, json; import optcompat.state._access as a, optcompat._detect as d;"
                 "assert d.foreign_optimizer((1, (2, 3))) is None and d.foreign_optimizer(object()) is None;"
                 "print(json.dumps([m for m in %r + ('optax',) if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_schedules_module_loads_no_framework():
    """optcompat.schedules resolves its classes on first use (the default family's Keras)."""
    out = python("import sys, json, optcompat.schedules; from optcompat import _schedules;"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_tfa_module_loads_no_framework():
    """optcompat.tfa (TensorFlow Addons' names) resolves its classes on first use."""
    out = python("import sys, json, optcompat.tfa; from optcompat.tfa import DecoupledWeightDecayExtension;"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_the_faces_module_paths_load_no_framework():
    """The peers' module paths (optcompat.tfa.optimizers, .weight_decay_optimizers,
    optcompat.keras_adamw.utils, .optimizers, .optimizers_v2) import and list their names
    without a framework; the classes are listed, resolved on first use."""
    out = python(
        "import sys, json\n"
        "import optcompat.tfa as tfa, optcompat.keras_adamw as keras_adamw\n"
        "import optcompat.tfa.optimizers.weight_decay_optimizers as wdo\n"
        "from optcompat.tfa.optimizers import extend_with_decoupled_weight_decay\n"
        "from optcompat.keras_adamw.utils import K_eval, get_weight_decays, fill_dict_in_order, reset_seeds\n"
        "from optcompat.keras_adamw import optimizers, optimizers_v2\n"
        "names = [dir(m) for m in (tfa, tfa.optimizers, wdo, keras_adamw, keras_adamw.utils, optimizers_v2)]\n"
        "print(json.dumps([names, [m for m in %r if m in sys.modules]]))" % (HEAVY,))
    names, loaded = json.loads(out.strip().splitlines()[-1])
    tfa_names = {"AdamW", "SGDW", "extend_with_decoupled_weight_decay", "DecoupledWeightDecayExtension"}
    assert tfa_names <= set(names[0]) and tfa_names <= set(names[1]) and tfa_names <= set(names[2])
    helpers = {"get_weight_decays", "fill_dict_in_order", "reset_seeds", "K_eval"}
    assert {"AdamW", "NadamW", "SGDW", "utils", "optimizers_v2"} | helpers <= set(names[3])
    assert helpers <= set(names[4]) and {"AdamW", "NadamW", "SGDW"} <= set(names[5])
    assert loaded == []


# The peers' names optcompat does not provide, as users write them: (statement, error, face)
NOT_PROVIDED = [
    ("import optcompat.tfa as tfa; tfa.optimizers.RectifiedAdam", "AttributeError", "tfa"),
    ("import optcompat.tfa as tfa; tfa.layers", "AttributeError", "tfa"),
    ("import optcompat.tfa as tfa; tfa.optimizers.weight_decay_optimizers.AdaBelief", "AttributeError", "tfa"),
    ("from optcompat.tfa.optimizers import LazyAdam", "ImportError", "tfa"),
    ("from optcompat.tfa import layers", "ImportError", "tfa"),
    ("import optcompat.tfa.layers", "ModuleNotFoundError", "tfa"),
    ("from optcompat.tfa.image import rotate", "ModuleNotFoundError", "tfa"),
    ("import optcompat.keras_adamw as k; k.utils.K_eval2", "AttributeError", "keras_adamw"),
    ("from optcompat.keras_adamw.utils import _apply_weight_decays", "ImportError", "keras_adamw"),
    ("from optcompat.keras_adamw import TF_KERAS", "ImportError", "keras_adamw"),
    ("import optcompat.keras_adamw.optimizers_225", "ModuleNotFoundError", "keras_adamw"),
]
REFUSAL = {"tfa": ("TensorFlow Addons' decoupled weight decay only", "the rest of TensorFlow Addons is not part"),
           "keras_adamw": ("keras-adamw's", "the rest of keras-adamw is not part")}


def test_the_peers_names_optcompat_does_not_provide_are_refused_saying_so():
    """``tfa.optimizers.RectifiedAdam``, ``tfa.layers``, ``import optcompat.tfa.layers``,
    keras-adamw's private helpers...: the error Python raises for that statement (AttributeError,
    ImportError in ``from ... import``, ModuleNotFoundError for a module), its message saying
    what optcompat provides and that the rest of the peer is not part of it; no framework
    imported; ``hasattr`` and ``getattr(..., default)`` answer as for any missing name."""
    code = textwrap.dedent("""
        import json, sys
        out = []
        for statement in %r:
            try:
                exec(statement, {})
                out.append(None)
            except Exception as e:
                out.append([type(e).__name__, str(e)])
        import optcompat.tfa as tfa, optcompat.keras_adamw as k
        probes = [hasattr(tfa, "layers"), getattr(tfa.optimizers, "Lookahead", 7), hasattr(k.utils, "x")]
        print(json.dumps([out, probes, [m for m in %r if m in sys.modules]]))
    """) % ([n[0] for n in NOT_PROVIDED], HEAVY)
    out, probes, loaded = json.loads(python(code).strip().splitlines()[-1])
    for (statement, error, face), got in zip(NOT_PROVIDED, out):
        assert got is not None, "%s raised nothing" % statement
        assert got[0] == error, (statement, got)
        provides, rest = REFUSAL[face]
        assert provides in got[1] and rest in got[1], (statement, got[1])
    assert probes == [False, 7, False] and loaded == []


@pytest.mark.applies(lambda facts, params: facts.family == ENV.default)
def test_schedules_are_the_default_familys_and_load_in_a_fresh_process(host, tmp_path):
    """``optcompat.schedules.X`` is the default family's class, registered as ``optcompat>X``:
    a fresh process that imports optcompat deserializes it by that name."""
    from optcompat import schedules

    s = schedules.CosineDecayRestarts(0.1, 10)
    assert isinstance(s, host.keras.optimizers.schedules.LearningRateSchedule)
    if match("schedule_name", host.family, host.versions):  # tf.keras before TF 2.2
        assert host.registered_name(type(s)) == "CosineDecayRestarts"  # TF's own class's name
        config = json.dumps(host.keras.optimizers.serialize(host.make("AdamW", learning_rate=s))
                            ["config"]["learning_rate"])  # optcompat names it in an optimizer's config
    else:
        assert host.registered_name(type(s)) == "optcompat>CosineDecayRestarts"
        config = json.dumps(host.keras.optimizers.schedules.serialize(s))
    out = python("import json, optcompat, %s as k; s = k.optimizers.schedules.deserialize(json.loads(%r));"
                 "print(type(s).__module__, type(s).__name__, float(s(12)))" % (host.namespace, config))
    assert out.split()[-3:-1] == ["optcompat.schedules", "CosineDecayRestarts"]
    assert float(out.split()[-1]) == pytest.approx(float(host.value(s(12))), abs=1e-7)


def test_module_main_prints_detection():
    out = subprocess.run([sys.executable, "-m", "optcompat"], **CAPTURE, timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert set(info) >= {"default_family", "families", "versions", "python"}


def vendor(tmp_path):
    """optcompat/ copied to ``tmp_path`` as the package myproj._vendor.optcompat."""
    dest = tmp_path / "myproj" / "_vendor" / "optcompat"
    shutil.copytree(PKG, str(dest), ignore=shutil.ignore_patterns("__pycache__"))
    for d in (tmp_path / "myproj", tmp_path / "myproj" / "_vendor"):
        (d / "__init__.py").write_text("")


def test_vendored_copy_works(tmp_path, host):
    vendor(tmp_path)
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "import myproj._vendor.optcompat as oc\n"
        "assert 'optcompat' not in sys.modules, 'the vendored copy imported the installed one'\n"
        "assert not [m for m in %r if m in sys.modules]\n"
        "cls = oc.family_module(%r).AdamW\n"
        "assert cls.__module__.startswith('myproj._vendor.optcompat.'), cls.__module__\n"
        "import numpy as np\n"
        "opt = cls(learning_rate=0.1, weight_decay=0.5)\n"
        "import myproj._vendor.optcompat.state as st\n"  # its family hooks, found relatively
        "access, info = st._access.describe(opt)\n"
        "assert type(access).__module__.startswith('myproj._vendor.optcompat.'), type(access).__module__\n"
        "assert (access.family, info['kind'], info['slots']) == (%r, 'adam', ['m', 'v']), (access.family, info)\n"
        "assert 'optcompat' not in sys.modules\n"
        "print(type(opt).__mro__[1].__module__)\n"
    ) % (str(tmp_path), HEAVY, host.family, host.family)
    python(code)


def clean_site(tmp_path, without=("optcompat",)):
    """A folder of links to this env's site-packages entries, less those of ``without`` (and the
    ``.pth`` files): on ``PYTHONPATH`` of ``python -S`` run in ``tmp_path``, a process that finds
    the frameworks but no top-level optcompat (neither the installed one nor this checkout)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    paths = sysconfig.get_paths()
    for root in sorted({paths["purelib"], paths["platlib"]}):
        for entry in os.listdir(root):
            top = entry.split("-")[0].split(".")[0]
            if top in without or top == "__editable__" or entry.endswith(".pth") or (site / entry).exists():
                continue
            (site / entry).symlink_to(os.path.join(root, entry))
    return str(site)


def run_clean(tmp_path, args, without=("optcompat",)):
    """``python -S args`` in ``tmp_path`` (a vendored copy there), on :func:`clean_site`.

    ``args``: interpreter options (``-W ...``), then a script, ``-m module`` or ``-c code``, then
    its arguments.  ``-S`` leaves ``site.USER_SITE`` None, which TensorFlow 2.2 reads when it is
    imported (``_running_from_pip_package``: ``TypeError``), so the run first computes it as
    Python does without ``-S`` (``site.getusersitepackages()``: nothing is added to the path)."""
    env = dict(os.environ, PYTHONPATH=clean_site(tmp_path, without), PYTHONNOUSERSITE="1")
    args, options = list(args), []
    while args[0] not in ("-m", "-c") and args[0].startswith("-"):
        options.append(args.pop(0))
        if options[-1] in ("-W", "-X"):
            options.append(args.pop(0))
    if args[0] == "-m":
        run, argv = "runpy.run_module(%r, run_name='__main__', alter_sys=True)" % args[1], args[1:]
    elif args[0] == "-c":
        run, argv = "exec(compile(%r, '<string>', 'exec'), {'__name__': '__main__'})" % args[1], args[1:]
    else:
        run, argv = "runpy.run_path(%r, run_name='__main__')" % args[0], args
    code = "import runpy, site, sys; site.getusersitepackages(); sys.argv = %r; %s" % (argv, run)
    return subprocess.run([sys.executable, "-S"] + options + ["-c", code], cwd=str(tmp_path), env=env, **CAPTURE,
                          timeout=600)


# The faces of a vendored copy as a project uses them, in a process where no top-level optcompat
# can be imported: TFA's paths, keras-adamw's and its helpers, decoupled(), optcompat.schedules,
# real fits; optcompat.state's file saved and loaded (the continuation equal to the straight run).
VENDORED_FACES = textwrap.dedent("""
    import json, sys
    try:
        import optcompat
    except ImportError:
        pass
    else:
        raise SystemExit("a top-level optcompat is importable: %s" % optcompat.__file__)
    from myproj._vendor.optcompat.tfa.optimizers import AdamW
    import myproj._vendor.optcompat.tfa as tfa
    import myproj._vendor.optcompat.keras_adamw as keras_adamw
    from myproj._vendor.optcompat.keras_adamw.utils import K_eval, fill_dict_in_order, get_weight_decays
    import myproj._vendor.optcompat as oc
    from myproj._vendor.optcompat import schedules, state
    import numpy as np

    keras = oc.family_module(tfa.default_family()).keras
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = x[:, :1] - 0.5 * x[:, 1:2]

    def model(weights=None):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(8, activation="tanh", name="hidden",
                                    kernel_regularizer=keras.regularizers.l2(1e-3))(inputs)
        made = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
        if weights is not None:
            made.set_weights(weights)
        return made

    start = model().get_weights()
    made = {
        "tfa.optimizers.AdamW": lambda m: AdamW(weight_decay=1e-3, learning_rate=1e-2),
        "tfa.optimizers.SGDW": lambda m: tfa.optimizers.SGDW(weight_decay=1e-3, learning_rate=1e-2, momentum=0.9),
        "keras_adamw.AdamW": lambda m: keras_adamw.AdamW(
            lr=1e-2, use_cosine_annealing=True, total_iterations=8, init_verbose=False,
            weight_decays=fill_dict_in_order(get_weight_decays(m), [2e-3])),
        "decoupled(Adam)": lambda m: oc.decoupled(keras.optimizers.Adam)(learning_rate=1e-2, weight_decay=1e-3),
        "AdamW(schedules.CosineDecayRestarts)": lambda m: oc.AdamW(
            learning_rate=schedules.CosineDecayRestarts(1e-2, 4), weight_decay=1e-3),
    }
    out = {}
    for name, make in made.items():
        m = model(start)
        opt = make(m)
        m.compile(optimizer=opt, loss="mse")
        losses = m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
        out[name] = {"module": type(opt).__module__, "first": losses[0], "last": losses[-1]}
        if name == "keras_adamw.AdamW":
            out[name]["eta_t"] = float(K_eval(opt.eta_t, keras.backend))
            out[name]["decays"] = [list(v) for v in opt.weight_decays.values()]
        if name == "tfa.optimizers.AdamW":  # its state handed to a fresh optimizer through a file
            state.save(opt, "state.npz", m.trainable_variables)
            again = model(m.get_weights())
            resumed = AdamW(weight_decay=1e-3, learning_rate=1e-2)
            again.compile(optimizer=resumed, loss="mse")
            state.load(resumed, "state.npz", again.trainable_variables)
            m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
            again.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
            out["state"] = max(float(np.max(np.abs(a - b))) for a, b in zip(m.get_weights(), again.get_weights()))
    print("RESULT " + json.dumps(out))
""")


def test_a_vendored_copys_faces_work_where_no_optcompat_is_importable(tmp_path):
    """The copy under myproj._vendor.optcompat, in a process on a clean path (the frameworks'
    site-packages less optcompat's; ``import optcompat`` fails there): TFA's paths
    (``from ...tfa.optimizers import AdamW``, ``tfa.optimizers.SGDW``), keras-adamw's AdamW with
    ``utils``' helpers, ``decoupled()``, ``optcompat.schedules``, each in a real fit whose loss
    falls, their classes the copy's own; ``optcompat.state`` saved and loaded (the run continues
    as the straight one); ``python -m myproj._vendor.optcompat --selftest`` passes."""
    if ENV.default is None:
        pytest.skip("no host framework in this env")
    vendor(tmp_path)
    (tmp_path / "faces.py").write_text(VENDORED_FACES)
    out = run_clean(tmp_path, ["faces.py"])
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    result = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    assert abs(result.pop("state")) <= 1e-6
    for name, got in result.items():
        assert (got["module"] + ".").startswith("myproj._vendor.optcompat."), (name, got)  # the copy's own
        assert got["last"] < got["first"], (name, got)  # it trained
    assert 0.0 < result["keras_adamw.AdamW"]["eta_t"] < 1.0  # annealed by keras-adamw's schedule
    assert result["keras_adamw.AdamW"]["decays"] == [[0.0, 2e-3]]  # fill_dict_in_order's value, as l2
    selftest = run_clean(tmp_path, ["-m", "myproj._vendor.optcompat", "--selftest"])
    assert selftest.returncode == 0, selftest.stdout[-2000:] + selftest.stderr[-3000:]
    lines = [ln for ln in selftest.stdout.splitlines() if ln.startswith("optcompat selftest:")]
    assert lines and all(" pass " in ln for ln in lines), selftest.stdout
    assert run_clean(tmp_path, ["-c", "import optcompat"]).returncode != 0  # the path was clean


# A finder installed first: `packaging` (and every `packaging.*`) cannot be imported, except by
# a host framework that needs it (Keras 3.0-3.3 import it without declaring it).
NO_PACKAGING = textwrap.dedent("""
    import sys

    class NoPackaging(object):
        hosts_took_it = False  # a host imported it (TF 2.11 on Python 3.7 does): its own imports go on

        def find_spec(self, name, path=None, target=None):
            if name != "packaging" and not name.startswith("packaging."):
                return None
            f = sys._getframe(1)
            while f is not None and f.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
                f = f.f_back
            importer = f.f_globals.get("__name__", "") if f is not None else ""
            top = importer.split(".")[0]
            if top in ("keras", "tf_keras", "tensorflow", "jax", "torch") or (
                    top == "packaging" and NoPackaging.hosts_took_it):
                NoPackaging.hosts_took_it = True
                return None
            raise ModuleNotFoundError("No module named %r (blocked by the test; imported from %s)"
                                      % (name, importer), name=name)

    sys.meta_path.insert(0, NoPackaging())
""")
STEP = textwrap.dedent("""
    import json
    sys.path.insert(0, sys.argv[1])
    family, x0, g = sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    import myproj._vendor.optcompat as oc
    assert "optcompat" not in sys.modules, "the vendored copy imported the installed one"
    assert "packaging" not in sys.modules or NoPackaging.hosts_took_it, "packaging was imported"
    assert oc.default_family() == family, (oc.default_family(), family)
    cls = oc.family_module(family).AdamW
    assert cls.__module__.startswith("myproj._vendor.optcompat."), cls.__module__
    import numpy as np
    if family == "keras3":
        import keras
        var = keras.Variable(np.array(x0, np.float32))
        grad = keras.ops.convert_to_tensor(np.array(g, np.float32))
        value = lambda: keras.ops.convert_to_numpy(var)
    else:
        import tensorflow as tf
        var, grad = tf.Variable(np.array(x0, np.float32)), tf.constant(np.array(g, np.float32))
        value = lambda: var.numpy()
    opt = cls(learning_rate=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.apply_gradients([(grad, var)])
    print("VALUE " + json.dumps([float(x) for x in np.asarray(value()).ravel()]))
""")


@applies(lambda facts, params: ENV.default is not None)
def test_vendored_copy_without_packaging_steps_as_the_reference(tmp_path):
    """The vendored copy imports and trains where `packaging` cannot be imported: an AdamW of
    the env's default family takes 3 steps on a real variable, within TOL of the float64
    reference."""
    vendor(tmp_path)
    x0, g = [1.0, -2.0, 0.5], [0.3, 0.1, -0.4]
    out = subprocess.run(
        [sys.executable, "-c", NO_PACKAGING + STEP, str(tmp_path), ENV.default, json.dumps(x0), json.dumps(g)],
        **CAPTURE, env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    value = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("VALUE ")][-1][6:])
    ref = reference.adamw(np.array(x0), [np.array(g)] * 3, 0.1, weight_decay=0.5)[-1]
    assert np.max(np.abs(np.array(value) - ref)) <= TOL
    assert np.max(np.abs(ref - np.array(x0))) > 0.1  # the steps moved the weights


@applies(lambda facts, params: set(ENV.families) != {"keras3", "keras2", "legacy"})
def test_family_module_for_missing_host_names_the_releases():
    """(Collected where the env lacks a family.)"""
    missing = [f for f in ("keras3", "keras2", "legacy") if f not in optcompat._detect.host_modules()]
    assert missing, "the env declares %s, but every host family is installed" % ENV.families
    f = missing[0]
    code = "import optcompat.%s" % f
    out = subprocess.run([sys.executable, "-c", code], **CAPTURE, timeout=300)
    assert out.returncode != 0
    err = out.stderr.strip().splitlines()[-1]
    assert "ImportError" in err or "ModuleNotFoundError" in err
    if optcompat._detect.adapter_available(f):
        assert f in err and "found in" in err, err


def test_dir_lists_the_names_resolved_on_first_use():
    out = python("import sys, json, optcompat; names = dir(optcompat);"
                 "print(json.dumps([names, [m for m in %r if m in sys.modules]]))" % (HEAVY,))
    names, loaded = json.loads(out.strip().splitlines()[-1])
    assert {"AdamW", "SGDW", "keras3", "keras2", "legacy", "decoupled", "weight_decays_from"} <= set(names)
    assert loaded == []  # listing them resolves nothing


@pytest.mark.parametrize("family", ["keras3", "keras2", "legacy"])
def test_optcompat_family_chooses_the_default_family(family):
    """OPTCOMPAT_FAMILY makes a family optcompat.AdamW (one this env declares; a bad value is refused)."""
    if family not in ENV.families:
        with pytest.raises(AssertionError, match="OPTCOMPAT_FAMILY|ImportError"):
            python("import optcompat; optcompat.AdamW", OPTCOMPAT_FAMILY=family)
        return
    out = python("import optcompat; print(optcompat.AdamW.__module__)", OPTCOMPAT_FAMILY=family)
    assert out.split()[-1] == "optcompat." + family


def test_a_bad_optcompat_family_is_refused():
    with pytest.raises(AssertionError, match="OPTCOMPAT_FAMILY must be one of"):
        python("import optcompat; optcompat.AdamW", OPTCOMPAT_FAMILY="keras4")
