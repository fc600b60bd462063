"""`python -m server.serving --parent PID --slots N`: the worker slots' process that a root serve starts."""

import sys

from server.serving.slots import slot_process_main

if __name__ == "__main__":
    slot_process_main(sys.argv[1:])
