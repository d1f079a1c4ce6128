"""``python -m trellis_slack``: the same as the ``trellis-slack`` command."""

import sys

from trellis_slack.cli import main

if __name__ == "__main__":
    sys.exit(main())
