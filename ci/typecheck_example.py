"""Type-checked by the lint env (mypy): the public API as a user calls it, against
optcompat/__init__.pyi.  Never run."""
from typing import Dict
from typing import Tuple

import optcompat
from optcompat import SGDW
from optcompat import AdamW

opt: AdamW = AdamW(learning_rate=1e-3, weight_decay=4e-3, amsgrad=True, exclude_from_weight_decay=["bias"],
                   lr_multipliers={"dense": 2.0}, weight_decays={"dense/kernel": (0.0, 1e-4)}, fast_path=None)
sgd = SGDW(learning_rate=0.1, momentum=0.9, nesterov=True, convention="torch")
config: Dict[str, object] = opt.get_config()
again = AdamW.from_config(opt.get_config())
wd: float = optcompat.normalized_weight_decay(0.05, total_iterations=1000)
decays: Dict[str, Tuple[float, float]] = optcompat.weight_decays_from(object())
family: str = optcompat.default_family()
NadamW = optcompat.decoupled(type(opt))
print(sgd.fast_path, config, again, wd, decays, family, NadamW, optcompat.family_module("keras3").__name__)
