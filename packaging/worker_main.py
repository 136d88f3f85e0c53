"""The bundle's ``snapdesk-worker`` executable."""

import sys

from snapdesk.worker.main import main

if __name__ == "__main__":
    sys.exit(main())
