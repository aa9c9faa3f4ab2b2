"""Benchmarks of optcompat against the host's own optimizers: one command, one report.

    python benchmarks/run.py            # every env, full repetitions (~20-40 min on 2 cores)
    python benchmarks/run.py --quick    # fewer repetitions / sizes (a few minutes)
    python benchmarks/run.py --envs keras3-torch,tf215
    python benchmarks/run.py --report-only   # rewrite docs/benchmarks.md + .png from results

Runs ``benchmarks/bench.py`` in each tox env (building a missing env with ``ci/tox -e ENV
--notest``), one env after the other so that they never compete for the cores, with the
working tree's ``optcompat`` first on ``PYTHONPATH``.  Each part writes
``benchmarks/results/<env>.json``; the report ``docs/benchmarks.md`` and the chart
``docs/benchmarks.png`` are generated from those files, never edited by hand.  Standard
library only; the chart runs in the tox bootstrap venv (matplotlib installed on first use).
Not part of the unit tests.
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DOCS = os.path.join(ROOT, "docs")
BOOT_PYTHON = os.path.join(ROOT, ".tox-bootstrap", "bin", "python")

# env -> extra environment (the factors tox.ini would set)
ENVS = {
    "keras3-torch": {"KERAS_BACKEND": "torch"},
    "keras3-jax": {"KERAS_BACKEND": "jax"},
    "tf215": {"BENCH_FAMILY": "keras2"},
    "keras3-tf": {"KERAS_BACKEND": "tensorflow"},
    "tf210": {"BENCH_FAMILY": "legacy"},  # OptimizerV2 vs Adam and TensorFlow Addons' AdamW
}
# optcompat's optimizer and the word that finds the host's own among a record's candidates
PAIRS = (("optcompat.AdamW", "AdamW"), ("optcompat.SGDW", "SGD"))
# The host's fused kernels without decay: yardsticks, not rivals.
NO_DECAY_REFS = ("ResourceApplyAdam (fused, no decay)", "legacy Adam (no decay)")
# TensorFlow's floor with a decay: the decay as one pass compiled by XLA, then the kernel (bench.py)
FLOOR = "floor: XLA-compiled decay pass + ResourceApplyAdam"
COMMON_ENV = {"PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu",
              "PYTHONWARNINGS": "ignore"}


def env_python(env):
    py = os.path.join(ROOT, ".tox", env, "bin", "python")
    if not os.path.exists(py):
        print("bench: building tox env %s" % env, flush=True)
        subprocess.check_call([os.path.join(ROOT, "ci", "tox"), "-e", env, "--notest"], cwd=ROOT)
        if "torch" in env:  # tox.ini's commands_pre, which --notest skips
            subprocess.check_call([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                   "torch==2.13.0"])
    return py


def run_env(env, quick, params):
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, env + ".json")
    environ = dict(os.environ, **COMMON_ENV)
    environ.update(ENVS[env])
    environ["PYTHONPATH"] = ROOT + os.pathsep + environ.get("PYTHONPATH", "")
    cmd = [env_python(env), os.path.join(HERE, "bench.py"), "--env", env, "--out", out,
           "--params", str(params)] + (["--quick"] if quick else [])
    t0 = time.time()
    print("bench: %s ..." % env, flush=True)
    rc = subprocess.call(cmd, env=environ, cwd=ROOT)
    print("bench: %s rc=%d in %.0f s" % (env, rc, time.time() - t0), flush=True)
    return rc


# --------------------------------------------------------------------------- report
def load():
    recs = []
    for name in sorted(os.listdir(RESULTS)) if os.path.isdir(RESULTS) else []:
        if name.endswith(".json"):
            with open(os.path.join(RESULTS, name)) as f:
                recs.append(json.load(f))
    order = list(ENVS)
    return sorted(recs, key=lambda r: order.index(r["env"]) if r["env"] in order else 99)


def gbps(section, ms):
    bpp = section.get("bytes_per_param")
    return bpp * section["params"] / (ms * 1e-3) / 1e9 if bpp else None


def fmt(x, nd=2):
    if x is None:
        return "–"
    return ("%." + str(nd) + "f") % x


def copy_gbps(rec):
    bw = rec.get("bandwidth") or {}
    big = [v["best_GBps"] for k, v in bw.items() if "100M" in k]
    return big[0] if big else None


AGAIN = " (again)"  # bench.py's A/A control: the host's optimizer a second time


def aa_ratio(results, host):
    """This run's A/A ratio (the host's optimizer again / the host's optimizer), or None."""
    again = results.get(host + AGAIN)
    return again["median"] / results[host]["median"] if again and host in results else None


def _median_ci(values, level=0.95):
    """The median of ``values`` and a distribution-free confidence interval for it: order
    statistics ``k`` and ``n + 1 - k``, the largest ``k`` with P(Binomial(n, 1/2) < k) ≤
    (1 - level) / 2."""
    from math import comb

    v = sorted(values)
    n = len(v)
    k, cdf = 0, 0.0
    while k < n and cdf + comb(n, k) / 2.0 ** n <= (1 - level) / 2:
        cdf += comb(n, k) / 2.0 ** n
        k += 1
    med = statistics.median(v)
    return (med, v[k - 1], v[n - k]) if k > 0 else (med, v[0], v[-1])


def paired(results, a, b):
    """``a`` / ``b`` per repetition (the two ran in the same interleaved round): median and 95 %
    interval, or None without samples."""
    sa, sb = results.get(a, {}).get("samples"), results.get(b, {}).get("samples")
    if not sa or not sb or len(sa) != len(sb):
        return None
    return _median_ci([x / y for x, y in zip(sa, sb)])


