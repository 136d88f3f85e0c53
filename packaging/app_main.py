"""The bundle's ``snapdesk`` executable: the window, or the command line given a command."""

import sys

from snapdesk.cli import main

if __name__ == "__main__":
    sys.exit(main())
