"""Detection against facts: what optcompat detects in this env equals what the env declares
(tox.ini set_env, OPTCOMPAT_ENV_*); and optcompat._detect's functions, given version sets,
answer right at every release boundary."""
import pytest

import optcompat
from optcompat import _detect
from support import BASES
from support import ENV
from support import base_path
from support import detect
from support import load
from support import matches
from support import release


def test_optcompat_detects_the_declared_families():
    """The families and default family optcompat detects are the ones this env declares
    (outside tox: the tests' own detection, tests/support.py)."""
    assert ENV.families, "the env declares no family (%s)" % ENV.source
    assert set(optcompat.available_families()) == set(ENV.families), ENV.source
    assert optcompat.default_family() == ENV.default, ENV.source
    assert optcompat.available_families()[0] == ENV.default  # default first


def test_harness_base_classes_are_the_declared_families():
    """The harness's own table (support.BASES) has a base class for every declared family."""
    assert [f for f in ENV.families if base_path(f, ENV.versions) is None] == []


def test_classes_subclass_the_harness_base_class(host):
    for name in ("AdamW", "SGDW"):
        assert issubclass(getattr(host.module, name), host.optimizer_base), (name, host.optimizer_base)
    assert host.optimizer_base is load(host.facts.base)  # the table's class (support.BASES)


NONE = dict(tensorflow=None, keras=None, tf_keras=None, jax=None, torch=None, tensorflow_addons=None)
K3 = "keras.optimizers.Optimizer"
TF_OPT = "tensorflow.keras.optimizers.Optimizer"
TF_EXP = "tensorflow.keras.optimizers.experimental.Optimizer"
TF_LEG = "tensorflow.keras.optimizers.legacy.Optimizer"
TFK = "tf_keras.optimizers.Optimizer"
TFK_LEG = "tf_keras.optimizers.legacy.Optimizer"

