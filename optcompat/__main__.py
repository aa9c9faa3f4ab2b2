"""``python -m optcompat``: print what was detected, for bug reports.
``python -m optcompat --selftest``: run a few steps of every family installed against bundled
float64 trajectories (:mod:`._selftest`); exit status 1 on a failure."""
import json
import sys

from ._detect import describe

if "--selftest" in sys.argv[1:]:
    from ._selftest import main

    sys.exit(main())
print(json.dumps(describe(), indent=2))
