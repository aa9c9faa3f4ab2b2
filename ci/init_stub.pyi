# Types of optcompat's public API (PEP 561; the package is typed: py.typed).  AdamW and SGDW are
# made per family at run time (optcompat.keras3 / keras2 / legacy); each is a subclass of that
# family's host optimizer, so every host method not listed here is typed Any.
# tests/test_typing.py checks these signatures against the classes and functions themselves.
# The template of optcompat/__init__.pyi: ci/stubs.py adds AdamW's and SGDW's docstrings and
# defaults from their declarations (optcompat/_optimizers.py).
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
