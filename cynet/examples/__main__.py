"""`python -m cynet.examples NAME [options]` (or the `cynet-examples` command): run one example."""
import importlib
import sys

NAMES = ("quickstart", "mnist_mlp", "mnist_cnn", "mnist_convnet", "char_rnn", "tabular", "manual_loop")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in NAMES:
        from . import __doc__ as listing
        print("usage: cynet-examples NAME [options]   (NAME --help for its options)\n")
        print(listing.strip())
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown example {argv[0]!r}; choose one of {', '.join(NAMES)}", file=sys.stderr)
            return 2
        return 0
    importlib.import_module(f"cynet.examples.{argv[0]}").main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
