"""The compiled step's program, op by op, in one host env: what a refactoring must leave alone.

    python benchmarks/graphs.py [--root TREE] [--out X.json]

For each optcompat optimizer of this env's family (``BENCH_FAMILY`` as in ``bench.py``: Keras
3 on its backend, ``keras2``, ``legacy``) -- AdamW, AdamW with amsgrad and ``fast_path=None``
(the rule op by op), SGDW with Nesterov momentum -- one step on three variables (a kernel, a
bias that a pattern excludes from the decay, a kernel with its own ``lr_multipliers`` factor)
is traced as the benchmarks time it (TensorFlow: ``apply_gradients`` / ``apply`` under
``tf.function``; JAX: the jitted ``stateless_apply``) and its ops are counted by type (TF graph
ops; jaxpr primitives, nested jaxprs included).  torch steps are not traced (eager).  ``--root``
measures another checkout's optcompat (the tree before a change), so two runs in one env give
the counts before and after, and ``--diff A.json B.json`` prints what changed.

``--digest``: instead, a digest of the weights after 5 steps of AdamW and SGDW (momentum) in
each convention (TensorFlow families: under ``tf.function``, ``--xla``: ``jit_compile``; Keras 3:
``opt.apply`` as its backend runs it): equal digests from two trees are the same results to the
bit.

``--rooms``: instead, the modules of optcompat that one eager step of AdamW calls into, in order
(Python's profiler, every call and return), and how often the step changes module: how far a
reader follows a gradient through the code.  Not a test.
"""
import argparse
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _cases():
    return {"AdamW": dict(kind="AdamW"),
            "AdamW amsgrad fast_path=None": dict(kind="AdamW", amsgrad=True, fast_path=None),
            "SGDW nesterov": dict(kind="SGDW", momentum=0.9, nesterov=True)}


def _optimizer(oc, case):
    case = dict(case)
    kind = case.pop("kind")
    return getattr(oc, kind)(learning_rate=1e-3, weight_decay=4e-3, exclude_from_weight_decay=["bias"],
                             lr_multipliers={"scaled": 0.5}, **case)


def _values():
    import numpy as np

    rng = np.random.RandomState(0)
    return [("kernel", rng.randn(4, 3).astype("float32")), ("bias", rng.randn(3).astype("float32")),
            ("scaled_kernel", rng.randn(3, 2).astype("float32"))]


def _tf_counts(graph):
    return collections.Counter(op.type for op in graph.get_operations())


def _jaxpr_counts(jaxpr, counts=None):
    counts = collections.Counter() if counts is None else counts
    for eqn in jaxpr.eqns:
        counts[eqn.primitive.name] += 1
        for value in eqn.params.values():
            for sub in (value if isinstance(value, (list, tuple)) else [value]):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _jaxpr_counts(inner, counts)
    return counts


def trace(family):
    """``{case: {op type: count}}`` for this env's family."""
    out = {}
    if family in ("legacy", "keras2"):
        import tensorflow as tf

        oc = __import__("optcompat." + family, fromlist=["AdamW"])
        for name, case in _cases().items():
            variables = [tf.Variable(v, name=n) for n, v in _values()]
            grads = [tf.constant(v * 0.1) for _, v in _values()]
            opt = _optimizer(oc, case)

            @tf.function
            def step():
                opt.apply_gradients(zip(grads, variables))
            step()  # (OptimizerV2 creates its slots in the first trace: count the second's)
            out[name] = _tf_counts(step.get_concrete_function().graph)
        return out
    import keras

    oc = __import__("optcompat.keras3", fromlist=["AdamW"])
    backend = keras.backend.backend()
    for name, case in _cases().items():
        variables = [keras.Variable(v, name=n) for n, v in _values()]
        grads = [keras.ops.convert_to_tensor(v * 0.1) for _, v in _values()]
        opt = _optimizer(oc, case)
        opt.build(variables)
        if backend == "jax":
            import jax

            jaxpr = jax.make_jaxpr(lambda tv, ov, g: opt.stateless_apply(ov, g, tv))(
                [v.value for v in variables], [v.value for v in opt.variables], grads)
            out[name] = _jaxpr_counts(jaxpr.jaxpr)
        elif backend == "tensorflow":
            import tensorflow as tf

            step = tf.function(lambda: opt.apply(grads, variables))
            out[name] = _tf_counts(step.get_concrete_function().graph)
        else:
            return {}
    return out


