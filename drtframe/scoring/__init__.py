"""Scoring and ordering the removals: from a method name to a pruning plan.

scorer             the Scorer interface, its context, and the float32 re-check of bfloat16 leaders
skip               scorers that judge a block by a loss with the block skipped (SLEB and its kin)
schedule           schedules: how scores become an order of removals (one-shot, iterative, ...)
methods            `scorer@schedule` names turned into configured objects
calibration        calibration tokens for the scorers that read text
calibration_items  calibration MC items, kept clear of the evaluation window
runner             `drtframe score` as a library call
"""
