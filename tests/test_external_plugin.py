"""An external plugin package, pip-installed, joins through its entry point alone."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, RUNNER_SERVER, built_once, run_suites

pytestmark = pytest.mark.slow  # installs a package and runs subprocesses

EXAMPLE = ROOT / "examples" / "tunebench-top-layers"


def pip_install_example(site: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """pip-installs the example plugin (once per test run) into a folder put on the path of
    the runs below."""
    site = built_once(tmp_path_factory, "site", pip_install_example)
    assert (site / "tunebench_top_layers" / "__init__.py").is_file()
    return site


def plugin_env(site, allow: str | None = None) -> dict[str, str | None]:
    """Plugin folder on the path; ``allow`` is TUNEBENCH_LOAD_PLUGINS (None: unset, load all)."""
    return {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "TUNEBENCH_LOAD_PLUGINS": allow}


@pytest.mark.parametrize("allow", [None, "tunebench_top_layers"], ids=["unset", "allow-listed"])
def test_installed_plugin_is_selectable_by_name(installed, tiny_model_dir, tmp_path, allow):
    env = plugin_env(installed, allow) | {"TUNEBENCH_CACHE": str(tmp_path / "cache")}
    result = run_suites(["--approach=top-layers", "--budget=smoke", f"--model={tiny_model_dir}",
                         "--results=r.db", "--set", "top-layers.layers=1", "-q"], tmp_path,
                        env=env, suites=None if allow is None else ["test_accuracy.py"])
    # every suite measures the plugin's candidate once; that it loads when allow-listed needs
    # one suite
    assert result.returncode == 0, result.stdout + result.stderr
    db = sqlite3.connect(tmp_path / "r.db")
    assert db.execute("SELECT approach, status FROM runs").fetchall() == [
        ("top-layers", "finished")]
    assert db.execute("SELECT count(*) FROM metrics WHERE name = 'accuracy'").fetchone() == (1,)


def test_plugin_runs_the_importable_contract_test(installed, tmp_path):
    result = RUNNER_SERVER.run(  # python -m pytest in a new process, as run_suites does
        [str(EXAMPLE / "tests"), "-q", "-p", "no:cacheprovider", "--rootdir", str(EXAMPLE)],
        tmp_path, {k: v for k, v in (os.environ | plugin_env(installed)).items()
                   if v is not None}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_allow_list_keeps_it_out(installed, tmp_path):
    env = plugin_env(installed, allow="")
    result = run_suites(["--approach=top-layers"], tmp_path, env=env)
    assert result.returncode == 4
    assert "unknown approach 'top-layers'" in result.stderr
