"""`drtframe compare` as a library call: plan every method once, evaluate every distinct removed set
once per benchmark, reuse whatever the store already holds, and write each piece as it finishes."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

from ..errors import DrtframeError
from ..healing.apply import heal, resolve_healer
from ..evaluation.runner import resolve_benchmark
from ..methods import resolve_method
from ..models.handle import ModelHandle
from ..models.loading import load_model, resolve_device, resolve_dtype
from ..plugins import Registry, load_registry
from ..pruning import guard_verdict
from .cells import BenchmarkItems, cell_from_scores, load_benchmark, profile_from_scores
from .fingerprint import model_fingerprint
from .outputs import write_outputs
from .request import NO_HEALER, CompareRequest
from .result import CompareResult
from .sequences import calibration_identity, plan_method
from .store import Store, content_key
from .variants import Variant, variant_scores


@dataclass(frozen=True)
class GridProgress:
    """Where the grid stands: pieces of work done of `total` (`cached` of them read from the store)."""

    done: int
    total: int
    cached: int
    description: str


def _check_writable(directory: Path) -> None:
    """Refuse an output directory that cannot be created or written, before anything is loaded."""
    existing = directory.expanduser().resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise DrtframeError(f"cannot write results to {directory}: {existing} is not a writable directory")


class _Tally:
    """Counts finished work and reports it through the caller's callback."""

    def __init__(self, report: Callable[[GridProgress], None], total: int) -> None:
        self.report, self.total, self.done, self.cached = report, total, 0, 0
        self.description = "starting"

    def say(self, description: str) -> None:
        self.description = description
        self.report(GridProgress(self.done, self.total, self.cached, description))

    def finish(self, n: int = 1, cached: bool = False) -> None:
        self.done += n
        self.cached += n if cached else 0
        self.say(self.description)


def compare(request: CompareRequest, registry: Registry | None = None,
            progress: Callable[[GridProgress], None] = lambda p: None) -> CompareResult:
    """Run (or resume) the grid of `request` and write its outputs to `request.output_dir`."""
    registry = registry or load_registry()
    request.check()
    methods = {name: resolve_method(registry, name, request.options.get(name, {})) for name in request.methods}
    healers = {name: resolve_healer(registry, name, request.options.get(name, {})) for name in request.heal
               if name != NO_HEALER}
    for name in request.benchmarks:
        resolve_benchmark(registry, name)  # an unknown name is told apart from missing data
    request.check_data()
    if healers or any(m.scorer.needs_calibration for m in methods.values()):
        request.calibration.check()
    benches = [load_benchmark(registry, name, request.eval_split, request.format, request.limit, request.local_data)
               for name in request.benchmarks]
    guard = request.guard.load(registry) if request.guard else None
    _check_writable(request.output_dir)

    per_variant = (1 if guard else 0) + len(benches)
    tally = _Tally(progress, len(methods) + per_variant * (1 + len(methods) * len(request.budgets)))
    tally.say(f"loading {request.model.source}")
    handle = load_model(request.model, registry)
    if max(request.budgets) >= handle.num_layers:
        raise DrtframeError(f"--remove {max(request.budgets)} leaves no blocks: the model has {handle.num_layers}")
    store = Store(request.output_dir)
    store.check_writable()
    tally.say("fingerprinting the weights")
    dtype = str(resolve_dtype(request.model.dtype, resolve_device(request.model.device))).removeprefix("torch.")
    base_key = {"model": model_fingerprint(handle), "dtype": dtype, "drtframe": _version()}

    outcomes = []
    for name, method in methods.items():
        tally.say(f"planning {name}")
        outcome, cached = plan_method(name, method, handle, request.budgets, request.calibration, request.batch_size,
                                      store, base_key, status=tally.say)
        outcomes.append(outcome)
        tally.finish(cached=cached)
    variants = [()] + sorted({v for o in outcomes for v in o.removed.values() if v is not None})
    tally.total = tally.done + per_variant * (len(variants) + (len(variants) - 1) * len(healers))

    pieces = []
    if guard:
        items = guard[0]
        pieces.append(_Piece({**base_key, "kind": "profile", "items": content_key({"items": [
            [i.contexts, i.continuations, i.gold] for i in items]})}, GUARD, items,
            lambda scores, v, items=items: profile_from_scores(scores, items, _kept(handle, v)), True))
    for bench in benches:
        pieces.append(_Piece({**base_key, "kind": "cell", **bench.identity()}, bench.name, bench.items,
                             lambda scores, v, b=bench: cell_from_scores(b, scores), False))
    done: dict[tuple, dict] = {}  # (piece label, removed, healer) -> value
    for piece in pieces:
        for variant, value in _run(handle, variants, piece, store, tally, request.replay).items():
            done[(piece.label, variant, NO_HEALER)] = value
    for name, healer in healers.items():
        identity = {"healer": name, "options": healer.options.model_dump(),
                    "calibration": calibration_identity(request.calibration), "batch_size": request.batch_size}
        for variant in variants[1:]:
            for label, value in _run_healed(handle, variant, healer, identity, pieces, store, tally,
                                            request).items():
                done[(label, variant, name)] = value

    profiles = {(v, h): value for (label, v, h), value in done.items() if label == GUARD}
    if guard:
        dense_layer = profiles[((), NO_HEALER)]["transition_layer"]
        for profile in profiles.values():
            profile["verdict"] = guard_verdict(dense_layer, profile["transition_layer"])
    cells = {(v, h, label): value for (label, v, h), value in done.items() if label != GUARD}

    result = CompareResult(
        request, {"source": request.model.source, "fingerprint": base_key["model"], "num_layers": handle.num_layers,
                  "dtype": dtype}, tuple(outcomes), tuple(_bench_info(b) for b in benches), cells, profiles,
        guard[1] if guard else None, tally.done - tally.cached, tally.cached)
    tally.say("writing results")
    write_outputs(result, request.output_dir)
    return result


