"""A fork server for the tests' runner sessions: ``python -m pytest suites/ ...`` without paying
the interpreter's start and the heavy imports again for every session.

The server imports the third-party libraries every session needs (torch, transformers, peft,
pandas, scipy, scikit-learn) once, then reads one request per line on stdin (JSON: pytest's
``args``, ``cwd``, ``env``, ``stdout``, ``stderr``) and forks a child per request. The child is
a new process like any other (its own pid, signals, exit status, files): it takes the request's
working folder, environment, ``PYTHONPATH`` entries and output files, runs pytest's console
entry point and exits with its status. The server answers ``{"started": pid}`` at once and
``{"ended": pid, "returncode": ...}`` when the child ends (negative: the signal that ended it,
as ``subprocess`` reports it); children run side by side, as many as the tests start (several
runners writing one results file). This is the zygote pattern of Android and of Python's
``multiprocessing`` "forkserver" start method.

Nothing of tunebench is imported here: ``harness.core.plugins`` reads ``TUNEBENCH_LOAD_PLUGINS``
when imported, so each child imports tunebench itself, under its own environment. Libraries
that read the environment when imported and that tests vary (``datasets``' offline switch,
MLflow, Ray) are left to the child too; the Hub's offline switch, which the preloaded
transformers reads, is read again from each child's environment
(``reread_offline_switches``). Preloading more (``datasets``, trl, cleanlab) was tried and
undone: the children then pay more in copy-on-write faults than they save in imports, and
pytest can no longer rewrite the pytest plugins those import (anyio).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRELOADED = ("torch", "transformers", "transformers.models.llama.modeling_llama", "peft",
             "pandas", "pyarrow", "scipy.stats", "scipy.integrate", "sklearn.linear_model",
             "safetensors.torch", "tokenizers")
POLL = 0.05
"""Seconds between the server's checks for ended children while any runs."""


def run_child(request: dict) -> None:
    """In the forked child: become the requested ``python -m pytest ...`` and never return."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        reread_offline_switches()
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


def reread_offline_switches() -> None:
    """The Hugging Face Hub's offline switch as the child's environment sets it: the Hub's
    client, which transformers imports (here, in the server), reads ``HF_HUB_OFFLINE`` once,
    when imported, and looks the value up as a module attribute after."""
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = any(os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"}
                                   for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def returncode(status: int) -> int:
    """``waitpid``'s status as ``subprocess`` reports it."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main() -> None:
    """Fork a child per request line as it arrives; report each child's start and end."""
    for name in PRELOADED:
        __import__(name)
    # The preloaded objects out of the collector's reach: a child's collections then skip
    # them (pytest alone runs four full ones at exit) and leave their pages shared, not
    # copied on write (the advice of the gc module's documentation for forking servers).
    gc.freeze()
    answer({"ready": True})
    children: set[int] = set()
    pending, reading = b"", True
    while reading or children:
        ready = select.select([0], [], [], POLL if children else None)[0] if reading else []
        if not reading:
            time.sleep(POLL)
        if ready:
            chunk = os.read(0, 1 << 16)
            reading = bool(chunk)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                pid = os.fork()
                if pid == 0:
                    run_child(json.loads(line))
                children.add(pid)
                answer({"started": pid})
        for pid in list(children):
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                children.discard(pid)
                answer({"ended": pid, "returncode": returncode(status)})


def answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


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
                self.returncode = self.server.returncode(self.pid, timeout)
            except TimeoutError:
                raise subprocess.TimeoutExpired(f"pytest (pid {self.pid})", timeout) from None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.stdout.read_text(), self.stderr.read_text()


class RunnerServer:
    """The client: starts the server on first use and runs pytest sessions through it, as many
    at once as the tests start (``run`` keeps ``subprocess.run``'s contract, ``start`` a
    ``Popen``'s)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.outputs = tempfile.TemporaryDirectory(prefix="runner-server-")
        self.started = 0
        self.running: dict[int, Forked] = {}
        self.ended: dict[int, int] = {}
        self.lines: list[bytes] = []
        self.pending = b""

    def answer(self, timeout: float | None) -> dict:
        """The server's next message; ``TimeoutError`` if none within ``timeout`` seconds."""
        assert self.process is not None and self.process.stdout is not None
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        fd = self.process.stdout.fileno()
        while not self.lines:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"the runner server ended (exit {self.process.wait()})")
            *self.lines, self.pending = (self.pending + chunk).split(b"\n")
        message = json.loads(self.lines.pop(0))
        if "ended" in message:
            self.ended[message["ended"]] = message["returncode"]
            self.running.pop(message["ended"], None)
        return message

    def returncode(self, pid: int, timeout: float | None) -> int:
        """The exit status of child ``pid``, waiting at most ``timeout`` seconds for it."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        while pid not in self.ended:
            self.answer(None if deadline is None else deadline - time.monotonic())
        return self.ended[pid]

    def start(self, args: list[str], cwd: Path, env: dict[str, str]) -> Forked:
        """Fork ``pytest ARGS`` in ``cwd`` with exactly ``env``; its output goes to files."""
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE)
            self.lines, self.pending = [], b""
            assert self.answer(None) == {"ready": True}
        assert self.process.stdin is not None
        self.started += 1
        out = Path(self.outputs.name, f"{self.started}.out")
        err = Path(self.outputs.name, f"{self.started}.err")
        self.process.stdin.write(json.dumps({
            "args": args, "cwd": str(cwd), "env": env, "stdout": str(out),
            "stderr": str(err)}).encode() + b"\n")
        self.process.stdin.flush()
        while "started" not in (message := self.answer(None)):
            pass  # another child's end, recorded by answer()
        forked = Forked(self, message["started"], out, err)
        self.running[forked.pid] = forked
        return forked

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

    def kill_running(self) -> list[Forked]:
        """Kill the children still running (a test that failed or stopped while its child
        ran leaves it here) and wait for them; returns them."""
        left = list(self.running.values())
        for child in left:
            child.kill()
        for child in left:
            child.wait()
        return left

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill_running()
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=30)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.outputs.cleanup()


if __name__ == "__main__":
    main()
