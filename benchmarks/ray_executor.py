"""Wall time of a compare grid on `--executor ray` against the local executor, side by side in one
run, with Ray's start-up cost on its own: starting the cluster, and starting the workers (each loads
the model). Both runs start from an empty cache and must give the same results.csv.

    python benchmarks/ray_executor.py                    # the default grid, 2 workers
    python benchmarks/ray_executor.py --limit 20 --methods reverse_order,block_influence

Run it alone: two CPU-heavy processes on this machine slow each other several-fold.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import ray

from drtframe.comparison.request import DEFAULT_BUDGETS, DEFAULT_LIMIT, DEFAULT_METHODS, CompareRequest
from drtframe.comparison.runner import compare
from drtframe.comparison.workbench import Workbench
from drtframe.execution import LocalExecutor, make_executor
from drtframe.plugin_system.manager import load_registry


def timed(work):
    start = time.perf_counter()
    value = work()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)))
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    args = parser.parse_args()
    registry = load_registry()
    scratch = Path(tempfile.mkdtemp(prefix="ray-bench-"))

    def request(name: str) -> CompareRequest:
        return CompareRequest(methods=tuple(args.methods.split(",")),
                              budgets=tuple(int(k) for k in args.budgets.split(",")), limit=args.limit,
                              output_dir=scratch / name)

    local_load = timed(lambda: LocalExecutor().start(partial(Workbench, request("load"), registry), print))[1]
    local, local_s = timed(lambda: compare(request("local"), registry))
    _, init_s = timed(lambda: ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False))
    probe = make_executor("ray", workers=args.workers)
    _, start_s = timed(lambda: probe.start(partial(Workbench, request("load")), lambda m: None))
    probe.close()
    remote, ray_s = timed(lambda: compare(request("ray"), registry, executor=make_executor("ray", workers=args.workers)))
    ray.shutdown()
    same = (scratch / "ray" / "results.csv").read_bytes() == (scratch / "local" / "results.csv").read_bytes()
    pieces = local.computed
    print(f"grid: {len(local.methods)} methods, budgets {args.budgets}, {args.limit} items per benchmark, "
          f"{pieces} pieces of work")
    print(f"local executor (1 process, torch on all cores): {local_s:7.1f} s  (model load {local_load:.1f} s)")
    print(f"ray executor ({args.workers} workers, 1 CPU each):     {ray_s:7.1f} s  "
          f"(cluster start {init_s:.1f} s, separately; workers started and model loaded {start_s:.1f} s)")
    print(f"ray / local wall time: {ray_s / local_s:.2f}x; results.csv identical: {same}")


if __name__ == "__main__":
    main()