def host_status(q, aa, pair=None, same_program=False):
    """optcompat / host: met at ≤ 1.00.  Above that, equal within noise when the 95 % interval
    of the per-round ratio (``pair``) holds 1.00 -- the A/A control (the host against itself)
    shows how far equal programs stray in this run.  Otherwise not met; but where the compiled
    step is the host's own program (``same_program``: the same loops, array bytes and loop
    bodies in the optimized HLO), the report says so: that gap is the run's noise, there is
    no code difference left to remove."""
    aa_text = "A/A %.3f" % aa if aa is not None else "A/A –"
    if q <= 1.0:
        return "**met**"
    if pair is not None and pair[1] <= 1.0 <= pair[2] and q <= 1.05:
        return "equal within noise (per-round ratio %.3f, 95%% [%.3f, %.3f]; %s)" % (pair + (aa_text,))
    ci = "per-round 95%% [%.3f, %.3f]; " % pair[1:] if pair else ""
    if same_program:
        return ("**not met** in this run, with the same compiled program as the host's (same loops, bytes "
                "and loop bodies: the gap is noise; %s%s)" % (ci, aa_text))
    return "**not met** (%s%s)" % (ci, aa_text)


def same_program(rec, oc, host):
    """Whether optcompat's compiled step (XLA / jax.jit) is the host's: equal loops, array bytes
    and loop-body digest in the optimized HLO (``bench.part_hlo``)."""
    hlo = rec.get("hlo") or {}
    a, b = hlo.get(oc, {}), hlo.get(host, {})
    keys = ("loops", "bytes_per_param", "loop_bodies")
    return all(k in a and k in b for k in keys) and all(a[k] == b[k] for k in keys)


def ratio_status(value, target, hard=None):
    if value is None:
        return "–"
    if value <= target:
        return "**met**"
    if hard is not None and value <= hard:
        return "within noise (≤ %.2f)" % hard
    return "**not met**"


def targets(recs):
    rows = []
    for rec in recs:
        env = rec["env"]
        for s in rec["sections"]:
            r = s["results"]
            if s["part"] == "apply":
                oc = "optcompat.AdamW" if s["kind"] == "adamw" else "optcompat.SGDW"
                host = s.get("host") or next(n for n in r if n != oc and not n.startswith(
                    ("optcompat", "torch", "Resource", "legacy", "TFA")))
                q = r[oc]["median"] / r[host]["median"]
                compiled = s["mode"] in ("jit", "xla") and same_program(rec, oc, host)
                rows.append((env, "apply %s, %s" % (s["kind"], s["mode"]), "%s / %s ≤ 1.00 (≤ 1.05)" % (oc, host),
                             "%.3f (min %.3f)" % (q, r[oc]["min"] / r[host]["min"]),
                             host_status(q, aa_ratio(r, host), paired(r, oc, host), compiled)))
                if "torch.optim.AdamW(fused=True)" in r:
                    q = r[oc]["median"] / r["torch.optim.AdamW(fused=True)"]["median"]
                    rows.append((env, "apply adamw, eager", "optcompat.AdamW / torch.optim.AdamW(fused) ≤ 1.2",
                                 "%.2f (min %.2f)" % (q, r[oc]["min"] / r["torch.optim.AdamW(fused=True)"]["min"]),
                                 ratio_status(q, 1.2)))
                if FLOOR in r:  # a plain tf.function's decay costs a pass: the floor is two passes
                    q = r[oc]["median"] / r[FLOOR]["median"]
                    rows.append((env, "apply adamw, %s" % s["mode"], "optcompat.AdamW / two-pass floor ≤ 1.2",
                                 "%.2f (min %.2f)" % (q, r[oc]["min"] / r[FLOOR]["min"]), ratio_status(q, 1.2)))
                for ref in NO_DECAY_REFS:
                    if ref in r:
                        q = r[oc]["median"] / r[ref]["median"]
                        rows.append((env, "apply adamw, %s" % s["mode"], "optcompat.AdamW / %s ≤ 1.00" % ref,
                                     "%.2f (min %.2f)" % (q, r[oc]["min"] / r[ref]["min"]),
                                     ratio_status(q, 1.0, 1.05)))
                if "TFA AdamW" in r and host != "TFA AdamW":
                    q = r[oc]["median"] / r["TFA AdamW"]["median"]
                    rows.append((env, "apply adamw, %s" % s["mode"],
                                 "optcompat.AdamW (keras2) / TFA AdamW ≤ 1.00 (≤ 1.05)",
                                 "%.3f" % q, host_status(q, aa_ratio(r, host), paired(r, oc, "TFA AdamW"))))
                if rec["backend"] == "jax" and s["mode"] == "jit" and s["kind"] == "adamw" and copy_gbps(rec):
                    frac = gbps(s, r[oc]["min"]) / copy_gbps(rec)
                    rows.append((env, "apply adamw, jit", "achieved GB/s ≥ 50% of copy bandwidth",
                                 "%.0f%% (%.1f of %.1f GB/s)" % (100 * frac, gbps(s, r[oc]["min"]), copy_gbps(rec)),
                                 ratio_status(-frac, -0.5)))
            if s["part"] == "fit":
                host = next(n for n in r if "AdamW" in n and n != "optcompat.AdamW")
                q = r["optcompat.AdamW"]["median"] / r[host]["median"]
                rows.append((env, "fit, %s" % s["mode"], "optcompat.AdamW / host AdamW ≤ 1.00 (≤ 1.05)", "%.3f" % q,
                             host_status(q, aa_ratio(r, host), paired(r, "optcompat.AdamW", host))))
        mem = rec.get("memory") or {}
        for oc, hostkw in PAIRS:
            host = _host_of(mem, hostkw)
            if oc in mem and host and "step_peak_growth_MB" in mem[oc] and "step_peak_growth_MB" in mem.get(host, {}):
                a, b = mem[oc]["step_peak_growth_MB"], mem[host]["step_peak_growth_MB"]
                rows.append((env, "memory (peak RSS growth during steps 2-6, least of 3)", "%s ≤ %s" % (oc, host),
                             "%.0f MB vs %.0f MB" % (a, b), ratio_status(a - b, 1.0)))
            if "xla_peak_MB" in mem.get(oc, {}) and "xla_peak_MB" in mem.get(host, {}):
                a, b = mem[oc]["xla_peak_MB"], mem[host]["xla_peak_MB"]
                rows.append((env, "memory (XLA's peak for the jitted step)", "%s ≤ %s" % (oc, host),
                             "%.1f MB vs %.1f MB" % (a, b), ratio_status(a - b, 0.0)))
        for oc, host, a, b in _hlo_pairs(rec):
            bodies = ""
            if "loop_bodies" in a and "loop_bodies" in b:
                bodies = "; loop bodies %s" % ("the same" if a["loop_bodies"] == b["loop_bodies"] else "differ")
            compiler = "jax.jit" if rec["backend"] == "jax" else "XLA"
            rows.append((env, "compiled step under %s (optimized HLO)" % compiler,
                         "%s ≤ %s: loops, array bytes" % (oc, host),
                         "%d loops, %g B/param vs %d, %g%s" % (a["loops"], a["bytes_per_param"], b["loops"],
                                                             b["bytes_per_param"], bodies),
                         "**met**" if a["loops"] <= b["loops"] and a["bytes_per_param"] <= b["bytes_per_param"]
                         else "**not met**"))
        st = rec.get("state") or {}
        if st:
            # At momentum 0 Keras 2's own SGD keeps an (unused) momentum slot per variable, and
            # optcompat keeps the host's layout (files list optimizer variables by position):
            # the bound is the host's own SGD at momentum 0 where the record has it, else none.
            host_sgd0 = next((v["state_bytes_per_param"] for k, v in sorted(st.items())
                              if not k.startswith("optcompat") and "SGD" in k and k.endswith("momentum=0.0")), 0)
            sgd0 = st.get("optcompat.SGDW momentum=0.0", {}).get("state_bytes_per_param", -1)
            ok = 0 <= sgd0 <= host_sgd0 and st.get("optcompat.AdamW", {}).get("state_bytes_per_param") == 8
            rows.append((env, "slots", "no vhat without amsgrad; at momentum 0 no momentum buffer beyond the "
                         "host's own SGD's", "AdamW %g B/param, SGDW(momentum=0) %g B/param (host SGD %g)" % (
                             st.get("optcompat.AdamW", {}).get("state_bytes_per_param", -1), sgd0, host_sgd0),
                         "**met**" if ok else "**not met**"))
    rows += gpu_targets(load_gpu())
    return rows


