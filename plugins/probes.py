"""Decision probes: Decision Margin and lens accuracy, Option Frequency, noise sensitivity."""

from __future__ import annotations

import torch

from drtframe import Options, Probe, ProbeContext, choice_scores, hookimpl


class DecisionMargin(Probe):
    """Per layer: logit-lens accuracy and mean Decision Margin p(gold) - max p(wrong)."""

    name = "decision_margin"

    def measure(self, ctx: ProbeContext) -> dict[str, list]:
        return {"acc": list(ctx.profile.acc), "decision_margin": list(ctx.profile.decision_margin)}


class OptionFrequency(Probe):
    """Per layer: share of items whose top lens option is each position, and its entropy (bits)."""

    name = "option_frequency"

    def measure(self, ctx: ProbeContext) -> dict[str, list]:
        return {"option_frequency": [list(f) for f in ctx.profile.option_frequency],
                "entropy": list(ctx.profile.entropy)}


class NoiseOptions(Options):
    eps: float = 1.0
    seed: int = 0


class NoiseSensitivity(Probe):
    """Per layer: drop in final accuracy when h + eps*std(h)*N(0, I) replaces that layer's output."""

    name = "noise_sensitivity"
    Options = NoiseOptions

    def measure(self, ctx: ProbeContext) -> dict[str, list]:
        base = self._accuracy(ctx)
        drops = []
        for layer in ctx.handle.layers:
            hook = layer.register_forward_hook(self._noise())
            try:
                drops.append(base - self._accuracy(ctx))
            finally:
                hook.remove()
        return {"noise_drop": drops}

    def _noise(self):
        eps, seed = self.options.eps, self.options.seed
        generator = None

        def add_noise(module, args, output):
            nonlocal generator
            hidden = output[0] if isinstance(output, tuple) else output
            if generator is None:  # seeded once per layer, where the layer runs (a device map may spread them)
                generator = torch.Generator(device=hidden.device).manual_seed(seed)
            noise = torch.randn(hidden.shape, generator=generator, device=hidden.device, dtype=hidden.dtype)
            noisy = hidden + eps * hidden.std(dim=-1, keepdim=True) * noise
            return (noisy, *output[1:]) if isinstance(output, tuple) else noisy

        return add_noise

    @staticmethod
    def _accuracy(ctx: ProbeContext) -> float:
        scores = choice_scores(ctx.handle, ctx.items, budget=ctx.budget)
        return sum(int(s[:, 0].argmax()) == item.gold for s, item in zip(scores, ctx.items)) / len(ctx.items)


@hookimpl
def drtframe_register_probes(register):
    register(DecisionMargin)
    register(OptionFrequency)
    register(NoiseSensitivity)