# (id, versions, TF_USE_LEGACY_KERAS, host_modules, default family (None: ImportError),
#  available_families)
CASES = [
    ("nothing", {}, None, {}, None, []),
    ("tf1.14-unsupported", dict(tensorflow="1.14.0"), None, {}, None, []),
    ("tf1.15", dict(tensorflow="1.15.5"), None, {"legacy": TF_OPT}, "legacy", ["legacy"]),
    ("tf2.0", dict(tensorflow="2.0.4"), None, {"legacy": TF_OPT}, "legacy", ["legacy"]),
    ("tf2.1", dict(tensorflow="2.1.4"), None, {"legacy": TF_OPT}, "legacy", ["legacy"]),
    ("tf2.2", dict(tensorflow="2.2.3"), None, {"legacy": TF_OPT}, "legacy", ["legacy"]),
    ("tf2.8", dict(tensorflow="2.8.4", keras="2.8.0", tensorflow_addons="0.17.1"), None,
     {"legacy": TF_OPT}, "legacy", ["legacy"]),
    ("tf2.9", dict(tensorflow="2.9.3", keras="2.9.0"), None,
     {"legacy": TF_OPT, "keras2": TF_EXP}, "legacy", ["legacy", "keras2"]),
    ("tf2.10", dict(tensorflow="2.10.1", keras="2.10.0"), None,
     {"legacy": TF_OPT, "keras2": TF_EXP}, "legacy", ["legacy", "keras2"]),
    ("tf2.11", dict(tensorflow="2.11.1", keras="2.11.0"), None,
     {"keras2": TF_OPT, "legacy": TF_LEG}, "keras2", ["keras2", "legacy"]),
    ("tf2.13rc", dict(tensorflow="2.13.0rc1", keras="2.13.1rc0"), None,
     {"keras2": TF_OPT, "legacy": TF_LEG}, "keras2", ["keras2", "legacy"]),
    ("tf2.15", dict(tensorflow="2.15.1", keras="2.15.0"), None,
     {"keras2": TF_OPT, "legacy": TF_LEG}, "keras2", ["keras2", "legacy"]),
    # TF_USE_LEGACY_KERAS means nothing before TF 2.16
    ("tf2.15-legacy-env", dict(tensorflow="2.15.1", keras="2.15.0"), "1",
     {"keras2": TF_OPT, "legacy": TF_LEG}, "keras2", ["keras2", "legacy"]),
    # tf.keras wins over tf-keras where TF < 2.16 has both
    ("tf2.15+tf-keras", dict(tensorflow="2.15.1", keras="2.15.0", tf_keras="2.15.1"), None,
     {"keras2": TF_OPT, "legacy": TF_LEG}, "keras2", ["keras2", "legacy"]),
    ("tf2.16", dict(tensorflow="2.16.2", keras="3.15.1"), None, {"keras3": K3}, "keras3", ["keras3"]),
    ("tf2.16-legacy-env-no-tf-keras", dict(tensorflow="2.16.2", keras="3.15.1"), "1",
     {"keras3": K3}, "keras3", ["keras3"]),
    ("tf2.16+tf-keras", dict(tensorflow="2.16.2", keras="3.3.3", tf_keras="2.16.0"), None,
     {"keras3": K3, "keras2": TFK, "legacy": TFK_LEG}, "keras3", ["keras3", "keras2", "legacy"]),
    ("tf2.16+tf-keras-legacy-env", dict(tensorflow="2.16.2", keras="3.3.3", tf_keras="2.16.0"), "1",
     {"keras3": K3, "keras2": TFK, "legacy": TFK_LEG}, "keras2", ["keras2", "keras3", "legacy"]),
    ("tf2.21+tf-keras-legacy-env-true", dict(tensorflow="2.21.0", keras="3.15.1", tf_keras="2.21.0"), "true",
     {"keras3": K3, "keras2": TFK, "legacy": TFK_LEG}, "keras2", ["keras2", "keras3", "legacy"]),
    ("tf2.21+tf-keras-legacy-env-0", dict(tensorflow="2.21.0", keras="3.15.1", tf_keras="2.21.0"), "0",
     {"keras3": K3, "keras2": TFK, "legacy": TFK_LEG}, "keras3", ["keras3", "keras2", "legacy"]),
    ("keras2-only", dict(keras="2.15.0"), None, {}, None, []),
    ("keras3.0-jax", dict(keras="3.0.0", jax="0.4.25"), None, {"keras3": K3}, "keras3", ["keras3"]),
    ("keras3.15-jax", dict(keras="3.15.1", jax="0.10.2"), None, {"keras3": K3}, "keras3", ["keras3"]),
    ("keras3.6-torch", dict(keras="3.6.0", torch="2.13.0"), None, {"keras3": K3}, "keras3", ["keras3"]),
    ("keras3-dev-torch", dict(keras="3.16.0.dev2026112403", torch="2.13.0+cpu"), None,
     {"keras3": K3}, "keras3", ["keras3"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_detection_at_every_boundary(case, monkeypatch):
    """optcompat._detect.host_modules / default_family / available_families over version
    strings (every boundary: TF 1.14/1.15, 2.8/2.9, 2.10/2.11, 2.15/2.16, tf-keras with and without
    TF_USE_LEGACY_KERAS, Keras 2 / 3.0, keras-only hosts, nothing installed)."""
    _, given, legacy_env, modules, default, families = case
    monkeypatch.delenv("OPTCOMPAT_FAMILY", raising=False)
    if legacy_env is None:
        monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    else:
        monkeypatch.setenv("TF_USE_LEGACY_KERAS", legacy_env)
    found = dict(NONE, **given)
    assert _detect.host_modules(dict(found)) == modules
    if default is None:
        with pytest.raises(ImportError, match="no supported host"):
            _detect.default_family(dict(found))
    else:
        assert _detect.default_family(dict(found)) == default
    assert _detect.available_families(dict(found)) == families
    # the tests' own detection (used outside tox) and harness table agree with the same facts
    assert detect(found) == (families, default)
    assert {f: base_path(f, found) for f in modules} == modules


def test_a_tensorflow_older_than_the_first_supported_is_named(monkeypatch):
    """TF 1.14 is refused (measured: no apply_state, .h5 reload of an Input-first Sequential
    fails; docs/support.md): the error and ``python -m optcompat`` name the installed release
    and the first supported one, instead of saying that no TensorFlow is installed."""
    monkeypatch.delenv("OPTCOMPAT_FAMILY", raising=False)
    found = dict(NONE, tensorflow="1.14.0")
    words = 'TensorFlow 1.14.0 is installed, older than 1.15, the first optcompat supports'
    with pytest.raises(ImportError, match="no supported host. " + words):
        _detect.default_family(dict(found))
    assert [text for _, text in _detect.problems(dict(found)) if words in text]
    assert not [text for _, text in _detect.problems(dict(NONE, tensorflow="1.15.5")) if "older" in text]


@pytest.mark.parametrize("family", sorted(BASES))
def test_harness_table_covers_the_families(family):
    assert BASES[family] and all(path.endswith(".Optimizer") for _, path in BASES[family])


@pytest.mark.parametrize("spec,version,expected", [
    (">=2.9,<2.11", "2.9.0", True), (">=2.9,<2.11", "2.10.1", True), (">=2.9,<2.11", "2.11.0", False),
    (">=2.9,<2.11", "2.8.4", False), ("<2.4", "2.3.4", True), ("<2.4", "2.4.0", False),
    (">=3.0", "3.0.0rc1", True), ("==2.13", "2.13.0", True), ("!=2.13", "2.13.1", True),
    (">3.7", "3.7.0", False), ("<=3.7", "3.7.9", False), ("<=3.7", "3.7.0", True), ("jax|tensorflow", "torch", False),
    ("jax|tensorflow", "jax", True),
])
def test_specifier_matcher(spec, version, expected):
    assert matches({"v": spec}, {"v": version}) is expected
    assert matches({"v": spec}, {"v": None}) is False


def test_release_parts():
    assert release("2.13.0rc1") == (2, 13, 0)
    assert release("3.16.0.dev2026") == (3, 16, 0)
    assert release("2.13.0+cpu") == (2, 13, 0)
    assert release("0.4.25") == (0, 4, 25)


def test_metadata_fallback_reads_what_importlib_metadata_reads():
    """Python 3.6 / 3.7 have no importlib.metadata: optcompat reads the distributions' metadata
    files itself there; both readers run here on every installed distribution (3.6 / 3.7:
    against the ``importlib_metadata`` backport the tests use)."""
    from support import _metadata as metadata  # importlib.metadata, or its backport on 3.6 / 3.7
    names = sorted({dist.metadata["Name"] for dist in metadata.distributions()})
    assert names, "no installed distribution to read"
    for name in names + ["tensorflow-cpu", "Tensorflow_CPU", "no-such-distribution"]:
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = None
        assert _detect._metadata_version(name) == expected, name


def test_versions_read_on_every_python():
    """The versions ``describe()`` reports are the installed ones on every Python (3.6 / 3.7
    included, where importlib.metadata is missing): checked against the modules' own."""
    for dist, module in (("pytest", pytest), ("numpy", pytest.importorskip("numpy"))):
        assert _detect.installed(dist) == module.__version__, dist
