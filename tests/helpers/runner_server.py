"""A fork server for the tests' runner sessions: ``python -m pytest suites/ ...`` without paying
the interpreter's start and the heavy imports again for every session.

The server imports the third-party libraries every session needs (torch, transformers, peft,
pandas, scipy, scikit-learn) once, then reads one request per line on stdin (JSON: pytest's
``args``, ``cwd``, ``env``, ``stdout``, ``stderr``) and forks a child per request. The child is
a new process like any other (its own pid, signals, exit status, files): it takes the request's
working folder, environment, ``PYTHONPATH`` entries and output files, runs pytest's console
entry point and exits with its status. The server answers ``{"pid": ...}`` at once and
``{"returncode": ...}`` when the child ends (negative: the signal that ended it, as
``subprocess`` reports it). This is the zygote pattern of Android and of Python's
``multiprocessing`` "forkserver" start method.

Nothing of tunebench is imported here: ``harness.core.plugins`` reads ``TUNEBENCH_LOAD_PLUGINS``
when imported, so each child imports tunebench itself, under its own environment. Libraries
that read the environment when imported and that tests vary (``datasets``' offline switch,
MLflow, Ray) are left to the child too.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

PRELOADED = ("torch", "transformers", "transformers.models.llama.modeling_llama", "peft",
             "pandas", "pyarrow", "scipy.stats", "scipy.integrate", "sklearn.linear_model",
             "safetensors.torch", "tokenizers")


def run_child(request: dict) -> None:
    """In the forked child: become the requested ``python -m pytest ...`` and never return."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[1:1] = [p for p in extra if p not in sys.path]
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        nothing = os.open(os.devnull, os.O_RDONLY)  # the requests are the server's, not ours
        os.dup2(nothing, 0)
        os.close(nothing)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import pytest

        sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"),
                    *request["args"]]

        try:
            code = pytest.console_main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        atexit._run_exitfuncs()
        os._exit(int(code))


def returncode(status: int) -> int:
    """``waitpid``'s status as ``subprocess`` reports it."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main() -> None:
    for name in PRELOADED:
        __import__(name)
    answers = sys.stdout
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(request)
        print(json.dumps({"pid": pid}), file=answers, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": returncode(status)}), file=answers, flush=True)


class Forked:
    """A session forked by the server: the parts of ``subprocess.Popen`` the tests use."""

    def __init__(self, server: RunnerServer, pid: int, stdout: Path, stderr: Path) -> None:
        self.server, self.pid, self.stdout, self.stderr = server, pid, stdout, stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        try:
            return self.wait(0.0)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                self.returncode = self.server.answer(timeout)["returncode"]
            except TimeoutError:
                raise subprocess.TimeoutExpired(f"pytest (pid {self.pid})", timeout) from None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.stdout.read_text(), self.stderr.read_text()


class RunnerServer:
    """The client: starts the server on first use and runs pytest sessions through it, one
    at a time (``run`` keeps ``subprocess.run``'s contract, ``start`` a ``Popen``'s)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.outputs = tempfile.TemporaryDirectory(prefix="runner-server-")
        self.started = 0
        self.current: Forked | None = None
        """The last child; its exit is read before the next one starts (a test that failed
        while its child ran leaves it to be killed here, keeping the answers in step)."""

    def answer(self, timeout: float | None) -> dict:
        """The server's next line; ``TimeoutError`` if none within ``timeout`` seconds."""
        assert self.process is not None and self.process.stdout is not None
        if timeout is not None:
            ready, _, _ = select.select([self.process.stdout], [], [], max(timeout, 0))
            if not ready:
                raise TimeoutError
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the runner server ended (exit {self.process.wait()})")
        return json.loads(line)

    def start(self, args: list[str], cwd: Path, env: dict[str, str]) -> Forked:
        """Fork ``pytest ARGS`` in ``cwd`` with exactly ``env``; its output goes to files."""
        alive = self.process is not None and self.process.poll() is None
        if alive and self.current is not None and self.current.poll() is None:
            self.current.kill()
            self.current.wait()
        if not alive:
            self.process = subprocess.Popen(
                [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True, bufsize=1)
            assert self.answer(None) == {"ready": True}
        assert self.process.stdin is not None
        self.started += 1
        out = Path(self.outputs.name, f"{self.started}.out")
        err = Path(self.outputs.name, f"{self.started}.err")
        self.process.stdin.write(json.dumps({
            "args": args, "cwd": str(cwd), "env": env, "stdout": str(out),
            "stderr": str(err)}) + "\n")
        self.process.stdin.flush()
        self.current = Forked(self, self.answer(None)["pid"], out, err)
        return self.current

    def run(self, args: list[str], cwd: Path, env: dict[str, str],
            timeout: float) -> subprocess.CompletedProcess:
        return self.finish(self.start(args, cwd, env), timeout)

    @staticmethod
    def finish(forked: Forked, timeout: float) -> subprocess.CompletedProcess:
        """Wait for ``forked`` like ``subprocess.run``: killed after ``timeout`` seconds."""
        try:
            code = forked.wait(timeout)
        except subprocess.TimeoutExpired:
            forked.kill()
            forked.wait()
            raise
        stdout, stderr = forked.communicate()
        return subprocess.CompletedProcess(["pytest", f"(pid {forked.pid})"], code, stdout,
                                           stderr)

    def close(self) -> None:
        if self.current is not None and self.current.poll() is None:
            self.current.kill()
            self.current.wait()
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=30)
        self.outputs.cleanup()


if __name__ == "__main__":
    main()
