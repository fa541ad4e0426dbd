"""Pruning a model for real: remove the chosen blocks, check the decision, measure, save.

runner  `drtframe prune` as a library call
saving  a pruned model written so plain `from_pretrained` reloads it exactly
speed   timed greedy generations, for what pruning buys in decoding speed
"""
