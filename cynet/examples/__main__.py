"""`python -m cynet.examples NAME [options]` (or the `cynet-examples` command): run one example."""
import importlib
import sys

NAMES = ("quickstart", "mnist_mlp", "mnist_cnn", "mnist_convnet", "char_rnn", "tabular", "manual_loop")


USAGE = "usage: cynet-examples NAME [options]   (cynet-examples NAME --help lists its options)"


def main(argv=None):
    """Run the example named by argv[0] with the rest of argv; return the exit status.

    `-h`/`--help` prints the list of examples (status 0); no name or an unknown one prints the
    usage and the list to stderr (status 2, as argparse does for a missing argument).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    from . import __doc__ as listing
    if argv and argv[0] in ("-h", "--help"):
        print(f"{USAGE}\n\n{listing.strip()}")
        return 0
    if not argv or argv[0] not in NAMES:
        print(f"{USAGE}\n\n{listing.strip()}\n", file=sys.stderr)
        problem = f"unknown example {argv[0]!r}" if argv else "the example NAME is required"
        print(f"cynet-examples: error: {problem}; choose one of {', '.join(NAMES)}", file=sys.stderr)
        return 2
    importlib.import_module(f"cynet.examples.{argv[0]}").main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
