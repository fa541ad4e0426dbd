"""drtframe: layer pruning for LLMs that sees the Silent and Decisive phases of the decision.

The public API that plugins build on is exported here; everything else is internal.
"""

from importlib.metadata import PackageNotFoundError, version

from .architecture import Architecture
from .calibration_items import ItemWindow
from .errors import DrtframeError
from .evaluation.benchmark import Benchmark
from .evaluation.items import MCItem
from .evaluation.loglikelihood import choice_scores, model_max_length
from .evaluation.templates import TemplateBenchmark
from .evaluation.tokenize import encode_pair, truncate
from .hidden_states import block_inputs, resumed_after, run_blocks, watch_blocks
from .hookspecs import hookimpl
from .models.handle import ModelHandle
from .options import Options
from .probing.lens import layer_scores
from .probing.probe import Probe, ProbeContext
from .probing.profile import DecisionProfile, decision_profile
from .schedule import PrunePlan, Schedule, scores_in_original_numbering
from .scoring import Scorer, ScoringContext
from .skip_scoring import SkipScorer

try:
    __version__ = version("drtframe")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [
    "Architecture", "Benchmark", "DecisionProfile", "DrtframeError", "ItemWindow", "MCItem", "ModelHandle", "Options",
    "Probe", "ProbeContext", "PrunePlan", "Schedule", "Scorer", "ScoringContext", "SkipScorer", "TemplateBenchmark",
    "__version__", "block_inputs", "choice_scores", "decision_profile", "encode_pair", "hookimpl", "layer_scores",
    "model_max_length", "resumed_after", "run_blocks", "scores_in_original_numbering", "truncate", "watch_blocks",
]
