"""`python -m optcompat.state inspect FILE` / `convert IN OUT`.

`inspect` prints what a state file holds -- optimizer, family, convention, step,
hyperparameters, variables (a name the host generated for an unnamed variable is marked:
`load` matches it by order, shape and dtype) -- for optcompat's `.npz` and for the files
`optcompat.state.read` reads (a TF checkpoint, `.h5`, `.keras`, `.weights.h5`, a
`torch.save` of an optimizer's `state_dict`).  `convert` writes any of those as the portable
`.npz` (e.g. an OptimizerV2 checkpoint, read where TensorFlow is installed, for a Keras 3 run
on JAX; a torch file, read where torch is installed, for a machine without it).  `inspect`
also gives the file's format, the versions it records and the variables' names where it has
them.  Exit status 2 with the reason on a file it cannot read.

Example:
    ```bash
    python -m optcompat.state inspect run.npz
    python -m optcompat.state convert ckpt/model-100 run.npz   # a TF checkpoint of any family
    python -m optcompat.state inspect opt.pt                   # torch.save(opt.state_dict(), ...)
    ```
"""

import argparse
import sys

from . import StateError
from . import _inspect
from . import read
from . import write


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m optcompat.state", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    p = sub.add_parser("inspect", help="print what a state file holds")
    p.add_argument("file")
    p = sub.add_parser(
        "convert", help="write a state file (or a host's file) as optcompat's .npz"
    )
    p.add_argument("input")
    p.add_argument("output")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            print(_inspect.summary(args.file))
        else:
            state = read(args.input)
            write(state, args.output)
            print(
                "wrote %s: %s state, step %d, %d variables (from %s)"
                % (
                    args.output,
                    state.kind,
                    state.iterations,
                    len(state.variables),
                    args.input,
                )
            )
    except (StateError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
