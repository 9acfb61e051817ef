"""Approaches that misbehave on purpose, loaded into a runner subprocess with ``-p``.

``sleepy`` announces itself in the file named by ``TUNEBENCH_TEST_MARKER`` and then waits, so
a test can interrupt it; ``broken`` raises during ``prepare``; ``dying`` ends its process
there, as a worker killed by the system would.
"""

import os
import sys
import time
from pathlib import Path

from harness.core.approach import Approach
from harness.core.hookspecs import hookimpl
from harness.core.plugins import pm


class Sleepy(Approach):
    name = "sleepy"
    kind = "prompting"
    description = "waits to be interrupted"

    def prepare(self, ctx):
        Path(os.environ["TUNEBENCH_TEST_MARKER"]).write_text("preparing")
        time.sleep(120)
        raise AssertionError("was not interrupted")


class Broken(Approach):
    name = "broken"
    kind = "prompting"
    description = "fails while preparing"

    def prepare(self, ctx):
        raise RuntimeError("deliberate failure in prepare")


class Dying(Approach):
    name = "dying"
    kind = "prompting"
    description = "its process dies while preparing"

    def prepare(self, ctx):
        os._exit(3)


@hookimpl
def register_approaches(register):
    register(Sleepy)
    register(Broken)
    register(Dying)


pm.register(sys.modules[__name__], name="runner_plugins")
