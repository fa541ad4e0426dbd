"""Multiple-choice evaluation with lm-evaluation-harness-exact scores, computed faster."""