GPU_RESULT = os.path.join(RESULTS, "gpu", "gpu.json")  # written by benchmarks/gpu.py on a GPU machine


def load_gpu():
    if not os.path.exists(GPU_RESULT):
        return None
    with open(GPU_RESULT) as f:
        return json.load(f)


def gpu_targets(rec):
    """The GPU row(s): from ``benchmarks/gpu.py``'s result where one was made on a GPU."""
    target = "Keras 3 %s: optcompat.AdamW ≤ 1.2× torch.optim.AdamW(fused) on an H100"
    runs = [r for r in (rec or {}).get("runs", ()) if "section" in r and "cpu" not in r["device"]]
    if not runs:
        return [("–", "GPU, 1e8 parameters", target % "torch / jax", "not measured",
                 "no GPU machine for this run (`python benchmarks/gpu.py` on one)")]
    rows = []
    for run in runs:
        s, res = run["section"], run["section"]["results"]
        fused = res.get("torch.optim.AdamW(fused=True)")
        if not fused or "optcompat.AdamW" not in res:
            continue
        q = res["optcompat.AdamW"]["median"] / fused["median"]
        rows.append(("gpu (%s)" % run["device"],
                     "apply adamw, %s, %s parameters" % (s["mode"], "{:,}".format(s["params"])),
                     target % run["backend"], "%.2f (min %.2f)" % (q, res["optcompat.AdamW"]["min"] / fused["min"]),
                     ratio_status(q, 1.2)))
    return rows


def _median(recs, env, part, kind, mode, name):
    for r in recs:
        if r["env"] != env:
            continue
        for s in r["sections"]:
            if (s["part"], s["kind"], s["mode"]) == (part, kind, mode) and name in s["results"]:
                return s["results"][name]["median"]
    return None


def _host_of(names, kind):
    """The host's candidate for ``kind`` ("AdamW" / "SGD") among ``names``, or None."""
    return next((n for n in names if kind in n and not n.startswith("optcompat")), None)


def _hlo_pairs(rec):
    """(optcompat's name, the host's name, their ``part_hlo`` entries) where both were compiled."""
    hlo = rec.get("hlo") or {}
    for oc, kw in PAIRS:
        host = _host_of(hlo, kw)
        a, b = hlo.get(oc, {}), hlo.get(host, {})
        if "loops" in a and "loops" in b:
            yield oc, host, a, b


def _hlo_summary(recs):
    same = differ = bodies = compared = 0
    for r in recs:
        for _, _, a, b in _hlo_pairs(r):
            key = lambda d: (d["loops"], d["bytes_per_param"])  # noqa: E731
            same, differ = (same + 1, differ) if key(a) == key(b) else (same, differ + 1)
            if "loop_bodies" in a and "loop_bodies" in b:
                compared += 1
                bodies += a["loop_bodies"] == b["loop_bodies"]
    if not same + differ:
        return "– (not compared in this run)"
    text = "the same loops and array bytes in %d of %d comparisons" % (same, same + differ)
    if compared:
        text += ", and the same loop bodies, up to names, in %d of %d" % (bodies, compared)
    return text


def _aa_range(recs):
    aas = []
    for r in recs:
        for s in r["sections"]:
            host = s.get("host") or next((n[:-len(AGAIN)] for n in s["results"] if n.endswith(AGAIN)), None)
            if host:
                aa = aa_ratio(s["results"], host)
                if aa is not None:
                    aas.append(aa)
    return "%.3f-%.3f (%d groups)" % (min(aas), max(aas), len(aas)) if aas else "– (not measured)"


