"""The `oppy-stream` command: the CLI, started so that a Ctrl-C while it is still loading its libraries (ONNX
Runtime, Numba, PyAV: a second or two) ends it in one line, as an interrupt later does."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("oppy-stream: interrupted while starting", file=sys.stderr)
        return 128 + signal.SIGINT
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
