"""Open the dashboard bound to this machine only: ``python -m reports [--db PATH]``.

The same as ``streamlit run reports/app.py --server.address localhost -- --db PATH``
(what ``make dashboard`` runs), with Streamlit's usage statistics off. Streamlit would
otherwise listen on every interface.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def command(argv: list[str] | None = None, prog: str = "python -m reports") -> list[str]:
    """The ``streamlit run`` command line for these arguments."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="results database (default: $TUNEBENCH_RESULTS or "
                        "results/tunebench.db)")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="localhost",
                        help="interface to listen on (default: localhost only)")
    args = parser.parse_args(argv)
    line = [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.address", args.address, "--server.port", str(args.port),
            "--browser.gatherUsageStats", "false"]
    return [*line, "--", "--db", args.db] if args.db else line


def launch(line: list[str]) -> None:
    """Replace this process with Streamlit (Ctrl-C then stops the dashboard itself)."""
    os.execv(line[0], line)


def main() -> None:
    launch(command())


if __name__ == "__main__":
    main()