def _q(a, b):
    return "%.2f" % (a / b) if a and b else "–"


def notes(recs):
    """What explains the gaps, with this run's numbers (the text is fixed, the numbers are not)."""
    m = lambda *k: _median(recs, *k)  # noqa: E731
    t = lambda name: m("keras3-torch", "apply", "adamw", "eager", name)  # noqa: E731
    torch_oc, torch_fused, torch_host = t("optcompat.AdamW"), t("torch.optim.AdamW(fused=True)"), t("keras AdamW")
    torch_plain, torch_foreach = t("optcompat.AdamW fast_path=None"), t("optcompat.AdamW fast_path=foreach")
    ts = lambda name: m("keras3-torch", "apply", "sgdw", "eager", name)  # noqa: E731
    tf = {}
    for env, mode in (("tf215", "tf.function"), ("keras3-tf", "tf.function"), ("tf215", "xla"),
                      ("keras3-tf", "xla"), ("tf210", "tf.function"), ("tf210", "xla")):
        ref = m(env, "apply", "adamw", mode, "ResourceApplyAdam (fused, no decay)") or m(
            env, "apply", "adamw", mode, "legacy Adam (no decay)")
        tf[env, mode] = dict(oc=m(env, "apply", "adamw", mode, "optcompat.AdamW"), ref=ref,
                             scale=m(env, "apply", "adamw", mode, "tried: x(1-d) pass + ResourceApplyAdam"),
                             floor=m(env, "apply", "adamw", mode, FLOOR),
                             assign_sub=m(env, "apply", "adamw", mode,
                                          "tried: x d temporary, subtract + ResourceApplyAdam"),
                             cluster=m(env, "apply", "adamw", mode, "tried: decay + Adam in one nested XLA cluster"),
                             tfa=m(env, "apply", "adamw", mode, "TFA AdamW"))
    q = lambda env, mode, a: _q(tf[env, mode][a], tf[env, mode]["ref"])  # noqa: E731
    jax_oc = m("keras3-jax", "apply", "adamw", "jit", "optcompat.AdamW")
    jax_host = m("keras3-jax", "apply", "adamw", "jit", "keras AdamW")
    jax_rec = next((r for r in recs if r["env"] == "keras3-jax"), None)
    g = lambda ms: fmt(gbps({"bytes_per_param": 28, "params": _params_int(recs)}, ms) if ms else None, 1)  # noqa: E731
    L = ["## Where the time goes", "",
         "* **Keras 3 on torch.** Keras runs `update_step` per variable, a dozen eager ops each; so does "
         "optcompat's plain path (`fast_path=None`: %s× Keras's own `AdamW`). The default fast path updates "
         "all variables in one call of torch's fused AdamW kernel (`torch._fused_adamw_`), for the keras "
         "convention too: it is the torch form with `eps' = eps / sqrt(1 - b2^t)` each step. That kernel "
         "reads weight, gradient, m and v once and writes weight, m, v once (the 28-byte floor): %s× "
         "`torch.optim.AdamW(fused=True)` and %s× faster than Keras's own (`foreach`: %s× fused). The kernel "
         "rounds the decay as `x (1 - d)` with a float32 `1 - d`, as `torch.optim.AdamW` and Keras's own torch "
         "AdamW do: the decay applied is off by at most `3e-8 / d` of itself, the same way each step "
         "(%.2f%% at Keras's defaults, `d = 1e-3 * 4e-3`; "
         "`tests/test_fast_paths.py::test_decay_rounding_is_not_a_drift`). "
         "What is left over the bare kernel is Keras's `apply` (iteration counter, gradient filtering, "
         "one coefficient read per step). SGDW with momentum goes through torch's fused SGD kernel "
         "(`torch._fused_sgd_`, the keras momentum form as `dampening = 1 + lr`, `lr = -1`) after a one-pass "
         "decay: 8 + 20 bytes per parameter where Keras's own `SGD(weight_decay)` makes four foreach passes "
         "(40 bytes): %s× Keras's own (foreach: %s×); without momentum the decay is the kernel's own weight "
         "decay, which at momentum 0 is the decoupled one (one pass). Under `jit_compile=True` "
         "(`torch.compile`) dynamo cannot trace the fused kernels, so optcompat's step is the per-variable "
         "rule there, which inductor fuses as it fuses Keras's own `AdamW`: `fit` %s× Keras's own "
         "(eager `fit`: %s×)." % (
             _q(torch_plain, torch_host), _q(torch_oc, torch_fused), _q(torch_host, torch_oc),
             _q(torch_foreach, torch_fused), 100 * abs(_f32_decay_error(1e-3 * 4e-3)),
             _q(ts("optcompat.SGDW"), ts("keras SGD(weight_decay)")),
             _q(ts("optcompat.SGDW fast_path=foreach"), ts("keras SGD(weight_decay)")),
             _q(m("keras3-torch", "fit", "fit", "compile", "optcompat.AdamW"),
                m("keras3-torch", "fit", "fit", "compile", "keras AdamW")),
             _q(m("keras3-torch", "fit", "fit", "eager", "optcompat.AdamW"),
                m("keras3-torch", "fit", "fit", "eager", "keras AdamW"))),
         "* **TensorFlow, plain `tf.function` (Keras 3, Keras 2, OptimizerV2).** The fast path is the "
         "host's own fused kernels: `ResourceApplyAdam` (the rule term for term), after the decay. "
         "`ResourceApplyAdam` alone runs at the bandwidth floor (%s GB/s at %s parameters in tf215), and "
         "TensorFlow has no kernel with a decoupled decay in it, so the decay is a pass of its own, and "
         "the floor is two passes: the decay compiled by XLA (8 bytes per parameter) then the kernel, "
         "measured %s× / %s× the kernel without decay (tf215 / keras3-tf). `x - x d`, as Keras's own AdamW on "
         "TensorFlow rounds it, is one kernel, `ResourceApplyGradientDescent` with the weights as its delta "
         "(no temporary `x d`; TensorFlow copies the weights it reads and writes in one kernel): %s× / %s× "
         "the kernel without decay, %s× / %s× the two-pass floor; a multiply into a temporary and an "
         "in-place subtract, as it was before, %s× / %s×. Tried: (a) a one-pass `x (1 - d)` "
         "before the kernel, measured %s× / %s× -- it rounds differently from Keras's "
         "AdamW on TensorFlow, by more than the oracle tests allow (2e-6 over 40 steps), so only the torch "
         "convention, which rounds that way, uses it; (b) decay and Adam in one XLA cluster (a nested "
         "`jit_compile` function inside the plain one), %s× / %s× -- faster, but it compiles one cluster per "
         "variable shape on the first step, so it is not the default. Under XLA the decay fuses into the "
         "same loop: %s× / %s×." % (
             g(tf["tf215", "tf.function"]["ref"]), "{:,}".format(_params_int(recs)),
             q("tf215", "tf.function", "floor"), q("keras3-tf", "tf.function", "floor"),
             q("tf215", "tf.function", "oc"), q("keras3-tf", "tf.function", "oc"),
             _q(tf["tf215", "tf.function"]["oc"], tf["tf215", "tf.function"]["floor"]),
             _q(tf["keras3-tf", "tf.function"]["oc"], tf["keras3-tf", "tf.function"]["floor"]),
             q("tf215", "tf.function", "assign_sub"), q("keras3-tf", "tf.function", "assign_sub"),
             q("tf215", "tf.function", "scale"), q("keras3-tf", "tf.function", "scale"),
             q("tf215", "tf.function", "cluster"), q("keras3-tf", "tf.function", "cluster"),
             q("tf215", "xla", "oc"), q("keras3-tf", "xla", "oc")),
         "* **OptimizerV2 (tf210).** No host AdamW: TensorFlow Addons' `AdamW` is what its users had. "
         "optcompat runs the same kernels it does (the decay, then `ResourceApplyAdam`; SGDW through "
         "`ResourceApplyKerasMomentum` as TFA's `SGDW`), so the two are equal up to noise: %s× TFA "
         "(tf.function), %s× (XLA); `fast_path=None` rows show the plain rule op by op."
         % (_q(tf["tf210", "tf.function"]["oc"], tf["tf210", "tf.function"]["tfa"]),
                          _q(tf["tf210", "xla"]["oc"], tf["tf210", "xla"]["tfa"])),
         "* **jax.** `jax.jit` of `stateless_apply` fuses the rule into one loop per variable, as for "
         "Keras's own `AdamW`: %s vs %s GB/s at %s parameters, against %s GB/s for the numpy copy (one "
         "thread; XLA uses both cores, so it can pass it). The benchmark jits with arguments and results "
         "in the same order, as Keras's own train step does: donated buffers are paired with outputs in "
         "order, and `stateless_apply(optimizer_vars, grads, weights) -> (weights, optimizer_vars)` "
         "jitted as is makes XLA copy every buffer each step (an earlier run measured 16%% of copy "
         "bandwidth that way, for Keras's own `AdamW` as for optcompat's)." % (
             g(jax_oc), g(jax_host), "{:,}".format(_params_int(recs)), fmt(copy_gbps(jax_rec) if jax_rec else None, 1)),
         "* **Per-variable overhead on TensorFlow.** 1000 variables of 1k elements take %s× the host's "
         "time (tf215), %s× (keras3-tf), %s× (tf210, vs TFA), where 1 x 1M takes %s× / %s× / %s×. The "
         "kernels cost per variable what Keras's op-by-op update costs (%s vs %s µs at 100 elements in "
         "tf215; %s vs %s at 100k; table below); what decides small variables is the bookkeeping around "
         "them. optcompat builds the step's coefficients (learning-rate cast, step, beta powers, decay) "
         "once per step and dtype -- OptimizerV2 in `_prepare_local`, Keras 3 / Keras 2 in a per-`apply` "
         "scope inside `tf.function` (`optcompat/_tf_fast.py`, `step_scope`) -- not per variable; the "
         "plain path (`fast_path=None`, coefficients per variable) shows the difference: %s× / %s× the host." % (
             _tq(recs, "tf215", "1000 x 1k"), _tq(recs, "keras3-tf", "1000 x 1k"), _tq(recs, "tf210", "1000 x 1k"),
             _tq(recs, "tf215", "1 x 1M"), _tq(recs, "keras3-tf", "1 x 1M"), _tq(recs, "tf210", "1 x 1M"),
             _pc(recs, "100"), _pc(recs, "100", "op by op"), _pc(recs, "100000"), _pc(recs, "100000", "op by op"),
             _tq(recs, "tf215", "1000 x 1k", "optcompat.AdamW fast_path=None"),
             _tq(recs, "keras3-tf", "1000 x 1k", "optcompat.AdamW fast_path=None")),
         "* **Per-variable overhead on torch.** One fused call covers every variable, however small "
         "(1000 x 1k: %s× Keras's own `AdamW`); what remains over `torch.optim.AdamW(fused=True)` (%s×) is "
         "Keras's per-variable work in `apply` and the grouping of variables by dtype and decay." % (
             _tq(recs, "keras3-torch", "1000 x 1k"),
             _tq(recs, "keras3-torch", "1000 x 1k", None, "torch.optim.AdamW(fused=True)")),
         "* **XLA / `jax.jit` ratios near 1** are the expectation: the compiler fuses either rule into "
         "the same loops -- the optimized HLO of optcompat's step and of the host's have %s (targets: "
         "\"compiled step\" rows; XLA splits AdamW into three loops per variable, m, v, then the weight, "
         "for both).  The loop bodies (each loop's computation, names aside) are the same on jax; under "
         "TensorFlow's XLA they differ in scalars only: optcompat's AdamW there is TensorFlow's "
         "`ResourceApplyAdam`, whose lowering forms 1 - beta in float32 (0.000999987 where Keras folds 0.001), "
         "and where a scalar coefficient is formed (in the loop or before it).  Differences of a few per "
         "cent are noise on this 2-core machine: the A/A controls "
         "(the host against itself) of this run range over %s." % (_hlo_summary(recs), _aa_range(recs)), ""]
    return L


