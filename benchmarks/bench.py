"""One benchmark part, run inside one host env: ``python benchmarks/bench.py --out X.json``.

Measures, for the optimizer family of this env (Keras 3 on its ``KERAS_BACKEND``;
``BENCH_FAMILY=keras2``: Keras 2 on TF 2.9-2.15; ``BENCH_FAMILY=legacy``: OptimizerV2),
optcompat against the host's own optimizers and fused references, always
*interleaved* (ABAB..., reversed every other repetition, warm-up excluded) so that machine
load hits every candidate alike; each sample is the mean ms/step of a short run, and
min / median over repetitions are reported.  ``benchmarks/run.py`` runs this in every env
and writes ``docs/benchmarks.md``.  Not a test: nothing here asserts.
"""
import argparse
import gc
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # measure the working tree's optcompat, not an installed copy
    sys.path.insert(0, ROOT)

LR, WD, EPS = 1e-4, 4e-3, 1e-7
AGAIN = " (again)"  # the A/A control's suffix
BYTES = {"adamw": 28, "sgdw": 20}  # float32 bytes moved per parameter: AdamW, SGD with momentum


# --------------------------------------------------------------------------- timing
def interleave(setups, steps, reps, warm=2):
    """``setups``: name -> () -> run(n) (runs n steps and waits for them).  Returns
    name -> {min, median, samples} in ms/step."""
    runs = {name: setup() for name, setup in setups.items()}
    for run in runs.values():
        run(warm)
    names = list(runs)
    samples = {name: [] for name in names}
    for r in range(reps):
        for name in (names if r % 2 == 0 else names[::-1]):
            gc.collect()
            t0 = time.perf_counter()
            runs[name](steps)
            samples[name].append((time.perf_counter() - t0) * 1e3 / steps)
    return {name: {"min": min(s), "median": statistics.median(s), "samples": s}
            for name, s in samples.items()}


def shapes_for(params, tensors):
    per = int(params) // tensors
    cols = 1000 if per >= 1000 and per % 1000 == 0 else per
    return [(per // cols, cols)] * tensors


def arrays(shapes, seed):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(s)).astype("float32") for s in shapes]


