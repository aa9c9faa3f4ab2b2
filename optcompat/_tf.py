"""What the TensorFlow-variable hosts share: the rule's array namespace over TensorFlow,
dtype and shape reading for the gradient checks, and the hooks that put a step on
TensorFlow's fused training kernels (:mod:`._tf_fast`).

Used by the OptimizerV2 and Keras 2 adapters and by Keras 3's tensorflow backend; imported
only by them (it imports TensorFlow).
"""

import types

import tensorflow as tf

from . import _tf_fast

# The array namespace the rule (:mod:`._rule`) and the schedules (:mod:`._schedules`) run on.
xp = types.SimpleNamespace(
    cast=tf.cast,
    sqrt=tf.sqrt,
    maximum=tf.maximum,
    power=tf.pow,
    cos=tf.cos,
    floor=tf.floor,
    log=tf.math.log,
    minimum=tf.minimum,
    where=tf.where,
    sign=tf.sign,
)


def is_float(dtype):
    return tf.as_dtype(dtype).is_floating


def dtype_name(dtype):
    return tf.as_dtype(dtype).base_dtype.name


def shapes(gradient, variable):
    """Both static shapes as lists; ``[]`` and ``[]`` where either rank is unknown (only
    the dtype is checked then)."""
    shape = getattr(gradient, "shape", None)
    # a tf.IndexedSlices of TF 1.15-2.1 (no .shape): its dense shape, if static
    if shape is None:
        dense = tf.get_static_value(gradient.dense_shape)
        shape = tf.TensorShape(None if dense is None else [int(d) for d in dense])
    g, v = tf.TensorShape(shape), tf.TensorShape(variable.shape)
    if g.rank is None or v.rank is None:
        return [], []
    return g.as_list(), v.as_list()


def read_hyper(value, callables=False, OTHER=None):
    """A hyperparameter given as a TensorFlow tensor or variable (or, with ``callables``, a
    callable, as OptimizerV2's ``_set_hyper`` takes it): its value now as a float, None where it
    is symbolic; ``OTHER`` for anything else."""
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        pass
    elif callables and callable(value):
        try:
            value = value()
        except Exception:  # reads something not there yet: checked where it is used
            return None
    else:
        return OTHER
    try:
        return float(value.numpy() if hasattr(value, "numpy") else value)
    except Exception:  # a symbolic tensor
        return None


def dense(gradient):
    """``tf.IndexedSlices`` (an ``Embedding``'s gradient) as a dense tensor: the dense
    result, as the host's own Adam gives (every row's moments decay each step)."""
    return (
        tf.convert_to_tensor(gradient)
        if isinstance(gradient, tf.IndexedSlices)
        else gradient
    )


class FusedKernels(object):
    """Hooks of :class:`._common.Decoupled` for TensorFlow variables: eager detection,
    dense gradients, and ``_fast_one`` through the fused kernels."""

    def _fast_modes(self):
        return ("fused",)

    def _dense(self, gradient):
        return dense(gradient)

    def _fast_one(
        self, gradient, variable, slots, *, rate, iterations, decays, shared=None
    ):
        if not _tf_fast.usable(
            tf,
            self.fast_path,
            getattr(self, "amsgrad", False),
            variable,
            self.convention,
        ):
            return False, None
        dtype = tf.as_dtype(variable.dtype)

        def make():  # once per step, graph, device and dtype inside step_scope
            c = self._step_coefficients(self._host.xp, dtype, rate(), iterations)
            return _tf_fast.kernel_coefficients(tf, self.kind, c, dtype)

        c = _tf_fast.shared(tf, self, variable, make) if shared is None else shared
        decay = c["decay"] if decays else None
        return True, _tf_fast.apply(
            tf,
            self.kind,
            var=variable.handle,
            slots=[s.handle for s in slots if s is not None],
            grad=tf.cast(gradient, dtype),
            c=c,
            decay=decay,
            convention=self.convention,
            decay_may_be_zero=self._decay_store.may_be_zero(),
            nesterov=getattr(self, "nesterov", False),
        )
