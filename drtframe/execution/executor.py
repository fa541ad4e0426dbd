"""The one small interface between the compare runner and whatever runs its work.

A worker holds a loaded model and turns a task (a small, picklable spec) into outputs; an executor
starts workers and yields each task's outputs as they finish, in whatever order. Only the caller
writes results, so every executor gives the same cache, resume and results. A task that raises is
reported as a `Failure` output and the rest goes on.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import DrtframeError

Status = Callable[[str], None]


class Worker(Protocol):
    def describe(self) -> dict:
        """What this worker loaded (the caller checks that all workers agree)."""

    def run(self, task: Any, status: Status) -> Iterator[Any]:
        """The task's outputs, each yielded as soon as it is ready."""


@dataclass(frozen=True)
class Failure:
    """A task that raised a Python error: the error in one line, with the file and line it came from
    (drtframe's own errors already say what went wrong and where)."""

    error: str

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        if isinstance(exc, DrtframeError):
            return cls(" ".join(str(exc).split()))
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        return cls(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}{where}")


def outputs(worker: Worker, task: Any, status: Status) -> Iterator[Any]:
    """The worker's outputs for `task`, ending with a Failure if it raised (Ctrl-C still stops the run)."""
    try:
        yield from worker.run(task, status)
    except Exception as exc:  # a plugin's bug must not cost the rest of the grid
        yield Failure.of(exc)


class Executor(ABC):
    """Starts workers from a factory and runs tasks on them; use it as a context manager."""

    name = "?"
    remote = False  # True: workers live in other processes and build everything from the factory alone

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many tasks can run at once (the runner splits work into about this many parts)."""

    @abstractmethod
    def start(self, open_worker: Callable[[], Worker], status: Status) -> list[dict]:
        """Start the workers; every worker's `describe()`."""

    @abstractmethod
    def run(self, tasks: Sequence[Any], status: Status) -> Iterator[tuple[Any, Any]]:
        """(task, output) pairs as outputs arrive; each task's outputs end early with a Failure if it raised."""

    def describe(self) -> dict:
        """For the record: which executor, how many workers."""
        return {"name": self.name, "workers": self.workers}

    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """Runs every task in this process, one after another, on one model (the default, and the tests')."""

    name = "local"
    workers = 1

    def start(self, open_worker: Callable[[], Worker], status: Status) -> list[dict]:
        self.worker = open_worker()
        return [self.worker.describe()]

    def run(self, tasks: Sequence[Any], status: Status) -> Iterator[tuple[Any, Any]]:
        for task in tasks:
            for output in outputs(self.worker, task, status):
                yield task, output

    def close(self) -> None:
        self.worker = None


EXECUTORS = ("local", "ray")


def make_executor(name: str, **settings) -> Executor:
    """The executor called `name`; `settings` go to the Ray executor (address, workers, cpus/gpus per worker)."""
    if name == "local":
        if any(v is not None for v in settings.values()):
            raise DrtframeError(f"{', '.join(k for k, v in settings.items() if v is not None)} "
                                f"applies to --executor ray only")
        return LocalExecutor()
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(**{k: v for k, v in settings.items() if v is not None})
    raise DrtframeError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
