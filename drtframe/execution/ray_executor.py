"""Run a grid's tasks on a Ray cluster: one actor per worker, each loading the model once.

Workers receive the factory (the small, picklable request) and task specs, never weights; each
sets torch's thread count to the CPUs Ray gave it. A worker killed mid-task is restarted by Ray
(it reloads the model) and drtframe sends the task to another idle worker, up to `attempts` times.
Only the driver writes results.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import DrtframeError
from .executor import Executor, Failure, Status, Worker, outputs

RESTARTS = 2  # how often Ray restarts a lost worker (which reloads the model) before it is given up


class _RemoteWorker:
    """The actor: a worker built inside the Ray process, with torch limited to the CPUs it was given."""

    def __init__(self, open_worker: Callable[[], Worker]) -> None:
        import ray
        import torch

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        torch.set_num_threads(max(1, int(cpus)))
        self.worker = open_worker()

    def describe(self) -> dict:
        return {**self.worker.describe(), "pid": os.getpid()}

    def run(self, task: Any) -> list:
        return list(outputs(self.worker, task, lambda message: None))


class RayExecutor(Executor):
    """`address`: None joins RAY_ADDRESS if set, else starts a local cluster sized to this machine;
    'auto' or host:port joins an existing one. `workers` defaults to what the cluster's CPUs (and
    GPUs, with `gpus_per_worker`) allow."""

    name = "ray"
    remote = True

    def __init__(self, address: str | None = None, workers: int | None = None, cpus_per_worker: float = 1,
                 gpus_per_worker: float = 0, attempts: int = 3) -> None:
        if workers is not None and workers < 1:
            raise DrtframeError("--workers must be at least 1")
        if cpus_per_worker <= 0 or gpus_per_worker < 0:
            raise DrtframeError("--cpus-per-worker must be positive and --gpus-per-worker at least 0")
        self.address, self.requested = address, workers
        self.cpus, self.gpus, self.attempts = cpus_per_worker, gpus_per_worker, attempts
        self.actors: list = []
        self.lost = 0  # workers lost mid-task, for the record
        self._started_ray = False

    @property
    def workers(self) -> int:
        return len(self.actors)

    def describe(self) -> dict:
        return {**super().describe(), "workers_lost": self.lost}

    def start(self, open_worker: Callable[[], Worker], status: Status) -> list[dict]:
        ray = _import_ray()
        if not ray.is_initialized():
            status(f"connecting to Ray at {self.address}" if self.address else "starting Ray")
            ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            self._started_ray = True
        count = self.requested or self._fitting(ray.cluster_resources())
        remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=RESTARTS)(_RemoteWorker)
        self.actors = [remote.remote(open_worker) for _ in range(count)]
        self._reviving = {}  # a restarting worker's describe() call -> the worker
        status(f"loading the model on {count} Ray worker{'s' if count > 1 else ''}")
        try:
            return ray.get([actor.describe.remote() for actor in self.actors])
        except ray.exceptions.RayError as exc:
            raise DrtframeError(f"a Ray worker could not load the model: {_first_line(exc)}") from None

    def _fitting(self, resources: dict) -> int:
        """How many workers the cluster holds at the requested CPUs (and GPUs) each."""
        count = int(resources.get("CPU", 0) // self.cpus)
        if self.gpus:
            count = min(count, int(resources.get("GPU", 0) // self.gpus))
        if count < 1:
            raise DrtframeError(f"the Ray cluster has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} "
                                f"GPUs: not enough for one worker of {self.cpus:g} CPUs and {self.gpus:g} GPUs")
        return count

    def run(self, tasks: Sequence[Any], status: Status) -> Iterator[tuple[Any, Any]]:
        """Keep every live worker busy; a task whose worker died goes to another worker, and the lost
        worker gets work again once Ray has restarted it and it has reloaded the model."""
        ray = _import_ray()
        waiting = deque((task, 0, None) for task in tasks)  # (task, attempts so far, the worker that lost it)
        idle = deque(a for a in self.actors if a not in self._reviving.values())
        running: dict = {}
        while waiting or running:
            while waiting and idle:
                task, attempt, lost_on = waiting.popleft()
                actor = next((a for a in idle if a is not lost_on), idle[0])
                idle.remove(actor)
                running[actor.run.remote(task)] = (actor, task, attempt)
            pending = list(running) + (list(self._reviving) if waiting else [])
            if not pending:
                raise DrtframeError("every Ray worker was lost; finished cells are kept and a rerun resumes")
            (ref,), _ = ray.wait(pending, num_returns=1)
            if ref in self._reviving:
                actor = self._reviving.pop(ref)
                try:
                    ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayError:  # restarted too often: gone for good
                    self.actors.remove(actor)
                continue
            actor, task, attempt = running.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self.lost += 1
                # answers once Ray has restarted the worker and it has reloaded the model
                self._reviving[actor.describe.options(max_task_retries=-1).remote()] = actor
                if attempt + 1 < self.attempts:
                    status(f"a worker was lost mid-task; retrying on another ({attempt + 1}/{self.attempts - 1})")
                    waiting.appendleft((task, attempt + 1, actor))
                else:
                    yield task, Failure(f"lost its worker {self.attempts} times: {_first_line(exc)}")
                continue
            idle.append(actor)
            for output in results:
                yield task, output

    def close(self) -> None:
        if not self.actors and not self._started_ray:
            return
        ray = _import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise DrtframeError('--executor ray needs Ray: pip install "drtframe[ray]"') from None
    return ray
