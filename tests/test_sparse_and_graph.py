"""Sparse gradients and graph modes.  TensorFlow-variable hosts (legacy, keras2, Keras 3 on
tensorflow): sparse gradients and graph modes give the numbers of the dense, eager step, and
the host's own optimizers' sparse numbers where those are dense-equivalent
(deviations, ("sparse", peer), where not).  Every host: an ``Embedding`` trained with ``fit`` gives the
numbers of the same model written with one-hot inputs (a dense gradient)."""
import numpy as np
import pytest

from deviations import Drift
from deviations import match
from deviations import oracle_tolerance
from support import CONVENTIONS
from support import ORACLE_TOL
from support import applies
from support import has_builtin
from support import host_class
from support import seeded
from support import tensorflow_addons

# TensorFlow variables: IndexedSlices and tf.function are TF's
on_tensorflow = pytest.mark.backends("tensorflow")
OPTIMIZERS = {
    "AdamW": dict(learning_rate=0.05, weight_decay=0.1, amsgrad=True),
    "SGDW": dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True),
}


@pytest.fixture
def tf(host):
    assert host.tf is not None and host.backend == "tensorflow"
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
    # a repeated index (1, then 2), summed by the densified gradient; rows 1 and 7 drop out of
    # the gradient after step 3 and rows 2 and 4 join it (lazy updates would show there)
    values = tf.constant(np.arange(9, dtype=np.float32).reshape(3, 3) * 0.1 + t * 0.01)
    return tf.IndexedSlices(values, tf.constant([1, 7, 1] if t < 3 else [2, 2, 4]), tf.constant([10, 3]))


@on_tensorflow
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_sparse_equals_dense(host, tf, name, convention):
    kw = dict(OPTIMIZERS[name], convention=convention)
    sparse = trajectory(host, host.make(name, **kw), lambda t: sparse_grad(tf, t))
    dense = trajectory(host, host.make(name, **kw), lambda t: tf.convert_to_tensor(sparse_grad(tf, t)))
    np.testing.assert_allclose(sparse, dense, rtol=0, atol=1e-6)
    assert np.abs(dense[-1] - dense[0]).max() > 1e-3  # the rows really moved
    untouched = [0, 3, 5, 6, 8, 9]  # rows with no gradient still decay (dense semantics)
    assert np.abs(dense[-1][untouched] - dense[0][untouched]).max() > 1e-4


MODES = ["tf.function", "jit_compile"]


@on_tensorflow
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
        parameters = inspect.signature(tf.function).parameters
        flag = "jit_compile" if "jit_compile" in parameters else "experimental_compile"
        if flag not in parameters:
            pytest.skip("tf.function of TensorFlow %s compiles no XLA (experimental_compile: TF 2.1+)"
                        % tf.__version__)
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


@pytest.mark.families("keras2")  # only the keras2 family has the optimizer's own jit_compile path
def test_keras2_host_jit_path_equals_eager(host, tf):
    """Keras 2 optimizers compile update_step with XLA when `jit_compile` is on (the default
    on GPU; forced here on CPU)."""
    rng = np.random.default_rng(4)
    grads = [tf.constant(rng.normal(size=(10, 3)).astype(np.float32)) for _ in range(6)]
    for name, kw in sorted(OPTIMIZERS.items()):
        eager = trajectory(host, host.make(name, jit_compile=False, **kw), lambda t: grads[t])
        opt = host.make(name, **kw)
        opt.jit_compile = True
        jitted = trajectory(host, opt, lambda t: grads[t])
        np.testing.assert_allclose(jitted, eager, rtol=0, atol=1e-6)


# -- the host's own optimizers on sparse gradients; Embedding in fit ------------------------

# peer: (optcompat class, its kwargs, the peer's class, its kind in deviations ("sparse", ...))
PEERS = {
    "Adam": ("AdamW", dict(learning_rate=0.05, weight_decay=0.0), "Adam", "Adam"),
    "AdamW": ("AdamW", dict(learning_rate=0.05, weight_decay=0.1), "AdamW", "Adam"),
    "SGD": ("SGDW", dict(learning_rate=0.05, weight_decay=0.0, momentum=0.9), "SGD", "SGD"),
    "SGD(weight_decay)": ("SGDW", dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9, nesterov=True),
                          "SGD", "SGD"),
    "TFA AdamW": ("AdamW", dict(learning_rate=0.05, weight_decay=0.01, convention="tfa"), "tfa.AdamW", "TFA"),
    "TFA SGDW": ("SGDW", dict(learning_rate=0.05, weight_decay=0.01, momentum=0.9, convention="tfa"),
                 "tfa.SGDW", "TFA"),
}


# peer -> what support.has_builtin calls the host's own optimizer it needs
BUILTIN = {"Adam": "Adam", "AdamW": "AdamW", "SGD": "SGD", "SGD(weight_decay)": "SGD(weight_decay)"}


