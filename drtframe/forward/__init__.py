"""What drtframe does inside a model's forward pass, shared by scorers, probes and the evaluator.

hidden_states  the residual stream between blocks: watch it, record it, resume from it
output_head    the output head computed a tile at a time from the final norm's output
logits         vocabulary-wide reductions of logits, a few rows at a time
"""
