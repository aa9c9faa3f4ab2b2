"""``python -m optcompat.state inspect FILE`` / ``convert IN OUT``.

``inspect`` prints what a state file holds -- optimizer, family, convention, step,
hyperparameters, variables -- for optcompat's ``.npz`` and for the files :func:`read` reads
(a TF checkpoint, ``.h5``, ``.keras``, ``.weights.h5``), with the file's format, the versions it
records and the variables' names where it has them (:mod:`._inspect`).  ``convert`` writes any of those as
the portable ``.npz`` (e.g. an OptimizerV2 checkpoint, read where TensorFlow is installed,
for a Keras 3 run on JAX)."""
import argparse
import sys

from . import StateError, _inspect, read, write


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m optcompat.state", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    p = sub.add_parser("inspect", help="print what a state file holds")
    p.add_argument("file")
    p = sub.add_parser("convert", help="write a state file (or a host's file) as optcompat's .npz")
    p.add_argument("input")
    p.add_argument("output")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            print(_inspect.summary(args.file))
        else:
            state = read(args.input)
            write(state, args.output)
            print("wrote %s: %s state, step %d, %d variables (from %s)"
                  % (args.output, state.kind, state.iterations, len(state.variables), args.input))
    except (StateError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
