"""Where a grid's work runs: in this process (`local`, the default) or on a Ray cluster (`ray`).

executor      the interface every executor offers, task failures, and the in-process executor
ray_executor  one Ray actor per worker, each holding the model; imported only when chosen
"""

from .executor import Executor, Failure, LocalExecutor, Worker, make_executor

__all__ = ["Executor", "Failure", "LocalExecutor", "Worker", "make_executor"]