def _f32_decay_error(d):
    """Relative error of the decay when ``1 - d`` is rounded to float32: ``(1 - f32(1 - d)) / d - 1``."""
    f = struct.unpack("f", struct.pack("f", 1.0 - d))[0]
    return (1.0 - f) / d - 1.0


def _pc(recs, size, name="decay pass + ResourceApplyAdam", env="tf215"):
    """µs per variable of a per_call row (``size`` elements), or '–'."""
    for r in recs:
        for s in r["sections"]:
            if r["env"] == env and s["part"] == "per_call" and s["label"].endswith(" x " + size):
                return "%.0f" % (s["results"][name]["median"] * 1e3 / s["tensors"])
    return "–"


def _tq(recs, env, label, name=None, versus=None):
    """``name`` (default: optcompat's) / ``versus`` (default: the host) median of a tensors row."""
    for r in recs:
        for s in r["sections"]:
            if r["env"] == env and s["part"] == "tensors" and s["label"] == label:
                names = list(s["results"])
                a, b = name or names[0], versus or names[1]
                if a not in s["results"] or b not in s["results"]:
                    return "–"
                return _q(s["results"][a]["median"], s["results"][b]["median"])
    return "–"


def _params_int(recs):
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "apply":
                return s["params"]
    return 10 ** 7


