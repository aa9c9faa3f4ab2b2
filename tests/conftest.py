import pytest

import optcompat

from hosts import HOSTS, make_host

FAMILIES = [f for f in optcompat.available_families() if f in HOSTS]


def pytest_report_header(config):
    d = optcompat.describe()
    return ["optcompat: default family %s, families %s, versions %s"
            % (d["default_family"], list(d["families"]), {k: v for k, v in d["versions"].items() if v})]


@pytest.fixture(scope="session", params=FAMILIES or [None], ids=lambda f: f or "no-host")
def host(request):
    if request.param is None:
        pytest.skip("no TensorFlow / Keras host installed in this environment "
                    "(optcompat.available_families() is empty)")
    return make_host(request.param)


DEVICES = ["cpu", "gpu"]


@pytest.fixture(params=DEVICES)
def device(host, request):
    """Run the test body on one device: "cpu" always, "gpu" where the host's backend sees one
    (``host.devices()``); the GPU case is skipped, not dropped, so the test ids are the same on
    every machine."""
    kind = request.param
    if kind not in host.devices():
        pytest.skip("no GPU visible to %s" % host.backend)
    with host.on(kind):
        yield kind
