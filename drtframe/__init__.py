"""drtframe: layer pruning for LLMs that sees the Silent and Decisive phases of the decision.

The public API that plugins build on is exported here; everything else is internal.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

# name -> module that defines it; imported on first use, so `drtframe --help` and the CLI's
# light commands do not pay for torch and transformers (PEP 562 module __getattr__).
_EXPORTS = {
    "Architecture": ".models.architecture",
    "Benchmark": ".evaluation.benchmark",
    "ChunkedBenchmark": ".evaluation.chunked",
    "CompareRequest": ".comparison.request",
    "CompareResult": ".comparison.result",
    "DecisionProfile": ".probing.profile",
    "DrtframeError": ".errors",
    "Healer": ".healing.healer",
    "HealingContext": ".healing.healer",
    "ContinuationBenchmark": ".evaluation.continuation",
    "ItemOptions": ".scoring.calibration_items",
    "ItemWindow": ".scoring.calibration_items",
    "MCItem": ".evaluation.items",
    "ModelHandle": ".models.handle",
    "Options": ".plugin_system.options",
    "OutputHead": ".forward.output_head",
    "Probe": ".probing.probe",
    "ProbeContext": ".probing.probe",
    "PrunePlan": ".scoring.schedule",
    "Recording": ".evaluation.stacked_replay",
    "ReplayStates": ".evaluation.stacked_replay",
    "RollingBenchmark": ".evaluation.rolling",
    "Resume": ".evaluation.stacked_replay",
    "Schedule": ".scoring.schedule",
    "ScheduleStopped": ".errors",
    "Scorer": ".scoring.scorer",
    "ScoringContext": ".scoring.scorer",
    "SkipScorer": ".scoring.skip",
    "TemplateBenchmark": ".evaluation.templates",
    "TextBenchmark": ".evaluation.text_benchmark",
    "block_inputs": ".forward.hidden_states",
    "choice_scores": ".evaluation.loglikelihood",
    "choice_scores_without": ".evaluation.loglikelihood",
    "compare": ".comparison.runner",
    "decision_profile": ".probing.profile",
    "encode_pair": ".evaluation.tokenize",
    "final_profile": ".pruning.runner",
    "get_path": ".models.architecture",
    "guard_verdict": ".pruning.runner",
    "hookimpl": ".plugin_system.hookspecs",
    "layer_scores": ".probing.lens",
    "lens_profile": ".probing.lens",
    "load_registry": ".plugin_system.manager",
    "model_max_length": ".evaluation.loglikelihood",
    "next_token_nll": ".forward.output_head",
    "profile_readout": ".probing.lens",
    "read_recorded": ".evaluation.stacked_replay",
    "rechecked": ".scoring.scorer",
    "record": ".evaluation.stacked_replay",
    "recorded_without": ".evaluation.stacked_replay",
    "removed_block": ".forward.hidden_states",
    "replay": ".evaluation.stacked_replay",
    "resumable": ".forward.hidden_states",
    "resumed_after": ".forward.hidden_states",
    "row_logsumexp": ".forward.logits",
    "run_blocks": ".forward.hidden_states",
    "same_weights": ".models.weights",
    "scores_in_original_numbering": ".scoring.schedule",
    "truncate": ".evaluation.tokenize",
    "watch_blocks": ".forward.hidden_states",
    "weights_of": ".models.weights",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'drtframe' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


try:
    __version__ = version("drtframe")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [*sorted(_EXPORTS), "__version__"]