def copy_bandwidth(reps):
    """numpy copy of a 40 MB and a 400 MB float32 array: GB/s counting read + write."""
    out = {}
    for n in (10_000_000, 100_000_000):
        a = np.ones(n, np.float32)
        b = np.empty_like(a)
        np.copyto(b, a)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            np.copyto(b, a)
            ts.append(time.perf_counter() - t0)
        out["numpy copyto %dM float32" % (n // 1_000_000)] = {
            "best_GBps": 2 * a.nbytes / min(ts) / 1e9, "median_GBps": 2 * a.nbytes / statistics.median(ts) / 1e9}
        del a, b
    return out


# --------------------------------------------------------------------------- hosts
class Keras3Host:
    family = "keras3"

    def __init__(self):
        import keras

        import optcompat.keras3 as oc

        self.keras, self.oc = keras, oc
        self.backend = keras.backend.backend()
        self.modes = {"jax": ["jit", "eager"], "tensorflow": ["tf.function", "xla"],
                      "torch": ["eager"]}[self.backend]
        # torch "compile": fit with jit_compile=True, i.e. torch.compile (dynamo + inductor)
        self.fit_modes = {"jax": ["jit"], "tensorflow": ["tf.function", "xla"],
                          "torch": ["eager", "compile"]}[self.backend]

    def label(self):
        return "Keras %s (%s)" % (self.keras.__version__, self.backend)

    def optimizers(self, kind):
        k, oc = self.keras.optimizers, self.oc
        if kind == "adamw":
            return {"optcompat.AdamW": lambda **kw: oc.AdamW(learning_rate=LR, weight_decay=WD, epsilon=EPS, **kw),
                    "keras AdamW": lambda **kw: k.AdamW(learning_rate=LR, weight_decay=WD, epsilon=EPS, **kw)}
        return {"optcompat.SGDW": lambda **kw: oc.SGDW(learning_rate=LR, weight_decay=WD,
                                                       **dict(dict(momentum=0.9), **kw)),
                "keras SGD(weight_decay)": lambda **kw: k.SGD(learning_rate=LR, weight_decay=WD,
                                                              **dict(dict(momentum=0.9), **kw))}

    def variables(self, values):
        return [self.keras.Variable(v, name="w%d" % i) for i, v in enumerate(values)]

    def tensors(self, values):
        return [self.keras.ops.convert_to_tensor(v) for v in values]

    @staticmethod
    def jax_step(opt):
        """``opt``'s step jitted as the benchmark times it: ``(weights, optimizer vars, grads) ->
        (weights, optimizer vars)``, weights and optimizer state donated.  Arguments and results
        in the same order, as Keras's own jitted train step keeps its state: JAX pairs donated
        inputs with outputs in order, and ``stateless_apply`` takes (optimizer vars, grads,
        weights) but returns (weights, optimizer vars) -- jitted as is, every buffer lands in
        the wrong slot and XLA copies all of them each step (16% of copy bandwidth, seen)."""
        import jax

        return jax.jit(lambda tv, ov, g: opt.stateless_apply(ov, g, tv), donate_argnums=(0, 1))

    def _built(self, make_opt, values):
        """Fresh variables and a new optimizer built on them."""
        variables = self.variables(values)
        opt = make_opt()
        self.build(opt, variables)
        return variables, opt

    def compiled_jax_step(self, make_opt, values, grads):
        """The XLA executable of one :meth:`jax_step` on fresh variables."""
        variables, opt = self._built(make_opt, values)
        return self.jax_step(opt).lower([v.value for v in variables], [v.value for v in opt.variables],
                                        grads).compile()

    def optimized_hlo(self, make_opt, values, grads):
        """The optimized HLO text of one compiled step (``jax.jit`` / ``jit_compile``)."""
        if self.backend == "jax":
            return self.compiled_jax_step(make_opt, values, grads).as_text()
        import tensorflow as tf

        variables, opt = self._built(make_opt, values)

        @tf.function(jit_compile=True)
        def f():
            opt.apply_gradients(zip(grads, variables))
        return f.experimental_get_compiler_ir()(stage="optimized_hlo")

    def stepper(self, make_opt, values, grads, mode):
        """() -> run(n): ``n`` optimizer steps on fresh variables, in ``mode``."""
        keras = self.keras

        def setup():
            variables, opt = self._built(make_opt, values)
            if self.backend == "jax" and mode == "jit":
                import jax

                f = self.jax_step(opt)
                state = [[v.value for v in variables], [v.value for v in opt.variables]]

                def run(n):
                    tv, ov = state
                    for _ in range(n):
                        tv, ov = f(tv, ov, grads)
                    jax.block_until_ready(tv)
                    state[:] = [tv, ov]
                return run
            if self.backend == "tensorflow":
                import tensorflow as tf

                f = tf.function(lambda: opt.apply(grads, variables), jit_compile=(mode == "xla"))

                def run(n):
                    for _ in range(n):
                        f()
                    opt.iterations.numpy()
                return run

            def run(n):
                for _ in range(n):
                    opt.apply(grads, variables)
                keras.ops.convert_to_numpy(opt.iterations)
            return run
        return setup

    def references(self, values, grads, mode, kind):
        """Fused host kernels on the same parameters (not optcompat's rivals, its yardsticks)."""
        refs = {}
        if self.backend == "torch":  # optcompat's other evaluations of the rule, for the record
            oc_name, make = next((n, m) for n, m in self.optimizers(kind).items() if n.startswith("optcompat"))
            for fp in ("foreach", None):
                refs["%s fast_path=%s" % (oc_name, fp)] = self.stepper(
                    lambda make=make, fp=fp: _with(make(), fast_path=fp), values, grads, mode)
            if kind == "adamw":  # the torch convention rounds its decay as the fused kernel does
                refs["optcompat.AdamW convention=torch"] = self.stepper(
                    lambda: self.oc.AdamW(learning_rate=LR, weight_decay=WD, epsilon=EPS, convention="torch"),
                    values, grads, mode)
        if self.backend == "torch" and kind == "adamw":
            for how in ("foreach", "fused"):
                refs["torch.optim.AdamW(%s=True)" % how] = torch_optim(values, grads, "AdamW", how)
        if self.backend == "torch" and kind == "sgdw":
            # torch's weight_decay is coupled (L2): a speed yardstick, not the same numbers
            for how in ("foreach", "fused"):
                refs["torch.optim.SGD(%s=True)" % how] = torch_optim(values, grads, "SGD", how)
        if self.backend == "tensorflow" and kind == "adamw":
            refs["optcompat.AdamW fast_path=None"] = self.stepper(
                lambda: _with(self.optimizers(kind)["optcompat.AdamW"](), fast_path=None), values, grads, mode)
            refs.update(tf_kernels(values, grads, mode))
        return refs

    def model(self, make_opt, mode):
        keras = self.keras
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((1024,)), keras.layers.Dense(2048, activation="relu"),
                                  keras.layers.Dense(2048, activation="relu"), keras.layers.Dense(10)])
        jit = {"jit": True, "xla": True, "compile": True}.get(mode, False)
        if mode == "compile":
            # every model's train_step is a recompile of the same code object (2 each); past
            # dynamo's default limit (8) the later models would silently run eagerly
            import torch._dynamo

            for limit in ("recompile_limit", "cache_size_limit"):
                if hasattr(torch._dynamo.config, limit):
                    setattr(torch._dynamo.config, limit, 64)
        model.compile(optimizer=make_opt(), loss="mse", jit_compile=jit)
        return model

    def first_step_modes(self):
        return self.modes[:1] + (["xla"] if self.backend == "tensorflow" else [])

    def build(self, opt, variables):
        opt.build(variables)
        return list(opt.variables)


