"""drtframe: layer pruning for LLMs that sees the Silent and Decisive phases of the decision.

The public API that plugins build on is exported here; everything else is internal.
"""

from importlib.metadata import PackageNotFoundError, version

from .architecture import Architecture
from .errors import DrtframeError
from .evaluation.benchmark import Benchmark
from .evaluation.items import MCItem
from .evaluation.loglikelihood import choice_scores
from .evaluation.templates import TemplateBenchmark
from .hidden_states import run_blocks, watch_blocks
from .hookspecs import hookimpl
from .models.handle import ModelHandle
from .options import Options
from .probing.probe import Probe, ProbeContext
from .schedule import PrunePlan, Schedule, scores_in_original_numbering
from .scoring import Scorer, ScoringContext
from .skip_scoring import SkipScorer

try:
    __version__ = version("drtframe")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [
    "Architecture", "Benchmark", "DrtframeError", "MCItem", "ModelHandle", "Options", "Probe", "ProbeContext", "PrunePlan", "Schedule",
    "Scorer", "TemplateBenchmark", "ScoringContext", "__version__", "choice_scores", "hookimpl", "scores_in_original_numbering",
    "SkipScorer", "run_blocks", "watch_blocks",
]
