"""The ``tunebench`` command: one entry point with sub-commands, installed with the package.

    tunebench run --approach=lora --budget=smoke   # pytest suites/ --approach=lora ...
    tunebench dashboard --db results/tunebench.db  # python -m reports
    tunebench export --format lm-eval-json --out results/lm-eval   # python -m reports.export

Each sub-command is the ``python -m`` form it names, with the same options and ``--help``
(the layout of ``git``/``mlflow``: one command, verbs after it). ``run`` needs the suites, which
live in a checkout of the project rather than in the installed package: it looks for
``suites/`` in the current folder, then beside the installed ``harness`` package (an editable
install).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

USAGE = """usage: tunebench COMMAND [OPTIONS]

commands:
  run        run the suites on candidates: pytest suites/ OPTIONS (the experiment runner;
             `tunebench run --help` lists its options under "tunebench")
  dashboard  open the results dashboard on localhost (python -m reports)
  export     write a report, lm-eval results JSON or model cards (python -m reports.export)

`tunebench COMMAND --help` explains a command's options."""


def suites_folder(cwd: Path | None = None) -> Path:
    """``suites/`` of the current folder or of the checkout this package runs from; a
    ``FileNotFoundError`` saying where it looked when neither has one."""
    here = (cwd or Path.cwd()) / "suites"
    checkout = Path(__file__).resolve().parent.parent / "suites"
    for folder in (here, checkout):
        if (folder / "conftest.py").is_file() or any(folder.glob("test_*.py")):
            return folder
    raise FileNotFoundError(
        f"no suites/ folder in {here.parent} or {checkout.parent}: `tunebench run` runs the "
        "suites of a tunebench checkout; cd into one (git clone, then pip install -e .)")


def run(argv: list[str]) -> int:
    """``pytest suites/ ARGV``: the experiment runner, in this process."""
    import pytest

    try:
        folder = suites_folder()
    except FileNotFoundError as error:
        print(f"tunebench run: {error}", file=sys.stderr)
        return 2
    return int(pytest.main([str(folder), "-p", "no:cacheprovider", *argv]))


def dashboard(argv: list[str]) -> int:
    from reports.__main__ import command, launch

    launch(command(argv, prog="tunebench dashboard"))
    return 0  # not reached: launch replaces this process with Streamlit


def export(argv: list[str]) -> int:
    from reports.export import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": run, "dashboard": dashboard, "export": export}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"tunebench: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
