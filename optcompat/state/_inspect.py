"""What ``python -m optcompat.state inspect`` adds to a host file's state: the file's format,
the versions it records and the names of the variables the state belongs to, where the file
has them (the readers in :mod:`._files` / :mod:`._positional` take only what ``load`` needs).

* ``.keras`` (Keras 3, Keras 2 from TF 2.13): ``metadata.json`` has ``keras_version`` and
  ``date_saved``; ``model.weights.h5`` keeps each layer's variables as ``layers/<group>/vars/<i>``,
  the groups named by layer class (``dense``, ``dense_1``, ... in the model's order; Keras 3 also
  stores the layer's name), so ``config.json``'s layer list gives their order and names:
  ``head/vars/0`` (Keras 2.13-2.14: ``_layer_checkpoint_dependencies/<group>/vars/<i>``).
* ``.h5`` models: the ``keras_version`` and ``backend`` attributes, and ``model_weights``'
  ``layer_names`` / ``weight_names`` (``dense/kernel:0``, ``sequential/dense/kernel``).
* ``.weights.h5`` (Keras 3) and TF checkpoints record no versions.

A name is given to the state's variables by shape, in the model's order (each slot list's
variable is the next model variable of its shape, as :mod:`._files` follows a checkpoint);
where they do not line up, the names stay unknown.
"""

import re
import zipfile

from . import State
from . import StateError
from . import _format
from . import _torch
from . import read
from ._positional import _h5py
from ._positional import h5_strings
from ._positional import h5_text
from ._positional import keras_archive


def _snake(name):
    # Keras's to_snake_case: the group names of a .keras file's layers
    name = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name if not name.startswith("_") else "private" + name


def _config_layers(config):
    """``[(group, layer name, nested config)]`` of a model config's layer list, in order (the
    InputLayer is not a layer of ``model.layers``)."""
    out, counts = [], {}
    for layer in (config.get("config") or {}).get("layers") or []:
        if not isinstance(layer, dict) or layer.get("class_name") == "InputLayer":
            continue
        snake = _snake(str(layer.get("class_name")))
        group = snake if snake not in counts else "%s_%d" % (snake, counts[snake])
        counts[snake] = counts.get(snake, 0) + 1
        out.append((group, (layer.get("config") or {}).get("name") or group, layer))
    return out


def _numeric(key):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _checkpoint_dependencies(config, groups):
    """``_config_layers`` for the Keras 2.13-2.14 layout: the model's
    ``_layer_checkpoint_dependencies`` lists a layer with weights twice (``layer_with_weights-i``
    and ``layer-j``), and each entry takes the next name of its class, so the layers of one
    class are the groups of that class in number order (``dense``, ``dense_2``, ...), matched
    where their counts agree."""
    layers = [
        layer
        for layer in (config.get("config") or {}).get("layers") or []
        if isinstance(layer, dict) and layer.get("class_name") != "InputLayer"
    ]
    group_of = {}
    for snake in {_snake(str(layer.get("class_name"))) for layer in layers}:
        same = [
            i
            for i, layer in enumerate(layers)
            if _snake(str(layer.get("class_name"))) == snake
        ]
        pattern = re.compile(re.escape(snake) + r"(_\d+)?$")
        found = sorted((g for g in groups if pattern.match(g)), key=_numeric)
        if len(found) == len(same):
            group_of.update(zip(same, found))
    return [
        (group_of[i], (layer.get("config") or {}).get("name") or group_of[i], layer)
        for i, layer in enumerate(layers)
        if i in group_of
    ]


def _keras_variables(group, config):
    """``[(name, shape)]`` of the layers' variables in a .keras ``model.weights.h5`` group
    (``layers``; Keras 2.13-2.14: ``_layer_checkpoint_dependencies``)."""
    out = []
    layers = group.get("layers")
    known = _config_layers(config) if config and layers is not None else []
    if layers is None:
        layers = group.get("_layer_checkpoint_dependencies")
        known = _checkpoint_dependencies(config, layers) if config and layers else []
    if layers is not None:
        order = [g for g, _, _ in known if g in layers] + sorted(
            (g for g in layers if g not in {k for k, _, _ in known}), key=_numeric
        )
        names = {g: (n, c) for g, n, c in known}
        for g in order:
            sub = layers[g]
            name, nested = names.get(g, (None, None))
            vars_ = sub.get("vars")
            name = name or (vars_.attrs.get("name") if vars_ is not None else None) or g
            if vars_ is not None:
                out += [
                    ("%s/vars/%s" % (name, i), vars_[str(i)].shape)
                    for i in range(len(vars_))
                ]
            out += [("%s/%s" % (name, n), s) for n, s in _keras_variables(sub, nested)]
    return out