def render(recs, command, when):
    L = ["# Benchmarks", "",
         "Generated by `%s` on %s by `benchmarks/run.py` from `benchmarks/results/*.json` -- do not edit "
         "by hand." % (command, when), "",
         "Every table is one interleaved run: the candidates of a row group take turns (ABAB..., the "
         "order reversed every other repetition, warm-up steps excluded), each sample the mean of a few "
         "steps; **min** and **median** ms/step over the repetitions.  Ratios are of medians (mins in "
         "parentheses).  GB/s counts the bytes a step must move at least: 28 per float32 parameter for "
         "AdamW (read weight, gradient, m, v; write weight, m, v), 20 for SGD with momentum.  Each group "
         "also runs the host's own optimizer a second time (`(again)`, the A/A control): its ratio to the "
         "first shows how far two equal programs stray in the run.  A target ratio above 1.00 counts as "
         "equal within noise when it is ≤ 1.05 and the 95% interval of the per-round ratio (optcompat's "
         "sample over the host's from the same interleaved round; distribution-free, from order "
         "statistics) holds 1.00.", ""]
    if not recs:
        return "\n".join(L + ["No results."])
    m = recs[0]["machine"]
    L += ["## Machine", "", "| | |", "|---|---|",
          "| CPU | %s |" % m["cpu"], "| cores (nproc) | %s |" % m["nproc"], "| memory | %s GiB |" % m["mem_GiB"],
          "| OS | %s |" % m["platform"], ""]
    L += ["Load averages (1/5/15 min) are recorded per env: on this shared 2-core machine other jobs may "
          "run meanwhile; interleaving and medians are what keeps ratios fair, absolute times are noisy.", "",
          "| env | host | Python | versions | measured | load at start | load at end | wall |",
          "|---|---|---|---|---|---|---|---|"]
    for r in recs:
        v = {k: x for k, x in r["describe"]["versions"].items() if x}
        L.append("| %s | %s | %s | %s | %s | %s | %s | %.0f s |" % (
            r["env"], r["label"], r["machine"]["python"], ", ".join("%s %s" % kv for kv in v.items()),
            r.get("started", "–"),
            " / ".join("%.2f" % x for x in r["machine"]["loadavg"]),
            " / ".join("%.2f" % x for x in r["machine"].get("loadavg_end", [0, 0, 0])), r.get("wall_s", 0)))
    L += ["", "optcompat %s.  Families: Keras 3 (keras3-*), Keras 2 (tf215), OptimizerV2 (tf210: no host "
          "AdamW there, so TensorFlow Addons' `AdamW` / `SGDW` are the host column and the legacy `Adam` "
          "the no-decay yardstick)." % recs[0]["describe"]["optcompat"], ""]
    L += ["## Copy bandwidth (the floor's yardstick)", "",
          "| env | copy | best GB/s | median GB/s |", "|---|---|---|---|"]
    for r in recs:
        for k, v in (r.get("bandwidth") or {}).items():
            L.append("| %s | %s | %.1f | %.1f |" % (r["env"], k, v["best_GBps"], v["median_GBps"]))
    L += ["", "## Targets", "", "| env | case | target | measured | status |", "|---|---|---|---|---|"]
    L += ["| %s |" % " | ".join(row) for row in targets(recs)]
    L += [""] + notes(recs)
    L += ["## Isolated optimizer step (`apply` / `apply_gradients`, %s parameters in 4 float32 tensors)"
          % _params(recs), ""]
    for r in recs:
        for s in r["sections"]:
            if s["part"] != "apply":
                continue
            L += _table(r, s, "%s -- %s, %s (%d steps x %d reps)"
                        % (r["env"], s["kind"], s["mode"], s["steps"], s["reps"]))
    L += ["## `model.fit` where the optimizer dominates", "",
          "Dense 1024-2048-2048-10 (%s parameters), batch 4, one `fit` epoch per sample.  `SGD lr=0` is "
          "the forward + backward + loop floor." % _fit_params(recs), ""]
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "fit":
                L += _table(r, s, "%s -- fit, %s (%d steps x %d reps)" % (r["env"], s["mode"], s["steps"], s["reps"]))
    L += ["## Scaling with the parameter count (AdamW, 4 tensors)", ""]
    for r in recs:
        secs = [s for s in r["sections"] if s["part"] == "scaling"]
        if not secs:
            continue
        names = list(secs[0]["results"])
        L += ["%s, %s: median ms/step (GB/s)" % (r["env"], secs[0]["mode"]), "",
              "| params | " + " | ".join(names) + " | optcompat / host |", "|---" * (len(names) + 2) + "|"]
        for s in secs:
            res = s["results"]
            L.append("| %s | %s | %.2f |" % ("{:,}".format(s["params"]), " | ".join(
                "%s (%s)" % (fmt(res[n]["median"], 3), fmt(gbps(s, res[n]["median"]), 1)) for n in names),
                res[names[0]]["median"] / res[names[1]]["median"]))
        L.append("")
    L += ["## Many small tensors vs few large (1M AdamW parameters)", "",
          "| env | layout | " + "candidates: median ms/step (min) |", "|---|---|---|"]
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "tensors":
                L.append("| %s | %s | %s |" % (r["env"], s["label"], "; ".join(
                    "%s %.2f (%.2f)" % (n, v["median"], v["min"]) for n, v in s["results"].items())))
    L += ["", "## Per-variable cost on TensorFlow (plain `tf.function`)", "",
          "What one variable costs per step, by its size: the fast path's kernels (decay pass + "
          "`ResourceApplyAdam`) against the rule op by op (Keras's own form), step coefficients shared, "
          "interleaved.", "",
          "| env | variables x elements | kernels µs/variable | op by op µs/variable | kernels / op by op |",
          "|---|---|---|---|---|"]
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "per_call":
                a, b = (s["results"][k]["median"] * 1e3 / s["tensors"] for k in (
                    "decay pass + ResourceApplyAdam", "op by op"))
                L.append("| %s | %s | %.1f | %.1f | %.2f |" % (r["env"], s["label"], a, b, a / b))
    L += ["", "## First step (build + trace/compile + one step, 1M parameters) and import time", "",
          "| env | what | min ms | median ms |", "|---|---|---|---|"]
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "first_step":
                for n, v in s["results"].items():
                    L.append("| %s | first step %s: %s | %.0f | %.0f |"
                             % (r["env"], s["mode"], n, v["min"], v["median"]))
        for n, v in (r.get("import") or {}).items():
            L.append("| %s | %s | %.3g | %.3g |" % (r["env"], n, v["min"], v["median"]))
    L += ["", "## Memory", "",
          "Optimizer state (bytes per parameter, counted from the optimizer's variables), and peak RSS "
          "growth on %s parameters: while building the optimizer and taking its first step (fresh "
          "variables, trace / compile included), and during the 5 steps after it (the memory a step "
          "takes; the target).  Peaks are reset through `/proc/self/clear_refs`; each figure is the least "
          "of 3 subprocesses per candidate, all 3 listed: the allocator moves single runs by tens of MB.  "
          "On jax, XLA's own peak for the jitted step (`memory_analysis()`: arguments + outputs - donated "
          "buffers + temporaries) does not depend on the allocator." % _params(recs), "",
          "| env | optimizer | state B/param | build + 1st step MB (samples) | steps 2-6 MB (samples) "
          "| XLA step peak MB |",
          "|---|---|---|---|---|---|"]
    for r in recs:
        mem = r.get("memory") or {}
        for n, v in (r.get("state") or {}).items():
            g = mem.get(n, {})
            cell = lambda key: "%s (%s)" % (fmt(g.get(key), 0), ", ".join(  # noqa: E731
                "%.0f" % x for x in g.get(key.replace("_MB", "_samples_MB"), ()))) if key in g else "–"
            L.append("| %s | %s | %g | %s | %s | %s |" % (r["env"], n, v["state_bytes_per_param"],
                                                         cell("peak_growth_MB"), cell("step_peak_growth_MB"),
                                                         fmt(g.get("xla_peak_MB"), 1)))
    L += ["", "![benchmarks](benchmarks.png)", ""]
    return "\n".join(L)


