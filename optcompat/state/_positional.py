"""Reading optimizer state from the files that list it by position: ``.keras`` (Keras 3, and
Keras 2 from TF 2.13), ``.h5`` models (every family) and ``.weights.h5`` (Keras 3).

Such a file keeps the optimizer's variables as a list (``.keras`` / ``.weights.h5``:
``optimizer/vars/0``, ``1``, ...; ``.h5``: ``optimizer_weights``, in the order of its
``weight_names`` attribute), and what each entry is follows from the family that wrote it:

===========  ========================================================================
family       list
===========  ========================================================================
``keras3``   ``iteration``, ``learning_rate`` (a float rate only), then Adam's
             ``m0, v0, m1, v1, ...`` and ``vhat0, vhat1, ...`` (amsgrad); SGD's momentum
             per variable only with momentum
``keras2``   ``iteration``, then Adam's ``m0, v0, m1, v1, ...``, ``vhat0, ...``; SGD's
             ``m`` per variable, with momentum 0 too
``legacy``   ``iter``, then every variable's ``m``, every ``v``, every ``vhat``; SGD's
             ``momentum`` per variable only with momentum
===========  ========================================================================

(optcompat's optimizers write the host's own list in every family.)  The optimizer's class
and configuration come from the file where it has them (``.keras``'s ``config.json``,
``.h5``'s ``training_config``); a ``.weights.h5`` has none, so the optimizer it goes into
(``load``'s) says.  The variables' shapes come from their slots; their names and values are
not read (restore the weights with Keras, or use ``state.save``'s file).  Needs ``h5py``
(which Keras and TensorFlow install).
"""

import io
import json
import zipfile

import numpy as np

from . import _format
from ._format import KINDS
from ._format import StateError

# per-variable lists this reader does not place
_EXTRA = (
    "use_ema",
    "gradient_accumulation_steps",
)