def _h5_variables(f):
    weights = f["model_weights"] if "model_weights" in f else f
    out = []
    for layer in h5_strings(weights, "layer_names"):
        group = weights[layer]
        for name in h5_strings(group):
            if name in group:
                out.append((name, group[name].shape))
    return out


def _file(path):
    """``(format, versions, [(variable name, shape)] or None)`` of a host file."""
    h5py = _h5py(path)
    if zipfile.is_zipfile(path):
        config, meta, weights = keras_archive(path)
        with h5py.File(weights, "r") as f:
            variables = _keras_variables(f, config)
        saved = meta.get("date_saved")
        versions = {"keras": meta["keras_version"]} if meta.get("keras_version") else {}
        return (
            ".keras archive%s" % (", saved %s" % saved if saved else ""),
            versions,
            variables,
        )
    with h5py.File(path, "r") as f:
        if "model_weights" in f:
            versions = {
                k: h5_text(f.attrs[k])
                for k in ("keras_version", "backend")
                if k in f.attrs
            }
            return (
                "HDF5 model (.h5)",
                {k.replace("_version", ""): v for k, v in versions.items()},
                _h5_variables(f),
            )
        return "Keras 3 weights (.weights.h5)", {}, _keras_variables(f, None)


def _named(specs, variables):
    """``specs``' names from the file's ``variables`` (in model order), matched by shape."""
    it, names = iter(variables), []
    for spec in specs:
        found = next((n for n, shape in it if list(shape) == list(spec["shape"])), None)
        if found is None:
            return None
        names.append(found)
    return names


def _weights_only(path, fmt, variables):
    """A .weights.h5 read alone: it does not say which optimizer wrote it."""
    with _h5py(path).File(path, "r") as f:
        count = (
            len(f["optimizer"]["vars"])
            if "optimizer" in f and "vars" in f["optimizer"]
            else 0
        )
    lines = [
        "optimizer:   unknown (a .weights.h5 does not record it; state.load(optimizer, "
        "...) reads it as that optimizer's)",
        "format:      %s  (read from %s)" % (fmt, path),
        "versions:    not recorded in the file",
        "optimizer variables: %d (the step count, then the slots)" % count,
        "model variables: %d (in the file's order)" % len(variables),
    ]
    lines += [
        "  %3d  %-40s %s" % (i, name, tuple(shape))
        for i, (name, shape) in enumerate(variables)
    ]
    return "\n".join(lines)


def summary(path):
    """The lines ``inspect`` prints for ``path`` (any file :func:`read` reads)."""
    if _format.is_state_file(path):
        return read(path).summary()
    try:
        state = read(path)
    except StateError:
        if (
            not _checkpoint(path)
            and not zipfile.is_zipfile(path)
            and str(path).endswith(".h5")
        ):
            fmt, _, variables = _file(path)
            if fmt.startswith("Keras 3 weights"):
                return _weights_only(path, fmt, variables)
        raise
    header = dict(state.header)
    if _checkpoint(path):
        fmt, versions, variables = "TF checkpoint", {}, None
    elif _torch.is_torch_file(path):
        fmt, versions, variables = "torch.save of an optimizer state_dict", {}, None
    else:
        fmt, versions, variables = _file(path)
    header.update(
        format=fmt,
        format_version=None,
        versions=dict(header.get("versions") or {}, **versions),
        variables=[dict(spec) for spec in header["variables"]],
    )
    names = _named(header["variables"], variables) if variables else None
    for spec, name in zip(header["variables"], names or ()):
        spec["name"] = spec.get("name") or name
    return State(header, state.slots, state.values).summary()


def _checkpoint(path):
    from ._files import _is_checkpoint

    return _is_checkpoint(path)