def _params(recs):
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "apply":
                return "{:,}".format(s["params"])
    return "?"


def _fit_params(recs):
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "fit":
                return "{:,}".format(s["params"])
    return "?"


def _table(rec, s, title):
    res = s["results"]
    hosts = [n for n in res if not n.startswith("optcompat")]
    L = [title, "", "| candidate | min ms | median ms | GB/s (min) | vs %s |" % (hosts[0] if hosts else "?"),
         "|---|---|---|---|---|"]
    for n, v in res.items():
        q = v["median"] / res[hosts[0]]["median"] if hosts else None
        L.append("| %s | %.2f | %.2f | %s | %s |" % (n, v["min"], v["median"], fmt(gbps(s, v["min"]), 1),
                                                     fmt(q, 3)))
    return L + [""]


def ensure_plotter():
    if not os.path.exists(BOOT_PYTHON):
        subprocess.check_call([os.path.join(ROOT, "ci", "tox"), "--version"], stdout=subprocess.DEVNULL)
    if subprocess.call([BOOT_PYTHON, "-c", "import matplotlib"], stderr=subprocess.DEVNULL) != 0:
        print("bench: installing matplotlib into .tox-bootstrap", flush=True)
        subprocess.check_call([BOOT_PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check", "matplotlib"])
    return BOOT_PYTHON


def plot(png):
    """Runs in the bootstrap venv (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = load()
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    # (a) isolated AdamW step per env and mode
    ax = axes[0][0]
    labels, series = [], {}
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "apply" and s["kind"] == "adamw":
                labels.append("%s\n%s" % (r["env"], s["mode"]))
                for n, v in s["results"].items():
                    key = "optcompat" if n in ("optcompat.AdamW", "optcompat.SGDW") else (
                        "host AdamW" if n == s.get("host") else n)
                    series.setdefault(key, {})[len(labels) - 1] = v["median"]
    width = 0.8 / max(1, len(series))
    for i, (name, vals) in enumerate(series.items()):
        xs = sorted(vals)
        ax.bar([x + i * width for x in xs], [vals[x] for x in xs], width, label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))])
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("median ms / step")
    ax.set_yscale("log")
    ax.set_title("AdamW step, %s params (lower is better)" % _params(recs))
    ax.legend(fontsize=7)
    # (b) scaling: achieved GB/s
    ax = axes[0][1]
    for r in recs:
        secs = [s for s in r["sections"] if s["part"] == "scaling"]
        if not secs:
            continue
        for n in secs[0]["results"]:
            style = "-" if n.startswith("optcompat") else ("--" if not n.startswith("torch") else ":")
            ax.plot([s["params"] for s in secs], [gbps(s, s["results"][n]["median"]) for s in secs], style,
                    marker="o", ms=3, label="%s: %s" % (r["env"], n))
        if copy_gbps(r):
            ax.axhline(copy_gbps(r), color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (4 tensors)")
    ax.set_ylabel("achieved GB/s (28 B/param / median step time)")
    ax.set_title("Scaling (gray: numpy copy bandwidth)")
    ax.legend(fontsize=6)
    # (c) many small vs few large
    ax = axes[1][0]
    labels, vals = [], []
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "tensors":
                for n, v in s["results"].items():
                    labels.append("%s %s\n%s" % (r["env"], s["label"], n))
                    vals.append(v["median"])
    ax.barh(range(len(vals)), vals)
    ax.set_yticks(range(len(vals)))
    ax.set_yticklabels(labels, fontsize=5)
    ax.set_xscale("log")
    ax.set_xlabel("median ms / step (1M params)")
    ax.set_title("Per-variable overhead: 1000 x 1k vs 1 x 1M")
    # (d) fit
    ax = axes[1][1]
    labels, vals, colors = [], [], []
    for r in recs:
        for s in r["sections"]:
            if s["part"] == "fit":
                for n, v in s["results"].items():
                    labels.append("%s %s: %s" % (r["env"], s["mode"], n))
                    vals.append(v["median"])
                    colors.append("C0" if n.startswith("optcompat") else "C1")
    ax.barh(range(len(vals)), vals, color=colors)
    ax.set_yticks(range(len(vals)))
    ax.set_yticklabels(labels, fontsize=5)
    ax.set_xlabel("median ms / step")
    ax.set_title("model.fit, batch 4 (blue: optcompat)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plot_summary(recs, os.path.join(os.path.dirname(png), "step-time.png"))


def plot_summary(recs, png):
    """The home page's picture (docs/step-time.png): optcompat's median step time against each
    host's own optimizer, env by env, for AdamW and SGDW (the isolated step and model.fit)."""
    import matplotlib.pyplot as plt

    panels = [("apply", "adamw", "AdamW step, %s params" % _params(recs)),
              ("apply", "sgdw", "SGDW step, %s params" % _params(recs)),
              ("fit", None, "model.fit with AdamW, per step")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 13))
    for ax, (part, kind, title) in zip(axes, panels):
        rows = []
        for r in recs:
            for s in r["sections"]:
                if s["part"] != part or (kind and s.get("kind") != kind):
                    continue
                ours = "optcompat.AdamW" if kind != "sgdw" else "optcompat.SGDW"
                host = s.get("host") or next((n for n in s["results"] if not n.startswith(("optcompat", "SGD lr=0"))
                                              and "SGD" not in n and "(again)" not in n), None)
                if ours in s["results"] and host in s["results"]:
                    rows.append(("%s, %s\nvs %s" % (r["env"], s["mode"], host), s["results"][ours]["median"],
                                 s["results"][host]["median"]))
        ys = list(range(len(rows)))[::-1]
        ax.barh([y + 0.2 for y in ys], [o for _, o, _ in rows], 0.4, color="C0", label="optcompat")
        ax.barh([y - 0.2 for y in ys], [h for _, _, h in rows], 0.4, color="C7", label="the host's own")
        for y, (_, o, h) in zip(ys, rows):
            ax.text(max(o, h) * 1.02, y, "%.2fx" % (o / h), va="center", fontsize=8,
                    color="C2" if o <= h * 1.05 else "C3")
        ax.set_yticks(ys)
        ax.set_yticklabels([label for label, _, _ in rows], fontsize=7)
        ax.set_xlabel("median ms per step (lower is better; label: optcompat / host)")
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, max([max(o, h) for _, o, h in rows] or [1]) * 1.25)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Step time: optcompat against each host's own optimizer", fontsize=12)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def write_report(command):
    recs = load()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    os.makedirs(DOCS, exist_ok=True)
    with open(os.path.join(DOCS, "benchmarks.md"), "w") as f:
        f.write(render(recs, command, when))
    png = os.path.join(DOCS, "benchmarks.png")
    try:
        rc = subprocess.call([ensure_plotter(), os.path.abspath(__file__), "--plot", png])
    except (OSError, subprocess.CalledProcessError) as e:
        print("bench: could not plot: %s" % e, file=sys.stderr)
        rc = 1
    print("bench: wrote docs/benchmarks.md%s" % (", docs/benchmarks.png and docs/step-time.png" if rc == 0 else ""),
          flush=True)
    for row in targets(recs):
        print("target: %-12s %-40s %-60s %-28s %s" % row)
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")
    ap.add_argument("--envs", default=",".join(ENVS), help="comma-separated tox envs (%(default)s)")
    ap.add_argument("--params", type=float, default=1e7, help="parameters of the isolated step")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--plot", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.plot:
        return plot(args.plot)
    command = "python benchmarks/run.py" + " ".join([""] + [a for a in (argv or sys.argv[1:])])
    rc = 0
    if not args.report_only:
        for env in args.envs.split(","):
            rc |= run_env(env, args.quick, int(args.params))
    rc |= write_report(command.strip())
    return rc


if __name__ == "__main__":
    sys.exit(main())
