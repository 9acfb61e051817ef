"""The ``tunebench`` console command the package installs: its sub-commands run the
experiment runner, the dashboard's command line and the export, as their ``python -m`` forms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import suites_folder
from tests.conftest import HELPERS, query_db

SCRIPT = Path(sys.executable).with_name("tunebench")


def tunebench(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(HELPERS)}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_package_installs_the_command_and_it_lists_its_sub_commands(tmp_path):
    assert SCRIPT.is_file(), "pip install -e . should install the tunebench console script"
    shown = tunebench("--help", cwd=tmp_path)
    assert shown.returncode == 0
    for name in ("run", "dashboard", "export"):
        assert f"\n  {name} " in shown.stdout


def test_an_unknown_sub_command_is_a_usage_error(tmp_path):
    wrong = tunebench("bench", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "unknown command 'bench'" in wrong.stderr and "run " in wrong.stderr


def test_sub_command_help_is_the_python_m_forms_help_under_the_commands_name(tmp_path):
    shown = tunebench("export", "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "--margin" in shown.stdout
    dashboard = tunebench("dashboard", "--help", cwd=tmp_path)
    assert dashboard.returncode == 0
    assert "tunebench dashboard" in dashboard.stdout and "--db" in dashboard.stdout


def test_suites_of_the_current_folder_come_before_the_checkouts(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_mine.py").write_text("def test_x():\n    pass\n")
    assert suites_folder(tmp_path) == tmp_path / "suites"
    assert (suites_folder(tmp_path / "suites") / "test_accuracy.py").is_file()  # the checkout's


@pytest.mark.slow
def test_run_then_export_from_any_folder(tmp_path, tiny_model_dir):
    ran = tunebench("run", "--approach=zero-shot", "--budget=smoke", f"--model={tiny_model_dir}",
                    "--results=r.db", "-k", "accuracy", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = query_db(tmp_path / "r.db", "SELECT approach, status FROM runs")
    assert [tuple(row) for row in rows] == [("zero-shot", "finished")]
    exported = tunebench("export", "--db", "r.db", "--out", "report.md", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "zero-shot" in (tmp_path / "report.md").read_text()
