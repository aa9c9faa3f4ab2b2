"""``python -m optcompat``: print what was detected, as JSON, for bug reports -- with
``problems``: what is configured but not installed (a Keras backend, a family, tf-keras), each
with its fix, also written to stderr.  ``python -m optcompat --selftest``: run a few steps of
every family installed against bundled float64 trajectories (:mod:`._selftest`); exit status
1 on a failure.  An unknown option exits 2 (argparse's usage error)."""

import argparse
import json
import sys

from . import __version__
from ._detect import describe

DESCRIPTION = (
    "Print what optcompat detected (families, host modules, versions, Keras 3 backend) as JSON for "
    "bug reports, and any problem found (a configured backend or host that is not installed) with "
    "its fix, on stderr."
)


def parser():
    p = argparse.ArgumentParser(prog="python -m optcompat", description=DESCRIPTION)
    p.add_argument(
        "--selftest",
        action="store_true",
        help="run 12 steps of AdamW and SGDW in every family installed against bundled float64 "
        "trajectories; one line per family, exit status 1 on a failure",
    )
    p.add_argument("--version", action="version", version="optcompat " + __version__)
    return p


def main(argv=None):
    # an unknown option: usage on stderr, exit status 2
    args = parser().parse_args(argv)
    if args.selftest:
        from ._selftest import main as selftest

        return selftest()
    info = describe()
    print(json.dumps(info, indent=2))
    for problem in info["problems"]:
        print("optcompat: problem: %s" % problem, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
