"""The GPU leg: Keras 3 AdamW steps on one GPU against ``torch.optim.AdamW(fused=True)``.

    python benchmarks/gpu.py [--params 1e8] [--tensors 4]    (writes benchmarks/results/gpu/gpu.json)

Needs a Python with Keras 3, CUDA torch and (for the jax row) CUDA JAX; no TensorFlow, no
tox.  One child process per Keras backend (Keras fixes its backend at import): on torch,
``optcompat.AdamW`` (its fused fast path), Keras's own ``AdamW`` and ``torch.optim.AdamW``
foreach / fused; on jax, ``optcompat.AdamW`` and Keras's ``AdamW`` under ``jax.jit`` (the
benchmark's jitted ``stateless_apply``, buffers donated) with ``torch.optim.AdamW(fused=True)``
in the same process, so every ratio is from one interleaved run.  Also the device's copy
bandwidth (``dst.copy_(src)``, 400 MB), the yardstick for GB/s.  ``benchmarks/run.py`` puts the
result in the GPU row of ``docs/benchmarks.md``'s targets.  Without a GPU it stops, unless
``--allow-cpu`` (a dry run of this script itself on a small ``--params``).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402  (the timing, hosts and candidates of the CPU benchmarks)


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _version(dist):
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _device_name(backend):
    if backend == "torch":
        torch = _torch_cuda()
        return torch.cuda.get_device_name(0) if torch else None
    import jax

    d = jax.devices()[0]
    return getattr(d, "device_kind", str(d)) if d.platform == "gpu" else None


def copy_bandwidth(torch, reps=20, n=100_000_000):
    src = torch.ones(n, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return {"torch copy_ %dM float32" % (n // 1_000_000): {"best_GBps": 2 * src.nbytes / min(ts) / 1e9}}


def child(params, tensors, steps, reps, allow_cpu):
    host = bench.Keras3Host()
    backend = host.backend
    name = _device_name(backend)
    if name is None and not allow_cpu:
        print(json.dumps({"backend": backend, "skipped": "no GPU visible to Keras's %s backend" % backend}))
        return
    import keras

    values = bench.arrays(bench.shapes_for(params, tensors), 0)
    grad_values = bench.arrays(bench.shapes_for(params, tensors), 1)
    grads = host.tensors(grad_values)
    mode = "jit" if backend == "jax" else "eager"
    setups = {n: host.stepper(make, values, grads, mode) for n, make in host.optimizers("adamw").items()}
    torch = _torch_cuda()
    device = "cuda" if torch else "cpu"
    hows = ("foreach", "fused") if backend == "torch" else ("fused",)
    if torch or (allow_cpu and _version("torch")):
        for how in hows:
            setups["torch.optim.AdamW(%s=True)" % how] = bench.torch_optim(values, grad_values, "AdamW", how, device)
    res = bench.interleave(setups, steps, reps)
    out = {"backend": backend, "device": name or "cpu (dry run)", "keras": keras.__version__,
           "versions": {m: _version(m) for m in ("torch", "jax", "jaxlib")},
           "section": dict(part="apply", kind="adamw", mode=mode, params=params, tensors=tensors, steps=steps,
                           reps=reps, bytes_per_param=bench.BYTES["adamw"], results=res, host="keras AdamW")}
    if torch:
        out["bandwidth"] = copy_bandwidth(torch)
    print(json.dumps(out, default=str))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="default: benchmarks/results/gpu/gpu.json (a dry run writes only with --out)")
    ap.add_argument("--params", type=float, default=1e8)
    ap.add_argument("--tensors", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--backends", default="torch,jax")
    ap.add_argument("--allow-cpu", action="store_true", help="run without a GPU (a dry run of the script)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(int(args.params), args.tensors, args.steps, args.reps, args.allow_cpu)
    record = {"machine": {"platform": platform.platform(), "python": platform.python_version()},
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": []}
    for backend in args.backends.split(","):
        # JAX takes 75% of the GPU at start by default: the torch tensors beside it need room.
        env = dict(os.environ, KERAS_BACKEND=backend, XLA_PYTHON_CLIENT_PREALLOCATE="false")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--params", str(args.params),
               "--tensors", str(args.tensors), "--steps", str(args.steps), "--reps", str(args.reps)]
        r = subprocess.run(cmd + (["--allow-cpu"] if args.allow_cpu else []), env=env,
                           capture_output=True, text=True)
        try:
            run = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            run = {"backend": backend, "error": (r.stderr or r.stdout)[-2000:]}
        record["runs"].append(run)
        print(json.dumps(summary(run)), flush=True)
    out = args.out or (None if args.allow_cpu else os.path.join(HERE, "results", "gpu", "gpu.json"))
    if out and any("section" in r for r in record["runs"]):  # a run without any result keeps the last file
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(json.dumps(record, indent=1, default=str))
    return 0 if all("section" in r for r in record["runs"]) else 1


def summary(run):
    """The run's medians (ms/step) and its ratios against ``torch.optim.AdamW(fused=True)``."""
    if "section" not in run:
        return run
    res = run["section"]["results"]
    fused = res.get("torch.optim.AdamW(fused=True)", {}).get("median")
    return {"backend": run["backend"], "device": run["device"],
            "median_ms": {n: round(v["median"], 3) for n, v in res.items()},
            "vs_torch_fused": {n: round(v["median"] / fused, 3) for n, v in res.items()} if fused else None}


if __name__ == "__main__":
    sys.exit(main())
