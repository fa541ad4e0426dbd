"""Decision probes: read the model's MC decision at every layer through a logit lens."""
