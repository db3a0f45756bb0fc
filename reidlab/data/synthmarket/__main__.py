"""``python -m reidlab.data.synthmarket`` = ``reidlab data``: generate a SynthMarket dataset."""

import sys

from reidlab.cli import main

sys.exit(main(["data", *sys.argv[1:]]))
