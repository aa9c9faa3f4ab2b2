"""The env's families (declared by its tox env, tests/support.py), the host and device
fixtures, and the markers that DESELECT a test where it does not apply (at collection, from
the env's facts: family, backend, host versions, recorded deviations) -- so a skip that
remains names a missing release, device or oracle found only at run time."""
import gc

import pytest

import support
from support import ENV
from support import make_host

FAMILIES = [f for f in ENV.families if f in support.HOSTS]

MARKERS = [
    "families(*names): only for the host families named",
    "backends(*names): only for hosts on these backends (keras3: the Keras backend; keras2 / legacy: tensorflow)",
    "installed(*packages): only where these host packages (support.DISTRIBUTIONS) are installed",
    "applies(predicate): only where predicate(facts, params) is true (support.Facts; the test's parameters)",
    "dist: a multi-process distribution test: only in envs that declare OPTCOMPAT_ENV_DIST=1 (tox label dist)",
]


def pytest_configure(config):
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def pytest_report_header(config):
    return ["optcompat env: families %s, default %s, devices %s -- %s"
            % (ENV.families, ENV.default, ENV.devices, ENV.source),
            "host versions: %s" % {k: v for k, v in ENV.versions.items() if v}]


def applies(item):
    """Whether ``item`` applies to this env (its markers, its host family and parameters)."""
    params = dict(getattr(getattr(item, "callspec", None), "params", {}))
    family = params.get("host")
    families = [family] if family else ENV.families
    facts = [ENV.facts(f) for f in families] or [support.Facts(None, ENV.versions)]
    if params.get("device") == "gpu" and "gpu" not in ENV.devices:
        return False
    for mark in item.iter_markers():
        if mark.name == "dist" and not ENV.dist:
            return False
        if mark.name == "families" and not any(f.family in mark.args for f in facts):
            return False
        if mark.name == "backends" and not any(f.backend in mark.args for f in facts):
            return False
        if mark.name == "installed" and not all(ENV.versions.get(p) for p in mark.args):
            return False
        if mark.name == "applies" and not any(mark.args[0](f, params) for f in facts):
            return False
    return True


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        (keep if applies(item) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# TF 1.15 / 2.0: a dataset iterator that the garbage collector deletes while Keras traces its
# train function adds its delete op to that graph, and the process segfaults (seen in the suite
# on TF 2.0.4, inside fit, after ~700 tests).  Collecting after each test deletes them outside.
_COLLECT = support.matches({"tensorflow": "<2.1"}, ENV.versions)


@pytest.fixture(autouse=True)
def _collect_between_tests():
    yield
    if _COLLECT:
        gc.collect()


@pytest.fixture(scope="session", params=FAMILIES or [None], ids=lambda f: f or "no-host")
def host(request):
    if request.param is None:
        pytest.skip("no TensorFlow / Keras host in this environment (%s: no family)" % ENV.source)
    return make_host(request.param)


DEVICES = ["cpu", "gpu"]


@pytest.fixture(params=DEVICES)
def device(host, request):
    """Run the test body on one device: "cpu" always, "gpu" where the env declares one
    (OPTCOMPAT_ENV_DEVICES; elsewhere the gpu cases are deselected).  A declared GPU must be
    visible: its cases fail without one."""
    kind = request.param
    if kind not in host.devices():
        pytest.fail("the env declares OPTCOMPAT_ENV_DEVICES=%s, but no %s is visible to %s"
                    % (",".join(ENV.devices), kind.upper(), host.backend))
    with host.on(kind):
        yield kind
