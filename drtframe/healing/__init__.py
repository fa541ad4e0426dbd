"""Healing: change a pruned model's weights, without training, to close the gap its removed blocks left.

healer  the Healer base class and what a healer sees (HealingContext)
apply   fit a healer on calibration text and remove the blocks, as prune, eval and compare do
"""
