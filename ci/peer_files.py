#!/usr/bin/env python3
"""Fetch the peers' own test files into a cache folder (not committed, not packaged).

    python3 ci/peer_files.py                                 # from GitHub (needs the internet)
    python3 ci/peer_files.py --mirror tensorflow/addons=DIR  # from a local git clone or mirror

The peers' test suites are the proof users trust (tests/test_peer_suites.py runs them against
optcompat), but their packages do not ship them: TensorFlow Addons' wheels hold no tests, and
keras-adamw's sdist has none.  This script copies each file at the tag of each release the
matrix installs into ``.cache/peers/<repo>/<tag>/<path>`` (``OPTCOMPAT_PEER_CACHE`` overrides
the folder); the tests read them from there and are skipped, naming this command, where a file
is not cached (CI has no internet: it runs Keras 3's own suites, which its wheel ships).
Python 3.8+, standard library only.
"""
import argparse
import os
import subprocess
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("OPTCOMPAT_PEER_CACHE") or os.path.join(ROOT, ".cache", "peers")

# repo -> (tags, paths): every release tox.ini installs (TFA 0.10-0.23, keras-adamw 1.38)
TFA_TAGS = ("v0.10.0", "v0.11.2", "v0.12.1", "v0.13.0", "v0.14.0", "v0.15.0", "v0.16.1", "v0.17.1",
            "v0.18.0", "v0.19.0", "v0.20.0", "v0.21.0", "v0.22.0", "v0.23.0")
FILES = {
    "tensorflow/addons": (TFA_TAGS, ("tensorflow_addons/optimizers/tests/weight_decay_optimizers_test.py",)),
    "OverLordGoldDragon/keras-adamw": (("v1.38",), ("tests/test_optimizers.py", "tests/backend.py",
                                                    "tests/__init__.py", "example.py")),
}


def cached(repo, tag, path):
    """Where ``path`` of ``repo`` at ``tag`` lies in the cache."""
    return os.path.join(CACHE, repo.replace("/", "+"), tag, path)


def read(repo, tag, path, mirror=None):
    if mirror:
        return subprocess.check_output(["git", "--git-dir" if not os.path.isdir(os.path.join(mirror, ".git"))
                                        else "-C", mirror, "show", "%s:%s" % (tag, path)])
    url = "https://raw.githubusercontent.com/%s/%s/%s" % (repo, tag, path)
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--mirror", action="append", default=[], metavar="REPO=DIR",
                    help="read REPO (owner/name) from the git repository at DIR")
    args = ap.parse_args(argv)
    mirrors = dict(m.split("=", 1) for m in args.mirror)
    failed = 0
    for repo, (tags, paths) in FILES.items():
        for tag in tags:
            for path in paths:
                target = cached(repo, tag, path)
                try:
                    data = read(repo, tag, path, mirrors.get(repo))
                except (OSError, subprocess.CalledProcessError) as e:
                    print("peer_files: %s@%s:%s not fetched: %s" % (repo, tag, path, e), file=sys.stderr)
                    failed += 1
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(data)
                print("peer_files: %s" % os.path.relpath(target, ROOT))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
