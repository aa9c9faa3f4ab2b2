"""AdamW and SGDW for Keras 3 (``keras.optimizers.Optimizer``; tensorflow, jax, torch backends).

The family's hooks only (:mod:`._common` lists them); the optimizers are declared in
:mod:`._optimizers` and the math is :mod:`._rule`, over ``keras.ops``.  What differs per
backend is one hook class, chosen once at import as Keras chooses its own optimizer's
backend class: :class:`_TensorFlow` (TensorFlow's fused kernels, :mod:`._tf`),
:class:`_Torch` (all variables at once, :mod:`._torch_fast`), :class:`_Backend` (jax, and
any other).  The host base class keeps everything else it does: schedules, clipping, EMA,
gradient accumulation, loss scaling, ``tf.distribute`` hooks, stateless JAX training, saving.
"""
from . import _detect
from ._common import Decoupled
from ._optimizers import SPECS, make

keras, _Optimizer = _detect.host("keras3")  # ImportError naming the releases if absent
ops = keras.ops

__all__ = ["AdamW", "SGDW"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule


class _Backend(object):
    """Hooks of a backend whose values are concrete unless traced (jax: a tracer refuses
    ``float()``), with no fast path."""

    def _concrete(self, variable):
        """``variable``'s value as a float where it is concrete now; None inside a traced step."""
        try:
            return float(ops.convert_to_numpy(variable))
        except Exception:  # a jax tracer, a symbolic TF tensor
            return None


def _tensorflow_hooks():
    """The tensorflow backend: TensorFlow's fused kernels (:class:`._tf.FusedKernels`: its
    eager test, dense gradients and ``_fast_one``), coefficients shared per step."""
    from . import _tf

    class _TensorFlow(_tf.FusedKernels, _Backend):
        def apply(self, grads, trainable_variables=None):
            with _tf._tf_fast.step_scope(self):  # coefficients built once per step, not per variable
                return super().apply(grads, trainable_variables)

    return _TensorFlow


class _Torch(_Backend):
    """The torch backend: every variable at once (:mod:`._torch_fast`), except under
    ``torch.compile`` (``jit_compile=True``), where the per-variable rule compiles."""

    def _fast_modes(self):
        return ("foreach", "fused")

    def _concrete(self, variable):
        if _detect.torch_compiling():
            return None  # dynamo would break the graph on a float()
        return _Backend._concrete(self, variable)

    def _eager(self):
        return not _detect.torch_compiling()

    def _settings(self):
        """The convention and the declaration's arguments, as Python values (what torch's
        kernels take)."""
        settings = {name: getattr(self, name) for name in self._kept}
        settings["convention"] = self.convention
        return settings

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        from . import _torch_fast

        if _torch_fast.mode(self.fast_path) is None or _detect.torch_compiling():
            # dynamo cannot trace the fused kernels (no fake tensor impl) nor read
            # coefficients as floats; inductor fuses the per-variable rule instead
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        def step():  # the 1-based step as an int (Keras 3.3's Variable has no __int__)
            return int(ops.convert_to_numpy(self.iterations)) + 1

        settings = self._settings()
        for dtype, decays, pairs in _torch_fast.groups(grads, trainable_variables, self._decays):
            c = self._step_coefficients(ops, dtype, learning_rate, self.iterations)
            gs, vs = zip(*pairs)
            slots = [None if column[0] is None else [s.value for s in column]
                     for column in zip(*(self._slot_values(v) for v in vs))]
            _torch_fast.step(self.kind, self.fast_path, [v.value for v in vs], list(gs), slots, c,
                             decays, step, settings)


# Chosen once: Keras 3 fixes its backend at import.
_BACKEND = {"tensorflow": _tensorflow_hooks, "torch": lambda: _Torch}.get(
    keras.backend.backend(), lambda: _Backend)()


class _Keras3(_BACKEND, Decoupled, _Optimizer):
    """The Keras 3 hooks of :class:`._common.Decoupled`."""

    xp = ops

    @staticmethod
    def _is_schedule(value):
        return isinstance(value, _Schedule)

    @staticmethod
    def _initial_rate(learning_rate):
        return float(ops.convert_to_numpy(learning_rate(0))) if isinstance(learning_rate, _Schedule) else None

    def _init_host(self, checked, name, kwargs):
        _Optimizer.__init__(
            self,
            learning_rate=checked["learning_rate"],
            # The base class's own decay is switched off (_apply_weight_decay); the rule
            # applies it.  Passing the value keeps `weight_decay` in the host's config.
            weight_decay=checked["weight_decay"],
            clipnorm=checked["clipnorm"],
            clipvalue=checked["clipvalue"],
            global_clipnorm=checked["global_clipnorm"],
            name=name,
            **kwargs
        )

    def _apply_weight_decay(self, variables):
        return None  # decay is part of the rule: each convention scales it differently

    def _scalar_variable(self, name, value):
        # as the base class makes its float learning rate: an optimizer variable, so jax's
        # stateless steps receive it with the state, and it is saved with the optimizer
        with keras.name_scope(self.name, caller=self):
            variable = keras.Variable(value, name=name, dtype=keras.backend.floatx(), trainable=False)
        self._track_variable(variable)
        return variable

    def _host_allows_decay(self, variable):
        return self._use_weight_decay(variable)  # honours opt.exclude_from_weight_decay(...)

    # Keras 3's own slot names (Adam: momentum, velocity, velocity_hat)
    _SLOT_NAMES = {"m": "momentum", "v": "velocity", "vhat": "velocity_hat", "momentum": "momentum"}

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._build_slots(var_list, lambda v, key: self.add_variable_from_reference(
            v, name=self._SLOT_NAMES[key]))

    def _slot_values(self, variable):
        return self._slots_at(self._get_variable_index(variable))

    def _assign(self, variable, value):
        self.assign(variable, value)

    def update_step(self, gradient, variable, learning_rate):
        return self._apply_one(gradient, variable, lambda: learning_rate, self.iterations)

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if trainable_variables is not None:
            trainable_variables = list(trainable_variables)
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        self._check_gradients(zip(grads, variables), keras.backend.is_float_dtype,
                              keras.backend.standardize_dtype)
        if callable(self._learning_rate) and self._eager():
            # only a schedule or callable can go bad; read the step counter for it where it
            # is concrete (Keras 3.0's Variable has no int(), hence convert_to_numpy)
            try:
                step = int(ops.convert_to_numpy(self.iterations))
            except Exception:  # a jax tracer
                pass
            else:
                self._check_learning_rate(self._learning_rate, step)
        return super().apply(grads, trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update(self._decoupled_config())
        return config


def _register(cls):
    return keras.saving.register_keras_serializable(package="optcompat")(cls)


AdamW, SGDW = (make(spec, _Keras3, "Keras 3", __name__, _register) for spec in SPECS)