def peer_exists(facts, params):
    """Whether the host has the peer: its own optimizer (support.has_builtin), not off exact
    arithmetic by a recorded different formula; TensorFlow Addons' optimizers are OptimizerV2
    (legacy family), where TFA is installed."""
    peer = params["peer"]
    name, kw, cls_name, kind = PEERS[peer]
    if kind == "TFA":
        return facts.family == "legacy" and facts.has("tensorflow_addons")
    if not has_builtin(facts, BUILTIN[peer]):
        return False
    reason = match(("oracle", name), facts.family, facts.versions) if kw["weight_decay"] else None
    return reason is None or isinstance(reason, Drift)


def _peer(host, peer):
    """``(make the peer, optcompat class, its kwargs, tolerance, recorded sparse deviation)``;
    collected only where this host has such a peer (peer_exists)."""
    name, kw, cls_name, kind = PEERS[peer]
    if cls_name.startswith("tfa."):
        assert host.family == "legacy"
        cls = getattr(tensorflow_addons(host).optimizers, cls_name[4:])
    else:
        cls = host_class(host, cls_name)
        assert cls is not None, "%r has no built-in %s of this family" % (host, cls_name)
    theirs_kw = {k: v for k, v in kw.items() if k != "convention" and (k != "weight_decay" or v)}
    cls(**theirs_kw)  # support.has_builtin says it takes these
    # the recorded oracle deviations are the host's own decay, not TensorFlow Addons'
    tol = oracle_tolerance(host, name, ORACLE_TOL) if kw["weight_decay"] and kind != "TFA" else ORACLE_TOL
    assert tol is not None
    return (lambda: cls(**theirs_kw)), name, kw, tol, match(("sparse", kind), host.family, host.versions)


@on_tensorflow
@applies(peer_exists)
@pytest.mark.parametrize("peer", sorted(PEERS))
def test_sparse_as_the_host_does_it(host, tf, peer):
    """optcompat's sparse step is the peer's step on the densified gradient; it is the peer's
    sparse step too, except where deviations ("sparse", ...) records that the peer is not
    dense-equivalent (checked to be still real)."""
    make, name, kw, tol, reason = _peer(host, peer)
    sparse = lambda t: sparse_grad(tf, t)  # noqa: E731
    dense = lambda t: tf.convert_to_tensor(sparse_grad(tf, t))  # noqa: E731
    ours = trajectory(host, host.make(name, **kw), sparse)
    theirs_dense = trajectory(host, make(), dense)
    theirs = trajectory(host, make(), sparse)
    assert np.abs(ours - theirs_dense).max() <= tol
    assert np.abs(ours[-1] - ours[0]).max() > 1e-3
    if reason is None:
        assert np.abs(ours - theirs).max() <= tol
    else:  # the recorded upstream behaviour must still be real (else remove the entry)
        assert np.abs(theirs - theirs_dense).max() > 1e-3, reason


VOCAB, LENGTH, DIM = 40, 4, 3


def token_model(host, one_hot, seed=0):
    """An Embedding model, or its twin with one-hot inputs (the embedding table as a Dense
    kernel, so its gradient is dense): the same function, and -- the same weight shapes in
    the same order, seeded alike -- the same weights."""
    k = host.keras
    if one_hot:
        layers = [k.Input((LENGTH, VOCAB)), k.layers.Dense(DIM, use_bias=False)]
    else:
        layers = [k.Input((LENGTH,), dtype="int32"), k.layers.Embedding(VOCAB, DIM)]
    return seeded(k.Sequential(layers + [k.layers.Flatten(), k.layers.Dense(1)]), seed)


def token_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, size=(n, LENGTH)).astype(np.int32)
    tokens[::2, 1] = tokens[::2, 0]  # a token repeated within a sample, in every other sample
    target = rng.normal(size=VOCAB).astype(np.float32)
    y = target[tokens].sum(axis=1, keepdims=True)
    return tokens, np.eye(VOCAB, dtype=np.float32)[tokens], y


@applies(peer_exists)
@pytest.mark.parametrize("peer", ["Adam", "AdamW", "SGD", "SGD(weight_decay)"])
def test_embedding_fit_as_the_host(host, peer):
    """``fit`` of an Embedding model: optcompat's weights are the peer's on the one-hot twin
    (a dense gradient), on every backend -- and the peer's on the Embedding model, except where
    deviations ("sparse", ...) records otherwise (checked to be still real)."""
    make, name, kw, tol, reason = _peer(host, peer)
    tokens, one_hot, y = token_data()
    runs = []
    for opt, hot, x in ((host.make(name, **kw), False, tokens), (make(), True, one_hot), (make(), False, tokens)):
        model = token_model(host, hot)
        model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
        runs.append(np.concatenate([w.ravel() for w in model.get_weights()]))
    ours, theirs_dense, theirs = runs
    start = np.concatenate([w.ravel() for w in token_model(host, False).get_weights()])
    fit_tol = max(tol, 1e-5)  # 16 steps of a model, summed in a different order
    assert np.abs(ours - theirs_dense).max() <= fit_tol
    assert np.abs(ours - start).max() > 1e-2
    if reason is None:
        assert np.abs(ours - theirs).max() <= fit_tol
    else:
        assert np.abs(theirs - theirs_dense).max() > 1e-3, reason
