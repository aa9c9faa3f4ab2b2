"""AdamW and SGDW for Keras 3 (``keras.optimizers.Optimizer``; tensorflow, jax, torch backends).

A thin adapter: it validates (:mod:`._validate`), creates the slots, and maps the one
rule (:mod:`._rule`, over ``keras.ops``, wired by :mod:`._common`) onto ``update_step``.
The host base class keeps everything else it does: schedules, clipping, EMA, gradient
accumulation, loss scaling, ``tf.distribute`` hooks, stateless JAX training, saving.
"""
import sys

from . import _detect, _validate
from ._common import ADAMW_DOC, SGDW_DOC, Decoupled
from ._conventions import DEFAULT

keras, _Optimizer = _detect.host("keras3")  # ImportError naming the releases if absent
ops = keras.ops

__all__ = ["AdamW", "SGDW"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def _is_schedule(value):
    return isinstance(value, _Schedule)


class _Keras3(Decoupled, _Optimizer):
    """The Keras 3 hooks of :class:`._common.Decoupled`."""

    xp = ops
    # On the torch backend, how the rule is evaluated over all variables at once
    # (:mod:`._torch_fast`): "auto", "fused", "foreach", or None for the per-variable path.
    # On the tensorflow backend, "auto" / "fused" run AdamW / SGDW through TensorFlow's
    # fused training kernels (:mod:`._tf_fast`).
    fast_path = "auto"

    def _fast_modes(self):
        return {"torch": ("foreach", "fused"), "tensorflow": ("fused",)}.get(keras.backend.backend(), ())

    def _fast(self):
        """The torch fast-path module, or None (other backends, ``fast_path = None``, or
        inside ``torch.compile``)."""
        _validate.fast_path(self.fast_path)
        if self.fast_path is None or keras.backend.backend() != "torch":
            return None
        if _detect.torch_compiling():
            # jit_compile=True on torch: dynamo cannot trace the fused kernels (no fake
            # tensor impl) nor read coefficients as floats; the per-variable rule compiles,
            # and inductor fuses it as it fuses Keras's own optimizers.
            return None
        from . import _torch_fast

        return _torch_fast

    def _tf_fused(self, gradient, variable):
        """The tensorflow backend's fused-kernel module when it applies here, else None."""
        if keras.backend.backend() != "tensorflow":
            return None
        from . import _tf_fast  # usable() validates fast_path and honours None

        return _tf_fast if _tf_fast.usable(self, sys.modules["tensorflow"], variable) else None

    def __init__(self, learning_rate, weight_decay, convention, exclude_from_weight_decay,
                 clipnorm, clipvalue, global_clipnorm, name, **kwargs):
        checked = _validate.common(learning_rate, weight_decay, convention, clipnorm, clipvalue,
                                   global_clipnorm, exclude_from_weight_decay, _is_schedule)
        lr = checked["learning_rate"]
        lr0 = float(ops.convert_to_numpy(lr(0))) if _is_schedule(lr) else None
        _validate.initial_learning_rate(lr0, checked["convention"])
        super().__init__(
            learning_rate=lr,
            # The base class's own decay is switched off (_apply_weight_decay); the rule
            # applies it.  Passing the value keeps `weight_decay` in the host's config.
            weight_decay=checked["weight_decay"],
            clipnorm=checked["clipnorm"],
            clipvalue=checked["clipvalue"],
            global_clipnorm=checked["global_clipnorm"],
            name=name,
            **kwargs
        )
        self._init_decoupled(checked, lr0)

    def _apply_weight_decay(self, variables):
        return None  # decay is part of the rule: each convention scales it differently

    def _scalar_variable(self, name, value):
        # as the base class makes its float learning rate: an optimizer variable, so jax's
        # stateless steps receive it with the state, and it is saved with the optimizer
        with keras.name_scope(self.name, caller=self):
            variable = keras.Variable(value, name=name, dtype=keras.backend.floatx(), trainable=False)
        self._track_variable(variable)
        return variable

    def _concrete(self, variable):
        """``variable``'s value as a float where it is concrete now; None inside a traced step."""
        if keras.backend.backend() == "torch" and _detect.torch_compiling():
            return None  # dynamo would break the graph on a float()
        try:
            return float(ops.convert_to_numpy(variable))
        except Exception:  # a jax tracer, a symbolic TF tensor
            return None

    def _host_allows_decay(self, variable):
        return self._use_weight_decay(variable)  # honours opt.exclude_from_weight_decay(...)

    def _eager(self):
        # jax tracers refuse float() (caught by the check); TF and torch.compile need asking
        backend = keras.backend.backend()
        if backend == "torch":
            return not _detect.torch_compiling()
        tf = sys.modules.get("tensorflow") if backend == "tensorflow" else None
        return tf is None or tf.executing_eagerly()

    def _dense(self, gradient):
        # tf.IndexedSlices (Embedding on the tensorflow backend) -> dense: the dense result,
        # as the host's own Adam gives (every row's moments decay each step).  Only the
        # tensorflow backend makes them, so TensorFlow is already imported then.
        if type(gradient).__name__ == "IndexedSlices":
            return sys.modules["tensorflow"].convert_to_tensor(gradient)
        return gradient

    def _slot(self, slots, variable):
        return None if slots is None else slots[self._get_variable_index(variable)]

    def _assign(self, variable, value):
        self.assign(variable, value)

    def _slots_for(self, variables, name):
        return [self.add_variable_from_reference(v, name=name) for v in variables]

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
        if keras.backend.backend() != "tensorflow":
            return super().apply(grads, trainable_variables)
        from . import _tf_fast

        with _tf_fast.step_scope(self):  # coefficients built once per step, not per variable
            return super().apply(grads, trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update(self._decoupled_config())
        return config


@keras.saving.register_keras_serializable(package="optcompat")
class AdamW(_Keras3):
    __doc__ = ADAMW_DOC % ("Keras 3", ", or a callable")

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, convention=DEFAULT, exclude_from_weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="AdamW", **kwargs):
        checked = _validate.adamw(beta_1, beta_2, epsilon, amsgrad)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        self._keep(checked)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self._slots_for(var_list, "momentum")
        self._velocities = self._slots_for(var_list, "velocity")
        self._velocity_hats = self._slots_for(var_list, "velocity_hat") if self.amsgrad else None

    def update_step(self, gradient, variable, learning_rate):
        fused = self._tf_fused(gradient, variable)
        if fused is not None:
            return fused.adamw(self, sys.modules["tensorflow"], gradient, variable, learning_rate, self.iterations)
        self._adamw_step(gradient, variable, learning_rate, self.iterations)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        fast = self._fast()
        if fast is None:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        fast.adamw(self, grads, trainable_variables, learning_rate)


@keras.saving.register_keras_serializable(package="optcompat")
class SGDW(_Keras3):
    __doc__ = SGDW_DOC % ("Keras 3", ", or a callable")

    def __init__(self, learning_rate=0.01, weight_decay=0.0, momentum=0.0, nesterov=False,
                 convention=DEFAULT, exclude_from_weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name="SGDW", **kwargs):
        checked = _validate.sgdw(momentum, nesterov)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        self._keep(checked)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self._slots_for(var_list, "momentum") if self.momentum else None

    def update_step(self, gradient, variable, learning_rate):
        fused = self._tf_fused(gradient, variable)
        if fused is not None:
            return fused.sgdw(self, sys.modules["tensorflow"], gradient, variable, learning_rate)
        self._sgdw_step(gradient, variable, learning_rate)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        fast = self._fast()
        if fast is None:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        fast.sgdw(self, grads, trainable_variables, learning_rate)
