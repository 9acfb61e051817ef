"""Embedded model load times: first load (GGUF dequantize + convert) vs cached reload.

    python benchmarks/bench_model_load.py [--repeats 5]

The first load runs in an empty temporary cache directory; the reloads read the safetensors
folder it wrote. Target: cached reload under 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TUNEBENCH_CACHE"] = cache
        import torch

        from harness.models.loading import EMBEDDED_MODEL, load_model, resolve_model

        started = time.perf_counter()
        spec = resolve_model(EMBEDDED_MODEL)
        load_model(spec, torch.device("cpu"), torch.float32)
        first = time.perf_counter() - started
        reloads = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            load_model(resolve_model(EMBEDDED_MODEL), torch.device("cpu"), torch.float32)
            reloads.append(time.perf_counter() - started)
    print(f"first load (convert GGUF -> safetensors, then load): {first:.1f} s")
    print(f"cached reload: median {statistics.median(reloads):.2f} s, "
          f"max {max(reloads):.2f} s over {args.repeats}")


if __name__ == "__main__":
    main()
