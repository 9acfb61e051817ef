"""An approach whose Ray worker is killed in the middle of its cell, once; loaded into a runner
subprocess with ``-p ray_plugins`` (tests/test_matrix_runner.py).

``lost-once`` is zero-shot under another name, so its rows must equal zero-shot's. The first
time it generates (the accuracy suite's second test: the first has written its rows to the
cell's private results file by then) it writes its process id and Ray node to the file named by
``TUNEBENCH_TEST_KILLED`` and kills its own process with SIGKILL, as the OOM killer or a
preempted machine would. Once that file exists it runs to the end.
"""

import json
import os
import signal
import sys
from pathlib import Path

from harness.core.hookspecs import hookimpl
from harness.core.plugins import pm
from plugins.prompting import ZeroShot


class LostOnce(ZeroShot):
    name = "lost-once"
    description = "zero-shot whose worker is killed mid-cell the first time it generates"

    def prepare(self, ctx):
        candidate = super().prepare(ctx)
        generate = candidate.generate

        def generate_unless_first(*args, **kwargs):
            marker = Path(os.environ["TUNEBENCH_TEST_KILLED"])
            if not marker.exists():
                import ray

                node = ray.get_runtime_context().get_node_id()
                marker.write_text(json.dumps({"pid": os.getpid(), "node": node}))
                os.kill(os.getpid(), signal.SIGKILL)
            return generate(*args, **kwargs)

        candidate.generate = generate_unless_first
        return candidate


@hookimpl
def register_approaches(register):
    register(LostOnce)


pm.register(sys.modules[__name__], name="ray_plugins")
