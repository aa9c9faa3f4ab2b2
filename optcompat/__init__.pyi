# Types of optcompat's public API (PEP 561; the package is typed: py.typed).  AdamW and SGDW are
# made per family at run time (optcompat.keras3 / keras2 / legacy); each is a subclass of that
# family's host optimizer, so every host method not listed here is typed Any.
# tests/test_typing.py checks these signatures against the classes and functions themselves.
from types import ModuleType
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple
from typing import Union

__version__: str

# a float, a host LearningRateSchedule, a callable, or a host tensor / variable
Rate = Union[float, Callable[..., Any], Any]
# a float, or a host tensor / variable (OptimizerV2: a callable too)
Hyper = Union[float, Any]
# a variable's own decays: l2, or (l1, l2)
OwnDecay = Union[float, Tuple[float, float], Sequence[float]]

class _Optimizer:
    convention: str
    weight_decay: Any
    fast_path: Optional[str]
    def get_config(self) -> Dict[str, Any]: ...
    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = ...) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...  # the host optimizer's API

class AdamW(_Optimizer):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Decoupled decay: with $t$ the 1-based step, $\mathrm{lr}_t$ the learning
    rate at this step, $\lambda$ the weight decay and $x$ the weight before the step
    (the decay and the step both use it), the fraction of $x$ removed is

    $$
    d_t = \begin{cases}
      \lambda \, \mathrm{lr}_t & \text{keras, torch, optax} \\
      \lambda & \text{tfa} \\
      \lambda \, \mathrm{lr}_t / \mathrm{lr}_0 & \text{paper, keras-adamw}
    \end{cases}
    $$

    with $\mathrm{lr}_0$ the schedule's reference rate ($\mathrm{lr}_t / \mathrm{lr}_0 = 1$
    where the rate is no schedule).  A variable given its own decays $(l_1, l_2)$
    (`weight_decays`, keras-adamw's) has $\lambda = l_2$ and also loses
    $s_t = d^{(1)}_t \operatorname{sign}(x)$, $d^{(1)}_t$ being $l_1$ scaled as $d_t$ is; an
    `lr_multipliers` factor $k$ multiplies its $\mathrm{lr}_t$ (and so $d_t$ where $d_t$
    follows $\mathrm{lr}_t$), not the schedule multiplier $\mathrm{lr}_t / \mathrm{lr}_0$.

    AdamW update ($g$ the gradient; returns `(x, m, v, vhat)`, `vhat` None without amsgrad):

    $$
    \begin{aligned}
    m_t &= m + (1 - \beta_1)(g - m) \\
    v_t &= v + (1 - \beta_2)(g^2 - v) \\
    \hat v_t &= \max(\hat v, v_t) \quad \text{(amsgrad: used in place of } v_t\text{)} \\
    \alpha_t &= \mathrm{lr}_t \, \sqrt{1 - \beta_2^t} \, / \, (1 - \beta_1^t) \\
    x_t &= x - d_t \, x - \alpha_t \, m_t / (\sqrt{v_t} + \hat\epsilon_t)
      \quad (- \, s_t \text{ with an L1 decay})
    \end{aligned}
    $$

    with $\hat\epsilon_t = \epsilon$ (keras, tfa, keras-adamw: epsilon outside the bias
    correction) or $\hat\epsilon_t = \epsilon \sqrt{1 - \beta_2^t}$ (torch, optax, paper: exactly
    $\mathrm{lr}_t \, \hat m_t / (\sqrt{\hat v_t} + \epsilon)$ with the bias-corrected moments).

    Args:
        learning_rate: a float >= 0, a host `LearningRateSchedule`, or (where the family
            calls one: Keras 3, OptimizerV2) a callable returning the rate; checked each eager
            step to be finite and >= 0.
        weight_decay: the decoupled decay $\lambda$: a float >= 0, or a `LearningRateSchedule`
            (called with the 0-based step, as the learning rate's) or a callable (called each
            step), as TensorFlow Addons and optax take it; a schedule's or callable's value is
            checked each eager step (finite, >= 0).  A float: `opt.weight_decay = x` sets it for
            the steps that follow, compiled ones included (a callback's schedule).  Saved with
            the optimizer: a schedule serialized, a plain callable as its value at saving.
        beta_1: in [0, 1), the decay rate $\beta_1$ of the first moment $m$.
        beta_2: in [0, 1), the decay rate $\beta_2$ of the second moment $v$.
        epsilon: >= 0, the $\epsilon$ added to $\sqrt{v}$ (where: see `convention`).
        amsgrad: bool; use $\hat v = \max(\hat v, v)$ in place of $v$ (one more slot).
        convention: whose numbers to reproduce, one of `optcompat.CONVENTIONS`:
            `"keras"` (default; the host's own optimizer), `"torch"` (`torch.optim`),
            `"optax"` (`optax.adamw`: torch's rule, rounded as optax rounds the decay),
            `"tfa"` (TensorFlow Addons: the decay not scaled by the learning rate),
            `"paper"` (Loshchilov & Hutter's Algorithm 2: the decay scaled by the schedule
            multiplier $\mathrm{lr}_t / \mathrm{lr}_0$), `"keras-adamw"` (the keras-adamw package:
            the paper's decay with Keras's epsilon).
        exclude_from_weight_decay: None or a list of regular expressions; a variable whose path
            (or name) matches one gets no decay.  `opt.exclude_from_weight_decay(var_list=...,
            var_names=...)` adds to it, as in Keras.
        clipnorm: None or > 0: clip each gradient to this norm.
        clipvalue: None or > 0: clip each gradient element to this magnitude.
        global_clipnorm: None or > 0: clip all gradients to this global norm (at most one of the
            three clipping arguments).
        name: the optimizer's name.
        lr_multipliers: None or `{pattern: factor}` (keras-adamw's): a variable whose path or
            name contains `pattern` (the first such key, in the dict's order) takes steps with
            $\mathrm{lr}_t \cdot$ `factor` (factor >= 0); its decay follows where $d_t$ follows
            $\mathrm{lr}_t$.
        weight_decays: None or `{variable name: l2 or (l1, l2)}`, each >= 0 (keras-adamw's;
            `optcompat.weight_decays_from(model)` reads them from the layers' regularizers):
            that variable's decay in place of `weight_decay` ($l_2$ its $\lambda$, $l_1$ an
            L1 decay), scaled by the convention as `weight_decay` is.
        strict_names: bool; True: every `lr_multipliers` pattern and `weight_decays` name must
            match a variable the optimizer is built for (`ValueError` naming it, else).
        fast_path: `"auto"` (default), `"fused"`, `"foreach"` (torch) or None: how the rule is
            evaluated (TensorFlow's and torch's fused kernels, or op by op), never what it computes.
        **kwargs: the host base class's other keyword arguments, as in Keras (`use_ema`,
            `gradient_accumulation_steps`, `loss_scale_factor`, OptimizerV2's `decay`, ...).

    Raises:
        ValueError: an argument out of its range (the message names it and the range allowed),
            before anything is created; at use time, a rate or decay that is NaN, infinite or
            negative, or a gradient whose shape differs from its variable's, before any variable
            or slot changes.
        TypeError: an argument of the wrong type (it is a `ValueError` too, as Keras raises
            `ValueError` for `AdamW(weight_decay=None)`).

    Example:
        ```python
        from optcompat import AdamW

        model.compile(optimizer=AdamW(learning_rate=1e-3, weight_decay=4e-3,
                                      exclude_from_weight_decay=["bias"]), loss="mse")
        model.fit(x, y, epochs=2, verbose=0)
        ```

    References:
        I. Loshchilov, F. Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019.
        D. Kingma, J. Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015.
    """
    def __init__(
        self,
        learning_rate: Rate = 0.001,
        weight_decay: Rate = 0.004,
        beta_1: Hyper = 0.9,
        beta_2: Hyper = 0.999,
        epsilon: float = 1e-07,
        amsgrad: bool = False,
        convention: str = 'keras',
        exclude_from_weight_decay: Optional[List[str]] = None,
        clipnorm: Optional[float] = None,
        clipvalue: Optional[float] = None,
        global_clipnorm: Optional[float] = None,
        name: str = 'AdamW',
        lr_multipliers: Optional[Mapping[str, float]] = None,
        weight_decays: Optional[Mapping[str, OwnDecay]] = None,
        strict_names: bool = False,
        fast_path: Optional[str] = 'auto',
        **kwargs: Any,
    ) -> None: ...

class SGDW(_Optimizer):
    r"""SGD (optionally with momentum or Nesterov momentum) with decoupled weight decay.

    Decoupled decay: with $t$ the 1-based step, $\mathrm{lr}_t$ the learning
    rate at this step, $\lambda$ the weight decay and $x$ the weight before the step
    (the decay and the step both use it), the fraction of $x$ removed is

    $$
    d_t = \begin{cases}
      \lambda \, \mathrm{lr}_t & \text{keras, torch, optax} \\
      \lambda & \text{tfa} \\
      \lambda \, \mathrm{lr}_t / \mathrm{lr}_0 & \text{paper, keras-adamw}
    \end{cases}
    $$

    with $\mathrm{lr}_0$ the schedule's reference rate ($\mathrm{lr}_t / \mathrm{lr}_0 = 1$
    where the rate is no schedule).  A variable given its own decays $(l_1, l_2)$
    (`weight_decays`, keras-adamw's) has $\lambda = l_2$ and also loses
    $s_t = d^{(1)}_t \operatorname{sign}(x)$, $d^{(1)}_t$ being $l_1$ scaled as $d_t$ is; an
    `lr_multipliers` factor $k$ multiplies its $\mathrm{lr}_t$ (and so $d_t$ where $d_t$
    follows $\mathrm{lr}_t$), not the schedule multiplier $\mathrm{lr}_t / \mathrm{lr}_0$.

    SGDW update with momentum $\mu$ (returns `(x, buf)`; no buffer when $\mu = 0$):

    $$
    \begin{aligned}
    \text{no momentum:} \quad & x_t = x - d_t \, x - \mathrm{lr}_t \, g \\
    \text{keras, tfa, paper, keras-adamw:} \quad & u_t = \mu u - \mathrm{lr}_t \, g,
      \quad x_t = x - d_t \, x + u_t \\
    \text{nesterov:} \quad & x_t = x - d_t \, x + \mu u_t - \mathrm{lr}_t \, g \\
    \text{torch, optax:} \quad & b_t = \mu b + g, \quad x_t = x - d_t \, x - \mathrm{lr}_t \, b_t \\
    \text{nesterov:} \quad & x_t = x - d_t \, x - \mathrm{lr}_t (g + \mu b_t)
    \end{aligned}
    $$

    `torch.optim` sets $b_1 = g_1$; with $b_0 = 0$ the formula gives the same.  An L1 decay
    subtracts $s_t$ too.

    Args:
        learning_rate: a float >= 0, a host `LearningRateSchedule`, or (where the family
            calls one: Keras 3, OptimizerV2) a callable returning the rate; checked each eager
            step to be finite and >= 0.
        weight_decay: None (the default, as Keras's SGD: no decay), or the decoupled decay
            $\lambda$ as `AdamW` takes it (a float, a schedule, a callable).  None keeps
            no `weight_decay` variable (the host SGD's variables exactly), so a value set
            later reaches only steps traced after it: give `weight_decay=0.0` to schedule it.
        momentum: in [0, 1), the momentum $\mu$; 0 keeps no momentum slot at all.
        nesterov: bool, Nesterov momentum.
        convention: whose numbers to reproduce, one of `optcompat.CONVENTIONS`:
            `"keras"` (default; the host's own optimizer), `"torch"` (`torch.optim`),
            `"optax"` (`optax.adamw`: torch's rule, rounded as optax rounds the decay),
            `"tfa"` (TensorFlow Addons: the decay not scaled by the learning rate),
            `"paper"` (Loshchilov & Hutter's Algorithm 2: the decay scaled by the schedule
            multiplier $\mathrm{lr}_t / \mathrm{lr}_0$), `"keras-adamw"` (the keras-adamw package:
            the paper's decay with Keras's epsilon).
        exclude_from_weight_decay: None or a list of regular expressions; a variable whose path
            (or name) matches one gets no decay.  `opt.exclude_from_weight_decay(var_list=...,
            var_names=...)` adds to it, as in Keras.
        clipnorm: None or > 0: clip each gradient to this norm.
        clipvalue: None or > 0: clip each gradient element to this magnitude.
        global_clipnorm: None or > 0: clip all gradients to this global norm (at most one of the
            three clipping arguments).
        name: the optimizer's name.
        lr_multipliers: None or `{pattern: factor}` (keras-adamw's): a variable whose path or
            name contains `pattern` (the first such key, in the dict's order) takes steps with
            $\mathrm{lr}_t \cdot$ `factor` (factor >= 0); its decay follows where $d_t$ follows
            $\mathrm{lr}_t$.
        weight_decays: None or `{variable name: l2 or (l1, l2)}`, each >= 0 (keras-adamw's;
            `optcompat.weight_decays_from(model)` reads them from the layers' regularizers):
            that variable's decay in place of `weight_decay` ($l_2$ its $\lambda$, $l_1$ an
            L1 decay), scaled by the convention as `weight_decay` is.
        strict_names: bool; True: every `lr_multipliers` pattern and `weight_decays` name must
            match a variable the optimizer is built for (`ValueError` naming it, else).
        fast_path: `"auto"` (default), `"fused"`, `"foreach"` (torch) or None: how the rule is
            evaluated (TensorFlow's and torch's fused kernels, or op by op), never what it computes.
        **kwargs: the host base class's other keyword arguments, as in Keras (`use_ema`,
            `gradient_accumulation_steps`, `loss_scale_factor`, OptimizerV2's `decay`, ...).

    Raises:
        ValueError: an argument out of its range (the message names it and the range allowed),
            before anything is created; at use time, a rate or decay that is NaN, infinite or
            negative, or a gradient whose shape differs from its variable's, before any variable
            or slot changes.
        TypeError: an argument of the wrong type (it is a `ValueError` too, as Keras raises
            `ValueError` for `AdamW(weight_decay=None)`).

    Example:
        ```python
        from optcompat import SGDW

        model.compile(optimizer=SGDW(learning_rate=0.1, weight_decay=1e-4, momentum=0.9,
                                     nesterov=True), loss="mse")
        model.fit(x, y, epochs=2, verbose=0)
        ```

    References:
        I. Loshchilov, F. Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019.
        D. Kingma, J. Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015.
    """
    def __init__(
        self,
        learning_rate: Rate = 0.01,
        weight_decay: Optional[Rate] = None,
        momentum: Hyper = 0.0,
        nesterov: bool = False,
        convention: str = 'keras',
        exclude_from_weight_decay: Optional[List[str]] = None,
        clipnorm: Optional[float] = None,
        clipvalue: Optional[float] = None,
        global_clipnorm: Optional[float] = None,
        name: str = 'SGDW',
        lr_multipliers: Optional[Mapping[str, float]] = None,
        weight_decays: Optional[Mapping[str, OwnDecay]] = None,
        strict_names: bool = False,
        fast_path: Optional[str] = 'auto',
        **kwargs: Any,
    ) -> None: ...

CONVENTIONS: Mapping[str, Any]

def family_module(family: Optional[str] = ...) -> ModuleType: ...
def decoupled(optimizer_class: type) -> type: ...
def normalized_weight_decay(
    lambda_norm: float,
    total_iterations: Optional[int] = ...,
    batch_size: Optional[int] = ...,
    samples_per_epoch: Optional[int] = ...,
    epochs: Optional[int] = ...,
) -> float: ...
def weight_decays_from(model: Any, zero_penalties: bool = ...) -> Dict[str, Tuple[float, float]]: ...
def describe() -> Dict[str, Any]: ...
def default_family(found: Optional[Dict[str, Any]] = ...) -> str: ...
def available_families(found: Optional[Dict[str, Any]] = ...) -> List[str]: ...
def __getattr__(name: str) -> Any: ...