def digest(family, xla=False):
    """``{"AdamW keras": sha1 of the weights after 5 steps, ...}``."""
    import hashlib

    import numpy as np

    out = {}
    rng = np.random.RandomState(0)
    tf_family = family in ("legacy", "keras2")
    if tf_family:
        import tensorflow as tf

        oc = __import__("optcompat." + family, fromlist=["AdamW"])
    else:
        import keras

        oc = __import__("optcompat.keras3", fromlist=["AdamW"])
    for convention in ("keras", "tfa", "paper", "torch", "optax", "keras-adamw"):
        for kind in ("AdamW", "SGDW"):
            values = [rng.randn(257, 33).astype("float32"), rng.randn(1000).astype("float32")]
            grads = [[rng.randn(*v.shape).astype("float32") for v in values] for _ in range(5)]
            extra = dict(momentum=0.9) if kind == "SGDW" else {}
            opt = getattr(oc, kind)(learning_rate=0.01, weight_decay=0.05, convention=convention, **extra)
            if tf_family:
                variables = [tf.Variable(v) for v in values]
                step = tf.function(lambda g: [opt.apply_gradients(zip(g, variables))] and None,
                                   jit_compile=xla)
                for g in grads:
                    step([tf.constant(x) for x in g])
                weights = [v.numpy() for v in variables]
            else:
                variables = [keras.Variable(v) for v in values]
                opt.build(variables)
                for g in grads:
                    opt.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
                weights = [keras.ops.convert_to_numpy(v) for v in variables]
            out["%s %s" % (kind, convention)] = hashlib.sha1(b"".join(w.tobytes() for w in weights)).hexdigest()
    return out


def rooms(family):
    """The optcompat modules an eager AdamW step (the three variables above) runs in, in
    order, one entry per change of module, and the count of changes."""
    import numpy as np

    if family in ("legacy", "keras2"):
        import tensorflow as tf

        oc = __import__("optcompat." + family, fromlist=["AdamW"])
        variables = [tf.Variable(v, name=n) for n, v in _values()]
        opt = _optimizer(oc, _cases()["AdamW"])
        step = lambda: opt.apply_gradients(zip([tf.constant(v * 0.1) for _, v in _values()], variables))  # noqa: E731
    else:
        import keras

        oc = __import__("optcompat.keras3", fromlist=["AdamW"])
        variables = [keras.Variable(v, name=n) for n, v in _values()]
        opt = _optimizer(oc, _cases()["AdamW"])
        step = lambda: opt.apply([np.asarray(v * 0.1) for _, v in _values()], variables)  # noqa: E731
    step()  # (the first step builds)
    package = os.path.dirname(oc.__file__) + os.sep
    seen = []

    def profile(frame, event, arg):
        where = frame.f_code.co_filename
        if event in ("call", "return") and where.startswith(package):
            module = where[len(package):]
            if not seen or seen[-1] != module:
                seen.append(module)
    sys.setprofile(profile)
    try:
        step()
    finally:
        sys.setprofile(None)
    return {"modules": seen, "changes": max(len(seen) - 1, 0), "distinct": sorted(set(seen))}


def diff(before, after):
    lines = []
    for case in sorted(set(before) | set(after)):
        a, b = before.get(case, {}), after.get(case, {})
        total = "%s: %d -> %d ops" % (case, sum(a.values()), sum(b.values()))
        changed = ["%s %d -> %d" % (k, a.get(k, 0), b.get(k, 0)) for k in sorted(set(a) | set(b))
                   if a.get(k, 0) != b.get(k, 0)]
        lines.append(total + ("; " + ", ".join(changed) if changed else "; the same op for op"))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.dirname(HERE), help="the checkout whose optcompat is traced")
    ap.add_argument("--out")
    ap.add_argument("--diff", nargs=2, metavar=("BEFORE", "AFTER"))
    ap.add_argument("--rooms", action="store_true", help="the modules one eager step runs in")
    ap.add_argument("--digest", action="store_true", help="a digest of the weights after 5 steps")
    ap.add_argument("--xla", action="store_true", help="with --digest: compiled by XLA")
    args = ap.parse_args(argv)
    if args.diff:
        before, after = (json.load(open(p))["graphs"] for p in args.diff)
        print(diff(before, after))
        return
    sys.path.insert(0, os.path.abspath(args.root))
    import optcompat

    family = os.environ.get("BENCH_FAMILY") or "keras3"
    if args.digest:
        for case, value in sorted(digest(family, args.xla).items()):
            print("%-18s %s" % (case, value))
        return
    if args.rooms:
        found = rooms(family)
        print("%d changes of module, %d modules: %s" % (found["changes"], len(found["distinct"]),
                                                        " > ".join(found["modules"])))
        return
    record = {"root": os.path.abspath(args.root), "family": family, "describe": optcompat.describe(),
              "graphs": {k: dict(v) for k, v in trace(family).items()}}
    text = json.dumps(record, indent=1, sort_keys=True, default=str)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print("\n".join("%s: %d ops" % (k, sum(v.values())) for k, v in record["graphs"].items()))


if __name__ == "__main__":
    main()