class Keras2Host(Keras3Host):
    family = "keras2"

    def __init__(self):
        import tensorflow as tf

        import optcompat.keras2 as oc

        self.tf, self.oc = tf, oc
        self.keras = oc.keras
        self.backend = "tensorflow"
        self.modes = ["tf.function", "xla"]
        self.fit_modes = ["tf.function", "xla"]

    def label(self):
        return "TF %s keras2 (tf.keras)" % self.tf.__version__

    def _host(self, name):
        opts = self.keras.optimizers
        return getattr(opts, name, None) or getattr(opts.experimental, name)

    def optimizers(self, kind):
        oc = self.oc
        if kind == "adamw":
            return {"optcompat.AdamW": lambda **kw: oc.AdamW(learning_rate=LR, weight_decay=WD, epsilon=EPS, **kw),
                    "keras2 AdamW": lambda **kw: self._host("AdamW")(learning_rate=LR, weight_decay=WD,
                                                                     epsilon=EPS, **kw)}
        return {"optcompat.SGDW": lambda **kw: oc.SGDW(learning_rate=LR, weight_decay=WD,
                                                       **dict(dict(momentum=0.9), **kw)),
                "keras2 SGD(weight_decay)": lambda **kw: self._host("SGD")(learning_rate=LR, weight_decay=WD,
                                                                           **dict(dict(momentum=0.9), **kw))}

    def variables(self, values):
        return [self.tf.Variable(v, name="w%d" % i) for i, v in enumerate(values)]

    def tensors(self, values):
        return [self.tf.convert_to_tensor(v) for v in values]

    def stepper(self, make_opt, values, grads, mode, legacy=False):
        tf = self.tf

        def setup():
            variables = self.variables(values)
            opt = make_opt()
            if not legacy:
                opt.build(variables)
            @tf.function(jit_compile=(mode == "xla"))
            def f():
                opt.apply_gradients(zip(grads, variables))  # (the legacy one returns an Operation)

            def run(n):
                for _ in range(n):
                    f()
                opt.iterations.numpy()
            return run
        return setup

    def references(self, values, grads, mode, kind):
        refs = {}
        if kind != "adamw":
            return refs
        refs["optcompat.AdamW fast_path=None"] = self.stepper(
            lambda: _with(self.optimizers(kind)["optcompat.AdamW"](), fast_path=None), values, grads, mode)
        refs.update(tf_kernels(values, grads, mode))
        legacy = getattr(self.keras.optimizers, "legacy", None)
        if legacy is not None:
            refs["legacy Adam (no decay)"] = self.stepper(
                lambda: legacy.Adam(learning_rate=LR, epsilon=EPS), values, grads, mode, legacy=True)
        try:
            import tensorflow_addons as tfa
        except Exception:  # not installed for this TF
            tfa = None
        if tfa is not None and mode != "xla":  # TFA's AdamW has no XLA kernel path worth timing
            refs["TFA AdamW"] = self.stepper(
                lambda: tfa.optimizers.AdamW(weight_decay=WD * LR, learning_rate=LR, epsilon=EPS),
                values, grads, mode, legacy=True)
        return refs

    def model(self, make_opt, mode):
        keras = self.keras
        self.tf.random.set_seed(0)
        model = keras.Sequential([keras.Input((1024,)), keras.layers.Dense(2048, activation="relu"),
                                  keras.layers.Dense(2048, activation="relu"), keras.layers.Dense(10)])
        model.compile(optimizer=make_opt(), loss="mse", jit_compile=(mode == "xla"))
        return model

    def first_step_modes(self):
        return ["tf.function", "xla"]


class LegacyHost(Keras2Host):
    """OptimizerV2 (TF 1.15-2.10's ``tf.keras.optimizers``, ``.legacy`` after): no host
    AdamW -- TensorFlow Addons' ``AdamW`` / ``SGDW`` are what its users had, and the
    host's own ``Adam`` (the fused kernel, no decay) is the yardstick."""
    family = "legacy"

    def __init__(self):
        import tensorflow as tf
        import tensorflow_addons as tfa

        import optcompat.legacy as oc

        self.tf, self.oc, self.tfa = tf, oc, tfa
        self.keras = oc.keras
        self.backend = "tensorflow"
        self.modes = ["tf.function", "xla"]
        self.fit_modes = ["tf.function", "xla"]

    def label(self):
        return "TF %s legacy OptimizerV2 (tf.keras), TFA %s" % (self.tf.__version__, self.tfa.__version__)

    def optimizers(self, kind):
        oc, tfa = self.oc, self.tfa.optimizers
        if kind == "adamw":  # TFA's weight_decay is the decay per step: lr * wd here
            return {"optcompat.AdamW": lambda **kw: oc.AdamW(learning_rate=LR, weight_decay=WD, epsilon=EPS, **kw),
                    "TFA AdamW": lambda **kw: tfa.AdamW(weight_decay=WD * LR, learning_rate=LR, epsilon=EPS, **kw)}
        return {"optcompat.SGDW": lambda **kw: oc.SGDW(learning_rate=LR, weight_decay=WD,
                                                       **dict(dict(momentum=0.9), **kw)),
                "TFA SGDW": lambda **kw: tfa.SGDW(weight_decay=WD * LR, learning_rate=LR,
                                                  **dict(dict(momentum=0.9), **kw))}

    def stepper(self, make_opt, values, grads, mode, legacy=True):
        return Keras2Host.stepper(self, make_opt, values, grads, mode, legacy=True)

    def references(self, values, grads, mode, kind):
        refs = {}
        if kind == "adamw":
            refs["optcompat.AdamW fast_path=None"] = self.stepper(
                lambda: _with(self.optimizers(kind)["optcompat.AdamW"](), fast_path=None), values, grads, mode)
            refs["legacy Adam (no decay)"] = self.stepper(
                lambda: self.keras.optimizers.Adam(learning_rate=LR, epsilon=EPS), values, grads, mode)
        return refs

    def build(self, opt, variables):
        # OptimizerV2 has no public build: one zero step creates the slots.
        tf = self.tf
        opt.apply_gradients([(tf.zeros_like(v), v) for v in variables])
        return list(opt.variables())


