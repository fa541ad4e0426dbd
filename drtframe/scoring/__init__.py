"""Scoring and ordering the removals: from a method name to a pruning plan. The scorers and
schedules themselves are plugins (`plugins/`); this is what they build on and how they are run.

scorer             the Scorer interface, its context, and the float32 re-check of bfloat16 leaders
skip               the SkipScorer base: a block judged by a loss with it skipped (SLEB and its kin)
schedule           the Schedule interface: how scores become an order of removals, and PrunePlan
methods            `scorer@schedule` names turned into configured objects
calibration        calibration tokens for the scorers that read text
calibration_items  calibration MC items, kept clear of the evaluation window
runner             `drtframe score` as a library call
"""
