"""TensorFlow-variable hosts (legacy, keras2, Keras 3 on tensorflow): sparse gradients and
graph modes give the numbers of the dense, eager step."""
import numpy as np
import pytest

CONVENTIONS = ["keras", "torch", "tfa", "paper"]
OPTIMIZERS = {
    "AdamW": dict(learning_rate=0.05, weight_decay=0.1, amsgrad=True),
    "SGDW": dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True),
}


@pytest.fixture
def tf(host):
    if host.tf is None:
        pytest.skip("%r has no TensorFlow variables (IndexedSlices and tf.function are TF's)" % host)
    return host.tf


def trajectory(host, opt, make_grads, steps=6, apply=None):
    var = host.variable(np.linspace(-1, 1, 30).reshape(10, 3).astype(np.float32), name="emb")
    apply = apply or (lambda g: opt.apply_gradients([(g, var)]))
    out = []
    for t in range(steps):
        apply(make_grads(t))
        out.append(host.value(var))
    return np.array(out)


def sparse_grad(tf, t):
    # duplicate index 1: the host sums duplicates before the update
    values = tf.constant(np.arange(9, dtype=np.float32).reshape(3, 3) * 0.1 + t * 0.01)
    return tf.IndexedSlices(values, tf.constant([1, 7, 1]), tf.constant([10, 3]))


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_sparse_equals_dense(host, tf, name, convention):
    kw = dict(OPTIMIZERS[name], convention=convention)
    sparse = trajectory(host, host.make(name, **kw), lambda t: sparse_grad(tf, t))
    dense = trajectory(host, host.make(name, **kw), lambda t: tf.convert_to_tensor(sparse_grad(tf, t)))
    np.testing.assert_allclose(sparse, dense, rtol=0, atol=1e-6)
    assert np.abs(dense[-1] - dense[0]).max() > 1e-3  # the rows really moved
    untouched = [0, 2, 3, 4, 5, 6, 8, 9]  # rows with no gradient still decay (dense semantics)
    assert np.abs(dense[-1][untouched] - dense[0][untouched]).max() > 1e-4


MODES = ["tf.function", "jit_compile"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_graph_equals_eager(host, tf, name, mode):
    rng = np.random.default_rng(3)
    grads = [tf.constant(rng.normal(size=(10, 3)).astype(np.float32)) for _ in range(6)]
    schedule = host.exponential_decay(0.05, 3, 0.5)
    kw = dict(OPTIMIZERS[name], learning_rate=schedule, convention="paper")
    eager = trajectory(host, host.make(name, **kw), lambda t: grads[t])

    opt = host.make(name, **kw)
    holder = {}

    def step(g):
        opt.apply_gradients([(g, holder["var"])])

    if mode == "jit_compile":
        import inspect  # TF < 2.5 spells it experimental_compile
        flag = "jit_compile" if "jit_compile" in inspect.signature(tf.function).parameters \
            else "experimental_compile"
        fn = tf.function(step, **{flag: True})
    else:
        fn = tf.function(step)

    def apply(g):
        fn(g)

    var = host.variable(np.linspace(-1, 1, 30).reshape(10, 3).astype(np.float32), name="emb")
    holder["var"] = var
    if hasattr(opt, "build") and host.family != "legacy":
        opt.build([var])  # create slots outside the XLA cluster
    graph = []
    for g in grads:
        apply(g)
        graph.append(host.value(var))
    np.testing.assert_allclose(np.array(graph), eager, rtol=0, atol=1e-6)


def test_keras2_host_jit_path_equals_eager(host, tf):
    """Keras 2 optimizers compile update_step with XLA when `jit_compile` is on (the default
    on GPU; forced here on CPU)."""
    if host.family != "keras2":
        pytest.skip("only the keras2 family has the optimizer's own jit_compile path (%r)" % host)
    rng = np.random.default_rng(4)
    grads = [tf.constant(rng.normal(size=(10, 3)).astype(np.float32)) for _ in range(6)]
    for name, kw in sorted(OPTIMIZERS.items()):
        eager = trajectory(host, host.make(name, jit_compile=False, **kw), lambda t: grads[t])
        opt = host.make(name, **kw)
        opt.jit_compile = True
        jitted = trajectory(host, opt, lambda t: grads[t])
        np.testing.assert_allclose(jitted, eager, rtol=0, atol=1e-6)
