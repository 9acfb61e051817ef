"""The runner server (tests/helpers/runner_server.py) that forks the tests' runner sessions:
each child is a new process with the request's folder, environment, path and output, its exit
status and signals reported as ``subprocess`` reports them, and a child that outlives its
test never puts the answers out of step."""

import os
import signal
import subprocess

import pytest

from tests.conftest import RUNNER_SERVER

pytestmark = pytest.mark.slow  # forks pytest sessions

PROBE = '''
import os, sys, time

def test_where_and_what(helpers_on_path):
    import huggingface_hub.constants
    print("cwd", os.getcwd(), "pid", os.getpid(), "probe", os.environ["PROBE"],
          "HOME" in os.environ, "offline", huggingface_hub.constants.HF_HUB_OFFLINE)
    assert os.environ["PROBE"] == "yes"

def test_slow():
    if os.environ.get("SLEEP"):
        time.sleep(float(os.environ["SLEEP"]))
'''

CONFTEST = '''
import pytest

@pytest.fixture
def helpers_on_path():
    import probe_helper  # importable only through the request's PYTHONPATH
    return probe_helper
'''


@pytest.fixture
def probe(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "probe_helper.py").write_text("")
    offline = {"HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"}
    env = {key: value for key, value in os.environ.items()  # the server has HOME
           if key != "HOME" and key not in offline}
    return tmp_path, {**env, "PROBE": "yes", "PYTHONPATH": str(tmp_path / "lib")}


def test_a_child_runs_in_the_requested_folder_environment_and_path(probe):
    folder, env = probe
    result = RUNNER_SERVER.run([str(folder), "-q", "-s", "-p", "no:cacheprovider"], folder,
                               env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # the child's environment is the request's, not the server's (which has HOME)
    assert f"cwd {folder} pid" in result.stdout and "probe yes False" in result.stdout
    assert "offline False" in result.stdout
    # the Hub's offline switch, read when the preloaded transformers imported it, is the child's
    offline = RUNNER_SERVER.run([str(folder), "-q", "-s", "-p", "no:cacheprovider"], folder,
                                {**env, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert "offline True" in offline.stdout, offline.stdout + offline.stderr
    assert "2 passed" in result.stdout
    failing = RUNNER_SERVER.run([str(folder), "-q", "-p", "no:cacheprovider"], folder,
                                {**env, "PROBE": "no"}, timeout=120)
    assert failing.returncode == 1 and "1 failed, 1 passed" in failing.stdout


def test_signals_timeouts_and_abandoned_children_keep_the_answers_in_step(probe):
    folder, env = probe
    slow = {**env, "SLEEP": "60"}
    args = [str(folder / "test_probe.py::test_slow"), "-q", "-p", "no:cacheprovider"]
    child = RUNNER_SERVER.start(args, folder, slow)
    assert child.poll() is None and child.pid != os.getpid()
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    with pytest.raises(subprocess.TimeoutExpired):
        RUNNER_SERVER.run(args, folder, {**env, "SLEEP": "30"}, timeout=1)
    left = RUNNER_SERVER.start(args, folder, slow)  # left running by its caller
    after = RUNNER_SERVER.run(args, folder, env, timeout=120)
    assert after.returncode == 0 and "1 passed" in after.stdout, after.stdout + after.stderr
    assert left.poll() is None  # the two ran side by side
    assert RUNNER_SERVER.kill_running() == [left]  # as after every test
    assert left.returncode == -signal.SIGKILL and not RUNNER_SERVER.running


def test_children_run_side_by_side_and_end_in_any_order(probe):
    folder, env = probe
    args = [str(folder / "test_probe.py::test_slow"), "-q", "-p", "no:cacheprovider"]
    longer = RUNNER_SERVER.start(args, folder, {**env, "SLEEP": "3"})
    shorter = RUNNER_SERVER.start(args, folder, {**env, "SLEEP": "0.1"})
    assert shorter.wait(timeout=60) == 0  # ends first, while the other still sleeps
    assert longer.poll() is None
    assert longer.wait(timeout=60) == 0 and "1 passed" in longer.communicate()[0]
