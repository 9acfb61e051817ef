"""An external plugin package, pip-installed, joins through its entry point alone."""

import os
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_suites

pytestmark = pytest.mark.slow  # installs a package and runs subprocesses

EXAMPLE = ROOT / "examples" / "tunebench-top-layers"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-installs the example plugin into a folder put on the path of the runs below."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )
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
                        env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    db = sqlite3.connect(tmp_path / "r.db")
    assert db.execute("SELECT approach, status FROM runs").fetchall() == [
        ("top-layers", "finished")]
    assert db.execute("SELECT count(*) FROM metrics WHERE name = 'accuracy'").fetchone() == (1,)


def test_plugin_runs_the_importable_contract_test(installed, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLE / "tests"), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(EXAMPLE)],
        cwd=tmp_path, capture_output=True, text=True,
        env={k: v for k, v in (os.environ | plugin_env(installed)).items() if v is not None},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_allow_list_keeps_it_out(installed, tmp_path):
    env = plugin_env(installed, allow="")
    result = run_suites(["--approach=top-layers"], tmp_path, env=env)
    assert result.returncode == 4
    assert "unknown approach 'top-layers'" in result.stderr
