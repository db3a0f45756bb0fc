"""``python -m reidlab.train`` = ``reidlab train``: the module torchrun starts (``torchrun -m reidlab.train``)."""

import sys

from reidlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