GUARD = "guard items"  # the label of the decision-profile piece


class _Piece(NamedTuple):
    """One kind of work done for every variant: its key, what it reads and how scores become a value."""

    key: dict
    label: str
    items: list
    build: Callable  # (per-item scores, removed set) -> stored value
    per_layer: bool

    def store_key(self, variant: Variant, heal: dict | None = None) -> str:
        return content_key({**self.key, "removed": list(variant), **({"heal": heal} if heal else {})})


def _run(handle: ModelHandle, variants: list[Variant], piece: _Piece, store: Store, tally: _Tally,
         replay: bool) -> dict[Variant, dict]:
    """Every variant's stored value; the missing ones computed (dense first, then each by replay) and stored."""
    kind = piece.key["kind"]
    found = {v: value for v in variants if (value := store.get(kind, piece.store_key(v))) is not None}
    tally.finish(len(found), cached=True)
    missing = [v for v in variants if v not in found]
    for variant, scores in variant_scores(handle, piece.items, missing, piece.per_layer, replay):
        found[variant] = piece.build(scores, variant)
        store.put(kind, piece.store_key(variant), found[variant])
        tally.finish()
        tally.say(f"{piece.label}: {len(found)}/{len(variants)} variants done")
    return {v: found[v] for v in variants}


def _run_healed(handle: ModelHandle, variant: Variant, healer, identity: dict, pieces: list[_Piece], store: Store,
                tally: _Tally, request: CompareRequest) -> dict[str, dict]:
    """The healed variant's stored values; the missing ones computed on the healed model run whole (a healer
    may change any kept block, so nothing is replayed), after which the dense weights are restored."""
    found = {p.label: value for p in pieces
             if (value := store.get(p.key["kind"], p.store_key(variant, identity))) is not None}
    tally.finish(len(found), cached=True)
    missing = [p for p in pieces if p.label not in found]
    if not missing:
        return found
    original = {name: tensor.detach().clone() for name, tensor in handle.model.state_dict().items()}
    try:
        tally.say(f"healing {','.join(map(str, variant))} with {healer.name}")
        record = heal(handle, variant, healer, request.calibration, request.batch_size)
        for piece in missing:
            tally.say(f"{piece.label}: healed variant {','.join(map(str, variant))}")
            scores = dict(variant_scores(handle, piece.items, [variant], piece.per_layer, replay=False))[variant]
            found[piece.label] = {**piece.build(scores, variant), "healing": record}
            store.put(piece.key["kind"], piece.store_key(variant, identity), found[piece.label])
            tally.finish()
    finally:
        handle.model.load_state_dict(original)
    return found


def _kept(handle: ModelHandle, variant: Variant) -> tuple[int, ...]:
    return tuple(i for i in handle.kept if i not in variant)


def _bench_info(bench: BenchmarkItems) -> dict:
    return {"name": bench.name, "split": bench.split, "format": bench.format, "n": len(bench.items),
            "chance": bench.chance, "items_key": bench.identity()["items"]}


def _version() -> str:
    from .. import __version__

    return __version__