def _with(obj, **attrs):
    for k, v in attrs.items():
        setattr(obj, k, v)
    return obj


def torch_optim(values, grads, name, how, device="cpu"):
    def setup():
        import torch

        params = [torch.nn.Parameter(torch.from_numpy(v.copy()).to(device)) for v in values]
        for p, g in zip(params, grads):
            p.grad = torch.as_tensor(np.asarray(g)).to(device)
        if name == "AdamW":
            opt = torch.optim.AdamW(params, lr=LR, weight_decay=WD, eps=EPS, **{how: True})
        else:
            opt = torch.optim.SGD(params, lr=LR, weight_decay=WD, momentum=0.9, **{how: True})

        def run(n):
            for _ in range(n):
                opt.step()
            if device != "cpu":
                torch.cuda.synchronize()
        return run
    return setup


FLOOR = "floor: XLA-compiled decay pass + ResourceApplyAdam"  # the two-pass floor (run.py)


def tf_kernels(values, grads, mode):
    """TensorFlow's fused C++ Adam kernel (what the legacy ``Adam`` runs), no weight decay --
    the yardstick -- and, in a plain ``tf.function``: the two-pass floor (the decay as one pass
    compiled by XLA, a nested ``jit_compile`` function, then the kernel: 8 + 28 bytes per
    parameter), and the ways to add the decay that were tried: ``x d`` into a temporary and an
    in-place subtract (before the one-kernel decay), the kernel after a one-pass ``x (1 - d)``,
    and decay + Adam as one XLA cluster."""
    refs = {"ResourceApplyAdam (fused, no decay)": resource_apply_adam(values, grads, mode)}
    if mode != "xla":
        refs[FLOOR] = resource_apply_adam(values, grads, mode, "xla-pass")
        refs["tried: x d temporary, subtract + ResourceApplyAdam"] = resource_apply_adam(
            values, grads, mode, "assign-sub")
        refs["tried: x(1-d) pass + ResourceApplyAdam"] = resource_apply_adam(values, grads, mode, "scale")
        refs["tried: decay + Adam in one nested XLA cluster"] = resource_apply_adam(values, grads, mode, "cluster")
    return refs


def resource_apply_adam(values, grads, mode, decay=None):
    def setup():
        import tensorflow as tf

        vs = [tf.Variable(v) for v in values]
        ms = [tf.Variable(np.zeros_like(v)) for v in values]
        us = [tf.Variable(np.zeros_like(v)) for v in values]
        step = tf.Variable(0.0)
        d = tf.constant(LR * WD)

        @tf.function(jit_compile=True)
        def cluster(b1p, b2p):
            alpha = LR * tf.sqrt(1 - b2p) / (1 - b1p)
            for v, m, u, g in zip(vs, ms, us, grads):
                m.assign(m + (g - m) * 0.1)
                u.assign(u + (g * g - u) * 0.001)
                v.assign(v - v * d - alpha * m / (tf.sqrt(u) + EPS))

        @tf.function(jit_compile=True)
        def decay_pass():
            for v in vs:
                v.assign(v - v * d)

        @tf.function(jit_compile=(mode == "xla"))
        def f():
            step.assign_add(1.0)
            b1p, b2p = tf.pow(0.9, step), tf.pow(0.999, step)
            if decay == "cluster":
                cluster(b1p, b2p)
                return
            if decay == "xla-pass":
                decay_pass()
            alpha = LR * tf.sqrt(1 - b2p) / (1 - b1p)
            for v, m, u, g in zip(vs, ms, us, grads):
                if decay == "ops":  # the rule op by op, as Keras's own AdamW writes it
                    v.assign_sub(v * d)
                    m.assign_add((g - m) * 0.1)
                    u.assign_add((g * g - u) * 0.001)
                    v.assign_sub(m * alpha / (tf.sqrt(u) + EPS))
                    continue
                if decay == "scale":
                    v.assign(v * (1 - d))
                elif decay == "assign-sub":
                    v.assign_sub(v * d)
                elif decay == "subtract":  # the fast path's decay (optcompat/_tf_fast.py): one kernel
                    tf.raw_ops.ResourceApplyGradientDescent(var=v.handle, alpha=d, delta=v.read_value())
                tf.raw_ops.ResourceApplyAdam(var=v.handle, m=m.handle, v=u.handle, beta1_power=b1p,
                                             beta2_power=b2p, lr=LR, beta1=0.9, beta2=0.999,
                                             epsilon=EPS, grad=g)

        def run(n):
            for _ in range(n):
                f()
            step.numpy()
        return run
    return setup


