"""``python -m optcompat``: print what was detected, for bug reports."""
import json

from ._detect import describe

print(json.dumps(describe(), indent=2))
