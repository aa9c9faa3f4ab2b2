"""``python -m optcompat --selftest``: a few steps of AdamW and SGDW in every family installed,
against trajectories computed in float64 by the test suite's independent reference
(``tests/reference.py``), bundled in :mod:`._selftest_data` -- for vendored copies and CI
maintainers who have no test suite at hand.  Prints a line per problem found in the setup
(:func:`._detect.problems`: a configured backend or family that is not installed, with its fix)
and one per family (a family that cannot run names what is missing); exit status 1 when a
family fails or a problem was found."""

import math
import sys

from . import _detect
from ._selftest_data import CASES
from ._selftest_data import STEPS

TOLERANCE = 1e-5  # float32 steps against float64 over STEPS steps


def start():
    """The weights and the gradients of every step: a formula (no random stream, so the bundled
    numbers are the same whatever NumPy is installed)."""
    x0 = [math.sin(0.7 * i + 0.3) for i in range(6)]
    grads = [
        [math.cos(0.37 * (t + 1) * (i + 1)) + 0.1 * (i - 2.5) for i in range(6)]
        for t in range(STEPS)
    ]
    return x0, grads


def _host(family):
    """``(variable(values), tensor(values), value(variable))`` for the family's host."""
    import numpy as np

    keras, _ = _detect.host(family)
    if family == "keras3":
        return (
            lambda v: keras.Variable(np.asarray(v, "float32")),
            lambda v: keras.ops.convert_to_tensor(np.asarray(v, "float32")),
            lambda v: np.asarray(keras.ops.convert_to_numpy(v), "float64"),
        )
    import tensorflow as tf

    return (
        lambda v: tf.Variable(np.asarray(v, "float32")),
        lambda v: tf.constant(np.asarray(v, "float32")),
        lambda v: np.asarray(v.numpy(), "float64"),
    )


def _run(family, opt, x0, grads):
    """The weights after ``opt`` took ``grads`` from ``x0``: eagerly, or in TF 1.x graph mode
    one step op run in Keras's session per gradient."""
    import numpy as np

    keras, _ = _detect.host(family)
    if family == "keras3" or _eager():
        variable, tensor, value = _host(family)
        x = variable(x0)
        for g in grads:
            opt.apply_gradients([(tensor(g), x)])
        return value(x)
    import tensorflow as tf

    x = tf.compat.v1.Variable(np.asarray(x0, "float32"), use_resource=True)
    g = tf.compat.v1.placeholder(tf.float32, (len(x0),))
    step = opt.apply_gradients([(g, x)])
    session = keras.backend.get_session()
    session.run(tf.compat.v1.global_variables_initializer())
    for grad in grads:
        session.run(step, {g: np.asarray(grad, "float32")})
    return np.asarray(session.run(x), "float64")


def _eager():
    import tensorflow as tf

    return tf.executing_eagerly()


def run_family(family):
    """``(cases passed, cases, worst error)`` of ``family``."""
    from . import family_module

    module = family_module(family)
    x0, grads = start()
    passed, worst = 0, 0.0
    for name, kwargs, expected in CASES:
        opt = getattr(module, name)(**kwargs)
        error = max(abs(a - b) for a, b in zip(_run(family, opt, x0, grads), expected))
        worst = max(worst, error)
        passed += error <= TOLERANCE
    return passed, len(CASES), worst


def _missing(error, family, problems):
    """Why ``family`` could not run, in words: the configuration problem that stops it where
    one was found (:func:`._detect.problems`), else what is missing and how to install it."""
    named = [text for fam, text in problems if fam in (family, None)]
    if named:
        return " ".join(named)
    module = getattr(error, "name", None) if isinstance(error, ImportError) else None
    if module:
        return "%s is not installed (%s: %s): pip install %s" % (
            module,
            type(error).__name__,
            error,
            _DISTS.get(module, module),
        )
    return "%s: %s" % (type(error).__name__, error)


_DISTS = {
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "jax": "jax",
    "torch": "torch",
    "keras": "keras",
    "h5py": "h5py",
    "numpy": "numpy",
}


def main():
    problems = _detect.problems()
    for _, text in problems:
        print("optcompat selftest: problem: %s" % text)
    families = _detect.available_families()
    if not families:
        if not problems:
            releases = "; ".join("%s: %s" % kv for kv in _detect.RELEASES.items())
            print("optcompat selftest: no host installed (%s)" % releases)
        return 1
    failed = False
    for family in families:
        try:
            passed, total, worst = run_family(family)
        except (
            Exception
        ) as e:  # a family that cannot run is a failure, named with what is missing
            print(
                "optcompat selftest: %-7s FAIL  %s"
                % (family, _missing(e, family, problems))
            )
            failed = True
            continue
        ok = passed == total
        failed = failed or not ok
        print(
            "optcompat selftest: %-7s %s  %d/%d cases, %d steps, max |error| %.2g vs "
            "float64 (tolerance %g)"
            % (family, "pass" if ok else "FAIL", passed, total, STEPS, worst, TOLERANCE)
        )
    # a problem found is a failure: the setup does not run as set
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