def knows(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return "model.weights.h5" in z.namelist()
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _h5py(path):
    try:
        import h5py
    except ImportError:
        raise StateError(
            "%s is an HDF5 file: reading it needs h5py (Keras and TensorFlow install it)."
            % path
        )
    return h5py


def read(path, optimizer=None, variables=None):
    if zipfile.is_zipfile(path):
        return _keras_file(path, optimizer, variables)
    h5py = _h5py(path)
    with h5py.File(path, "r") as f:
        if "optimizer_weights" in f:
            return _h5_model(path, f, optimizer, variables)
        if "optimizer" in f and "vars" in f["optimizer"]:
            return _decode(
                path, _vars(f["optimizer"]["vars"]), None, None, optimizer, variables
            )
    raise StateError(
        "%s holds no optimizer state (it was saved without the optimizer, or with a format that "
        "drops it: the README's deviations table lists them)." % path
    )


def _vars(group):
    return [np.asarray(group[str(i)]) for i in range(len(group.keys()))]


def keras_archive(path):
    """``(config or None, metadata, the weights file as a BytesIO)`` of a ``.keras`` archive:
    its ``config.json``, ``metadata.json`` (``{}`` where absent) and ``model.weights.h5``."""
    with zipfile.ZipFile(path) as z:
        listing = z.namelist()
        config = (
            json.loads(z.read("config.json").decode("utf-8"))
            if "config.json" in listing
            else None
        )
        meta = (
            json.loads(z.read("metadata.json").decode("utf-8"))
            if "metadata.json" in listing
            else {}
        )
        return config, meta, io.BytesIO(z.read("model.weights.h5"))


def _keras_file(path, optimizer, variables):
    config, meta, weights = keras_archive(path)
    h5py = _h5py(path)
    with h5py.File(weights, "r") as f:
        if "optimizer" not in f or "vars" not in f["optimizer"]:
            raise StateError(
                "%s holds no optimizer state (saved without an optimizer, or one the format cannot "
                "keep)." % path
            )
        arrays = _vars(f["optimizer"]["vars"])
    opt_config = ((config or {}).get("compile_config") or {}).get("optimizer")
    family = (
        "keras3" if str(meta.get("keras_version", "3")).startswith("3") else "keras2"
    )
    return _decode(path, arrays, opt_config, family, optimizer, variables)


def _h5_model(path, f, optimizer, variables):
    group = f["optimizer_weights"]
    names = h5_strings(group)
    arrays = [np.asarray(group[n]) for n in names]
    training = f.attrs.get("training_config")
    opt_config = None
    if training is not None:
        opt_config = json.loads(h5_text(training)).get("optimizer_config")
    version = h5_text(f.attrs.get("keras_version", b""))
    first = names[0].rsplit("/", 1)[-1] if names else ""
    if version.startswith("3"):
        family = "keras3"
    elif first.startswith("iter:") or first == "iter":
        family = "legacy"
    else:
        family = "keras2"
    header, slots, values = _decode(
        path, arrays, opt_config, family, optimizer, variables
    )
    # its names say which variable: "Adam/dense/kernel/m:0"
    if family == "legacy" and header["slots"]:
        key = header["slots"][0]
        n = len(header["variables"])
        for spec, name in zip(header["variables"], names[1 : 1 + n]):
            spec["name"] = _legacy_variable(name, key)
    return header, slots, values


def h5_strings(group, attribute="weight_names"):
    """The strings of an HDF5 group's list attribute (``weight_names``, ``layer_names``), which
    Keras splits into ``weight_names0``, ``weight_names1``, ... when it is large."""
    chunks = [k for k in group.attrs if k.startswith(attribute)]
    out = []
    for key in sorted(chunks, key=lambda k: int(k[len(attribute) :] or 0)):
        out += [h5_text(n) for n in group.attrs[key]]
    return out


def h5_text(value):
    """An HDF5 attribute's string (h5py gives ``bytes`` or ``str`` by release)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _legacy_variable(name, key):
    """``dense/kernel`` from ``Adam/dense/kernel/m:0`` (the prefix is the optimizer's name)."""
    name = name.rsplit(":", 1)[0]
    suffix = "/" + key
    name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name.split("/", 1)[1] if "/" in name else name


def _class_and_config(opt_config):
    if not opt_config:
        return None, {}
    name = opt_config.get("class_name") or ""
    return name.split(">")[-1], opt_config.get("config") or {}


def _decode(path, arrays, opt_config, family, optimizer, variables):
    """The positional list ``arrays`` as (header, slots, values)."""
    from . import _access

    name, config = _class_and_config(opt_config)
    if name:
        kind = {"Adam": "adam", "AdamW": "adam", "SGD": "sgd", "SGDW": "sgd"}.get(name)
        if kind is None:
            raise StateError(
                "%s holds the state of %s: optcompat.state reads Adam / AdamW / SGD / SGDW."
                % (path, opt_config.get("class_name"))
            )
        registered = opt_config.get("class_name") or ""
        prefix = registered.split(">")[0] if ">" in registered else ""
        convention = config.get("convention") or (
            "tfa"
            if prefix == "Addons"
            else "keras-adamw"
            if "weight_decays" in config
            else "keras"
        )
        slots = list(KINDS[kind]) if kind == "adam" else ["momentum"]
        if kind == "adam" and not config.get("amsgrad"):
            slots.remove("vhat")
        if kind == "sgd" and not float(config.get("momentum") or 0.0) > 0.0:
            slots = []
        float_rate = not isinstance(config.get("learning_rate"), dict)
        described = "%s (%s)" % (opt_config.get("class_name"), path.rsplit("/", 1)[-1])
    elif optimizer is not None:
        _, info = _access.describe(optimizer)
        kind, slots, convention = info["kind"], list(info["slots"]), None
        float_rate = not isinstance(info["hyperparameters"].get("learning_rate"), dict)
        described = "unknown (a .weights.h5 does not record the class)"
    else:
        raise StateError(
            "%s does not say which optimizer wrote it (a .weights.h5): load it into one "
            "(state.load), or read the .keras file." % path
        )
    if any(config.get(k) for k in _EXTRA):
        raise StateError(
            "%s holds per-variable state of %s besides the slots: load it with Keras "
            "(load_model / load_weights), then state.save(...) the optimizer."
            % (path, ", ".join(k for k in _EXTRA if config.get(k)))
        )
    if family is None:  # .weights.h5: Keras 3's
        family = "keras3"
    if not arrays:
        raise StateError("%s holds no optimizer variables." % path)
    # the scalars in front: the step, and in Keras 3 a float rate and (optcompat's on JAX, in
    # an .h5, which lists `optimizer.variables` as they are) its weight_decay variable
    head = 1
    while (
        family == "keras3"
        and head < min(3, len(arrays))
        and np.ndim(arrays[head]) == 0
        and np.issubdtype(arrays[head].dtype, np.floating)
    ):
        head += 1
    iterations = int(np.asarray(arrays[0]).ravel()[0])
    rest = arrays[head:]
    # Keras 2 SGD: m always
    stored = slots if not (kind == "sgd" and family == "keras2") else ["momentum"]
    per = len(stored)
    if per == 0:
        n, columns = 0, {}
    else:
        if len(rest) % per:
            raise StateError(
                "%s lists %d optimizer variables after the step count: not a whole number of %s "
                "per model variable. Not a file of this optimizer?"
                % (path, len(rest), stored)
            )
        n = len(rest) // per
        columns = _columns(rest, stored, n, family)
    if variables is not None and per and n != len(variables):
        raise StateError(
            "%s holds state for %d variables, but %d were given (a file of another model?)."
            % (path, n, len(variables))
        )
    for i in range(n):
        shapes = {k: columns[k][i].shape for k in stored}
        if len(set(shapes.values())) != 1:
            raise StateError(
                "%s: the slots of variable %d have different shapes %s (not a file of "
                "this optimizer kind?)." % (path, i, shapes)
            )
    keep = [k for k in stored if k in slots]
    per_variable = [{k: columns[k][i] for k in keep} for i in range(n)]
    specs = [
        {
            "name": None,
            "shape": list(columns[stored[0]][i].shape),
            "dtype": columns[stored[0]][i].dtype.name,
        }
        for i in range(n)
    ]
    hypers = {k: config[k] for k in _access.HYPERPARAMETERS if k in config}
    if head >= 2 and float_rate and "learning_rate" not in hypers:
        hypers["learning_rate"] = float(arrays[1])
    header = _format.header(
        _format.described(kind, described, family, convention, hypers, keep),
        iterations=iterations,
        variables=specs,
        source=path,
    )
    return header, per_variable, [None] * n


def _columns(rest, stored, n, family):
    """Each slot's list of arrays, by the family's order (the table above)."""
    if family == "legacy":  # key by key
        return {k: rest[j * n : (j + 1) * n] for j, k in enumerate(stored)}
    pairs = [
        k for k in stored if k != "vhat"
    ]  # Keras 2 / 3: m, v variable by variable, then vhat
    columns = {k: rest[j : len(pairs) * n : len(pairs)] for j, k in enumerate(pairs)}
    if "vhat" in stored:
        columns["vhat"] = rest[len(pairs) * n :]
    return columns