def step_inputs(host, params, tensors):
    """The weights' initial values (numpy) and the host's gradient tensors of every part."""
    shapes = shapes_for(params, tensors)
    return arrays(shapes, 0), host.tensors(arrays(shapes, 1))


def all_optimizers(host):
    """Every candidate of both kinds: name -> () -> optimizer."""
    opts = dict(host.optimizers("adamw"))
    opts.update(host.optimizers("sgdw"))
    return opts


def make_host():
    return {"keras2": Keras2Host, "legacy": LegacyHost}.get(os.environ.get("BENCH_FAMILY"), Keras3Host)()


# --------------------------------------------------------------------------- parts
def part_apply(host, params, tensors, steps, reps):
    values, grads = step_inputs(host, params, tensors)
    sections = []
    for kind in ("adamw", "sgdw"):
        for mode in host.modes:
            if mode == "eager" and host.backend == "jax" and kind == "sgdw":
                continue  # op-by-op jax: one row is enough to show it
            setups = {name: host.stepper(make, values, grads, mode)
                      for name, make in host.optimizers(kind).items()}
            setups.update(host.references(values, grads, mode, kind))
            host_name, host_make = list(host.optimizers(kind).items())[1]
            # A/A control: the host's own optimizer a second time.  Its ratio to the first is
            # this run's noise, the yardstick for optcompat's ratios near 1.
            setups[host_name + AGAIN] = host.stepper(host_make, values, grads, mode)
            n = max(1, steps // 4) if mode == "eager" and host.backend == "jax" else steps
            res = interleave(setups, n, reps)
            sections.append(dict(part="apply", kind=kind, mode=mode, params=params, tensors=tensors,
                                 steps=n, reps=reps, bytes_per_param=BYTES[kind], results=res,
                                 host=list(host.optimizers(kind))[1]))
            log(sections[-1])
    return sections


def part_fit(host, steps, reps, batch=4):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((steps * batch, 1024)).astype("float32")
    y = rng.standard_normal((steps * batch, 10)).astype("float32")
    sections = []
    for mode in host.fit_modes:
        makers = dict(host.optimizers("adamw"))
        makers.update(host.optimizers("sgdw"))
        k = host.keras.optimizers
        makers["SGD lr=0 (forward+backward floor)"] = lambda: k.SGD(learning_rate=0.0)
        host_name, host_make = list(host.optimizers("adamw").items())[1]
        makers[host_name + AGAIN] = host_make  # A/A control, as in part_apply

        def setup(make, mode=mode):
            model = host.model(make, mode)

            def run(n):
                model.fit(x[:n * batch], y[:n * batch], batch_size=batch, epochs=1, verbose=0, shuffle=False)
            return run
        setups = {name: (lambda make=make: setup(make)) for name, make in makers.items()}
        params = int(sum(np.prod(w.shape) for w in host.model(makers["optcompat.AdamW"], mode).weights))
        res = interleave(setups, steps, reps, warm=steps)  # same length: no retrace in the timed runs
        sections.append(dict(part="fit", kind="fit", mode=mode, params=params, tensors=6, steps=steps,
                             reps=reps, batch=batch, results=res))
        log(sections[-1])
    return sections


def part_scaling(host, counts, reps):
    sections = []
    mode = host.modes[0]
    for p in counts:
        p = int(p)
        values = arrays(shapes_for(p, 4 if p >= 4000 else 1), 0)
        grads = host.tensors(arrays([v.shape for v in values], 1))
        setups = {name: host.stepper(make, values, grads, mode)
                  for name, make in host.optimizers("adamw").items()}
        if host.backend == "torch":
            setups["torch.optim.AdamW(fused=True)"] = torch_optim(values, grads, "AdamW", "fused")
        steps = int(min(200, max(2, 2e6 / p)))
        res = interleave(setups, steps, reps)
        sections.append(dict(part="scaling", kind="adamw", mode=mode, params=sum(v.size for v in values),
                             tensors=len(values), steps=steps, reps=reps, bytes_per_param=28, results=res))
        log(sections[-1])
    for label, shapes in (("1000 x 1k", [(1000,)] * 1000), ("1 x 1M", [(1000, 1000)])):
        values = arrays(shapes, 0)
        grads = host.tensors(arrays(shapes, 1))
        setups = {name: host.stepper(make, values, grads, mode)
                  for name, make in host.optimizers("adamw").items()}
        if host.backend == "torch":
            setups["torch.optim.AdamW(fused=True)"] = torch_optim(values, grads, "AdamW", "fused")
        if host.backend == "tensorflow":
            setups["optcompat.AdamW fast_path=None"] = host.stepper(
                lambda: _with(host.optimizers("adamw")["optcompat.AdamW"](), fast_path=None), values, grads, mode)
        res = interleave(setups, 5, reps)
        sections.append(dict(part="tensors", kind="adamw", mode=mode, params=10 ** 6, tensors=len(shapes),
                             label=label, steps=5, reps=reps, bytes_per_param=28, results=res))
        log(sections[-1])
    return sections


def part_per_call(host, reps, count=300):
    """TensorFlow: what one variable costs per step, by size -- the decay pass +
    ``ResourceApplyAdam`` (the fast path's kernels) against the rule op by op (Keras's own
    form), both with shared step coefficients, over ``count`` variables, plain ``tf.function``."""
    if host.backend != "tensorflow":
        return []
    sections = []
    for size in (100, 1000, 10000, 100000):
        values = arrays([(size,)] * count, 0)
        grads = host.tensors(arrays([(size,)] * count, 1))
        setups = {"decay pass + ResourceApplyAdam": resource_apply_adam(values, grads, "tf.function", "subtract"),
                  "op by op": resource_apply_adam(values, grads, "tf.function", "ops")}
        res = interleave(setups, 5, reps)
        sections.append(dict(part="per_call", kind="adamw", mode="tf.function", params=size * count,
                             tensors=count, label="%d x %d" % (count, size), steps=5, reps=reps, results=res))
        log(sections[-1])
    return sections


def part_first_step(host, reps):
    """Build + trace/compile + first step, on fresh variables and a fresh optimizer."""
    sections = []
    values = arrays(shapes_for(10 ** 6, 4), 0)
    grads = host.tensors(arrays(shapes_for(10 ** 6, 4), 1))
    for mode in host.first_step_modes():
        names = list(host.optimizers("adamw"))
        samples = {n: [] for n in names}
        warm_make = list(host.optimizers("sgdw").values())[1]  # the host's SGD: warms the framework
        host.stepper(warm_make, values, grads, mode)()(1)
        for r in range(reps):
            for name in (names if r % 2 == 0 else names[::-1]):
                make = host.optimizers("adamw")[name]
                t0 = time.perf_counter()
                host.stepper(make, values, grads, mode)()(1)
                samples[name].append((time.perf_counter() - t0) * 1e3)
        res = {n: {"min": min(s), "median": statistics.median(s), "samples": s} for n, s in samples.items()}
        sections.append(dict(part="first_step", kind="adamw", mode=mode, params=10 ** 6, tensors=4,
                             reps=reps, results=res))
        log(sections[-1])
    return sections


def part_state(host):
    """Optimizer state: bytes of the slots each optimizer creates for 1M float32 parameters."""
    values = arrays(shapes_for(10 ** 6, 4), 0)
    out = {}
    for kind in ("adamw", "sgdw"):
        for name, make in host.optimizers(kind).items():
            for extra in ({}, {"momentum": 0.0} if kind == "sgdw" else {"amsgrad": True}):
                opt = make(**extra)
                state = host.build(opt, host.variables(values))
                nbytes = sum(int(np.prod(v.shape)) * 4 for v in state if len(v.shape))
                label = name + "".join(" %s=%s" % kv for kv in extra.items())
                out[label] = {"state_bytes_per_param": nbytes / 1e6}
    return out


def _status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_rss_child(candidate, params, tensors):
    """Runs in a subprocess: peak RSS growth (MB) (a) from building one optimizer and its first
    step (trace / compile included), over the RSS with the gradients already allocated, and
    (b) during the 5 steps after that, over the RSS after the first step: the memory a step
    itself takes.  The peak is reset before each (``/proc/self/clear_refs``), so the
    framework's import peak does not hide it."""
    host = make_host()
    values, grads = step_inputs(host, params, tensors)
    opts = all_optimizers(host)
    setup = host.stepper(opts[candidate], values, grads, host.modes[0])

    def reset():
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kb("VmRSS")

    before = reset()
    run = setup()
    run(1)
    first = (_status_kb("VmHWM") - before) / 1024.0
    before = reset()
    run(5)
    print(json.dumps({"peak_growth_MB": first, "step_peak_growth_MB": (_status_kb("VmHWM") - before) / 1024.0,
                      "params_MB": params * 4 / 2 ** 20}))


def part_memory(host, params, tensors, reps=3):
    """Peak RSS growth per candidate, the least of ``reps`` subprocesses (the allocator's
    timing moves single runs by tens of MB); on jax, also XLA's own account of the jitted
    step's peak (``memory_analysis``: arguments + outputs - donated + temporaries), which
    does not depend on the allocator."""
    out = {}
    for name in all_optimizers(host):
        samples, error = [], None
        for _ in range(reps):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", name,
                                "--params", str(params), "--tensors", str(tensors)],
                               capture_output=True, text=True)
            try:
                samples.append(json.loads(r.stdout.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                error = (r.stderr or r.stdout)[-300:]
        if not samples:
            out[name] = {"error": error}
            continue
        growth = sorted(x["peak_growth_MB"] for x in samples)
        step = sorted(x["step_peak_growth_MB"] for x in samples)
        out[name] = dict(samples[0], peak_growth_MB=growth[0], peak_growth_samples_MB=growth,
                         step_peak_growth_MB=step[0], step_peak_growth_samples_MB=step)
    if getattr(host, "backend", None) == "jax":
        for name, mb in xla_step_memory(host, params, tensors).items():
            out.setdefault(name, {})["xla_peak_MB"] = mb
    return out


def xla_step_memory(host, params, tensors):
    """XLA's peak memory (MB) for one jitted ``stateless_apply`` step per candidate, jitted as
    the benchmark's step is (:meth:`Keras3Host.jax_step`)."""
    values, grads = step_inputs(host, params, tensors)
    opts = all_optimizers(host)
    out = {}
    for name, make in opts.items():
        ma = host.compiled_jax_step(make, values, grads).memory_analysis()
        if ma is not None:
            out[name] = ma.peak_memory_in_bytes / 2 ** 20
    return out


_HLO_INSTR = re.compile(r"^\s*(?:ROOT )?%(\S+) = (.*?) ([a-z][\w-]*)\((.*)$")
_HLO_SHAPE = re.compile(r"\b(f16|bf16|f32|f64)\[([\d,]+)\]")
_HLO_OPERAND = re.compile(r"%([\w.-]+)")
_HLO_BYTES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8}


def _array_bytes(shapes):
    return sum(_HLO_BYTES[t] * int(np.prod([int(d) for d in dims.split(",")])) for t, dims in shapes)


def hlo_loops(text):
    """The optimized HLO's top-level loops (fusions and parallel calls with an array result,
    not the scalar coefficients) in its entry computation, and the array bytes they read and
    write (operand shapes looked up by name: newer XLA prints operands without them)."""
    entry = text[text.index("ENTRY"):]
    entry = entry[:entry.index("\n}")]
    shapes, loops, nbytes = {}, 0, 0
    for line in entry.splitlines():
        m = _HLO_INSTR.match(line)
        if not m:
            continue
        name, result, opcode, rest = m.groups()
        out = _HLO_SHAPE.findall(result)
        shapes[name] = out
        if opcode not in ("fusion", "call") or not out:
            continue
        operands = rest.split("), ")[0]  # the operand list, before the attributes
        loops += 1
        nbytes += _array_bytes(out) + sum(_array_bytes(shapes.get(op, ())) for op in _HLO_OPERAND.findall(operands))
    return loops, nbytes


_HLO_COMPUTATION = re.compile(r"^(ENTRY )?%(\S+) \((.*)\) -> .* \{$")
_HLO_PARAMETER = re.compile(r"= .* parameter\((\d+)\)")
_HLO_METADATA = re.compile(r", (?:metadata|frontend_attributes)=\{[^{}]*\}")
_HLO_COMMUTATIVE = re.compile(r"^(.* (?:add|multiply|maximum|minimum|and|or))\(([^()]*)\)(.*)$")


def hlo_loop_bodies(text):
    """The computations the optimized HLO's loops run (every computation but the entry),
    as a digest of their sorted canonical texts: names renamed in order of definition
    (parameters by number, called computations by their own digest), source metadata and
    parameter declaration order dropped, operands of commutative ops sorted.  Two steps with
    the same digest and the same :func:`hlo_loops` run the same loops over the same bytes;
    what is left is the entry's order of buffers among the arguments."""
    blocks, block = [], None
    for line in text.splitlines():
        if _HLO_COMPUTATION.match(line):
            block = [line]
        elif block is not None:
            block.append(_HLO_METADATA.sub("", line))
            if line == "}":
                blocks.append(block)
                block = None
    digests, bodies = {}, []
    for block in blocks:
        head = _HLO_COMPUTATION.match(block[0])
        names = dict(digests)
        k = 0
        for line in block[1:]:
            m = _HLO_INSTR.match(line)
            if m:
                p = _HLO_PARAMETER.search(line)
                names[m.group(1)] = "p" + p.group(1) if p else "v%d" % k
                k += not p
        params, lines = [], []
        for line in block[1:]:
            line = _HLO_OPERAND.sub(lambda m: "%" + names.get(m.group(1), m.group(1)), line)
            m = _HLO_COMMUTATIVE.match(line)
            if m:
                line = "%s(%s)%s" % (m.group(1), ", ".join(sorted(m.group(2).split(", "))), m.group(3))
            (params if _HLO_PARAMETER.search(line) else lines).append(line)
        canon = "\n".join(sorted(params) + lines)
        digests[head.group(2)] = hashlib.sha256(canon.encode()).hexdigest()[:12]
        if not head.group(1):
            bodies.append(digests[head.group(2)])
    return hashlib.sha256(" ".join(sorted(bodies)).encode()).hexdigest()[:16]


def part_hlo(host, params, tensors):
    """The compiled program of one step under XLA (TensorFlow ``jit_compile`` / ``jax.jit``),
    per candidate: loops over arrays in the optimized HLO's entry, the array bytes they move
    per parameter, and the digest of their bodies (:func:`hlo_loop_bodies`).  Equal programs take
    equal time: what the step-time ratios under XLA vary by beyond that is noise."""
    mode = {"jax": "jit", "tensorflow": "xla"}.get(getattr(host, "backend", "tensorflow"))
    if mode not in host.modes:
        return {}
    values, grads = step_inputs(host, params, tensors)
    out = {}
    for name, make in all_optimizers(host).items():
        try:
            text = host.optimized_hlo(make, values, grads)
        except Exception as e:  # an old host without the compiler-IR API: say so in the report
            out[name] = {"error": "%s: %s" % (type(e).__name__, str(e)[:200])}
            continue
        loops, nbytes = hlo_loops(text)
        out[name] = {"loops": loops, "bytes_per_param": nbytes / float(params),
                     "loop_bodies": hlo_loop_bodies(text)}
    return out


def part_import(reps, family):
    host_mod = "keras" if family == "keras3" else "tensorflow"
    code = ("import time; t0 = time.perf_counter(); import optcompat; t1 = time.perf_counter(); "
            "import %s; t2 = time.perf_counter(); optcompat.family_module(%r); t3 = time.perf_counter(); "
            "print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)" % (host_mod, family))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows = [[], [], []]
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        for row, x in zip(rows, out.stdout.split()[-3:]):
            row.append(float(x))
    names = ["import optcompat (no framework)",
             "import %s (host, with optcompat's import hook: registers optcompat.%s)" % (host_mod, family),
             "optcompat.%s after the host (already imported by the hook)" % family]
    return {n: {"min": min(r), "median": statistics.median(r)} for n, r in zip(names, rows)}


def log(section):
    what = section.get("label") or "%s %.3gM" % (section["mode"], section["params"] / 1e6)
    print("bench: %-9s %-6s %-16s %s" % (section["part"], section["kind"], what, "  ".join(
        "%s %.2f/%.2f" % (n, r["min"], r["median"]) for n, r in section["results"].items())), flush=True)


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return {"cpu": cpu, "nproc": os.cpu_count(), "mem_GiB": round(int(mem) / 2 ** 20, 1),
            "platform": platform.platform(), "python": platform.python_version(), "loadavg": os.getloadavg()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=False)
    ap.add_argument("--env", default="?")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="bandwidth,apply,fit,scaling,per_call,first_step,state,hlo,memory,import")
    ap.add_argument("--rss-child")
    ap.add_argument("--params", type=float, default=1e7)
    ap.add_argument("--tensors", type=int, default=4)
    args = ap.parse_args(argv)
    if args.rss_child:
        return peak_rss_child(args.rss_child, int(args.params), args.tensors)
    import optcompat

    parts = args.parts.split(",")
    q = args.quick
    t_start = time.time()
    host = make_host()
    record = {"env": args.env, "label": host.label(), "family": host.family, "backend": host.backend,
              "quick": q, "describe": optcompat.describe(), "machine": machine(), "sections": []}
    if "bandwidth" in parts:
        record["bandwidth"] = copy_bandwidth(5 if q else 15)
    if "apply" in parts:
        record["sections"] += part_apply(host, int(args.params), args.tensors, 5 if q else 10, 5 if q else 21)
    if "fit" in parts:
        record["sections"] += part_fit(host, 8 if q else 12, 3 if q else 11)
    if "scaling" in parts:
        counts = np.logspace(4, np.log10(3e7), 4 if q else 10)
        record["sections"] += part_scaling(host, counts, 3)
    if "per_call" in parts:
        record["sections"] += part_per_call(host, 3 if q else 5)
    if "first_step" in parts:
        record["sections"] += part_first_step(host, 1 if q else 2)
    if "state" in parts:
        record["state"] = part_state(host)
    if "hlo" in parts:
        record["hlo"] = part_hlo(host, int(args.params), args.tensors)  # the timed program
    if "memory" in parts:
        record["memory"] = part_memory(host, int(args.params), args.tensors)
    if "import" in parts:
        record["import"] = part_import(3 if q else 5, host.family)
    record["machine"]["loadavg_end"] = os.getloadavg()
    record["wall_s"] = time.time() - t_start
    record["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start))
    text = json.dumps(record, indent=1, default=str)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
