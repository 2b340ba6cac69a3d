"""`python -m taskorch`: the same as the `taskorch` command."""

import sys

from taskorch.cli import main

if __name__ == "__main__":
    sys.exit(main())
