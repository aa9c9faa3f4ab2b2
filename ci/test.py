#!/usr/bin/env python3
"""The test command: the CI envs (tox label ``ci``), two at a time, one line per env as it finishes.

    python3 ci/test.py                     the envs of tox.ini's label ci (what CI runs)
    python3 ci/test.py --label dist        another label
    python3 ci/test.py --envs tf22,lint    some envs
    python3 ci/test.py -j 1                one env at a time

It runs ``ci/tox -p J -e ENVS`` (tox + tox-uv bootstrapped by ci/tox) and, where ``ci/tox -m ci
-p 2 -o`` interleaves two envs' output line by line, prints as each env finishes one line with
its result, pytest's counts and its wall time (``ci/matrix.py``'s progress line), the failing
tests' ids under a failed env, and at the end every env's pytest summary line and the totals.
Each env's whole output stays in ``.tox/<env>/log/``, tox's in ``.tox/test.log``.  Records
(``ci/record.py``) go to ``.tox/test-results``, not docs/.  Exit status: tox's, or 1 when no
test ran.  Python 3.8+, standard library only.
"""
import argparse
import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matrix  # noqa: E402  (ci/matrix.py: the same runner and progress lines)


def summary_line(env, started):
    """pytest's closing line in ``env``'s newest command log since ``started``, or None."""
    logs = [p for p in glob.glob(os.path.join(matrix.TOXWORKDIR, env, "log", "*commands*.log"))
            if os.path.getmtime(p) >= started]
    for path in sorted(logs, key=os.path.getmtime, reverse=True):
        with open(path, errors="replace") as f:
            found = [line for line in (matrix.ANSI.sub("", raw).strip() for raw in f.read().splitlines())
                     if matrix.SUMMARY.match(line)]
        if found:
            return found[-1]
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--envs", help="comma-separated tox envs")
    ap.add_argument("--label", help="a tox.ini label (default: ci)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="envs at a time (default: 2)")
    args = ap.parse_args(argv)
    envs = matrix.select_envs(args.envs, args.label or (None if args.envs else "ci"))
    if not os.path.isdir(matrix.TOXWORKDIR):
        os.makedirs(matrix.TOXWORKDIR)
    started = time.time()
    ok, total_s = matrix.run_matrix(envs, max(1, min(args.jobs, len(envs))),
                                    os.path.join(matrix.TOXWORKDIR, "test-results"), "python3 ci/test.py",
                                    os.path.join(matrix.TOXWORKDIR, "test.log"))
    print("---- pytest summaries ----")
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for env in envs:
        line = summary_line(env, started)
        if line is None:
            continue
        print("%s: %s" % (env, line))
        for word in totals:
            found = re.search(r"(\d+) %s" % word, line)
            totals[word] += int(found.group(1)) if found else 0
    print("test: %d passed, %d failed, %d skipped in %d envs; wall time %.0fs" % (
        totals["passed"], totals["failed"], totals["skipped"], len(envs), total_s))
    if totals["passed"] == 0:
        print("test: no tests ran", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
