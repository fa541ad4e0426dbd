"""Pictures of a decision profile: curves with the phases shaded, Option Frequency, the other probes'
metrics, trace heatmap."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .profile import DecisionProfile


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_profile(profile: DecisionProfile, path: Path, title: str, metrics: Mapping[str, list[float]] | None = None
                 ) -> None:
    """Margin and accuracy over layers (Silent Phase shaded), Option Frequency as stacked areas, and
    below them each of `metrics` (other probes' per-layer numbers, e.g. a plugin's) as a curve."""
    plt = _pyplot()
    metrics = metrics or {}
    layers = list(range(profile.num_layers))
    rows = 3 if metrics else 2
    fig, (top, bottom, *rest) = plt.subplots(rows, 1, figsize=(9, 7 + 2.5 * (rows - 2)), sharex=True,
                                             height_ratios=[3, 2, 2][:rows])
    top.plot(layers, profile.acc, marker="o", label="lens accuracy")
    top.plot(layers, profile.decision_margin, marker="s", label="mean Decision Margin")
    top.axhline(profile.transition.baseline, color="grey", ls=":", label="best constant answer")
    top.axhline(0, color="black", lw=0.5)
    t = profile.transition
    if t.layer is not None:
        top.axvspan(-0.5, t.layer - 0.5, color="tab:red", alpha=0.08, label="Silent Phase")
        top.axvspan(t.layer - 0.5, profile.num_layers - 0.5, color="tab:green", alpha=0.08, label="Decisive Phase")
        top.axvline(t.layer - 0.5, color="tab:green", lw=2, label=f"transition l* = {t.layer} (90%: {t.interval[0]}-{t.interval[1]})")
        silent, decisive = t.levels
        step = [silent] * t.layer + [decisive] * (profile.num_layers - t.layer)
        top.step(layers, step, where="mid", color="tab:blue", ls="--", lw=1, label="fitted phase levels")
    else:
        top.text(0.02, 0.92, "no transition: the model never decides", transform=top.transAxes, color="tab:red")
    top.set_ylabel("accuracy / margin")
    top.set_title(title)
    top.legend(fontsize=8, loc="lower right")
    freq = list(zip(*profile.option_frequency))
    bottom.stackplot(layers, *freq, labels=[chr(65 + o) for o in range(len(freq))], alpha=0.8)
    bottom.set_ylabel("Option Frequency")
    bottom.set_ylim(0, 1)
    bottom.legend(fontsize=8, loc="upper left", ncol=len(freq))
    for name, values in metrics.items():
        rest[0].plot(layers, values, marker=".", label=name)
    if metrics:
        rest[0].set_ylabel("other probes")
        rest[0].legend(fontsize=8, loc="best")
    (rest or [bottom])[0].set_xlabel("layer (block output)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_trace(steps: list[dict], num_layers: int, path: Path, title: str) -> None:
    """Decision Margin per (pruning step, original layer); removed layers are blank, l* is marked."""
    import numpy as np

    plt = _pyplot()
    grid = np.full((len(steps), num_layers), np.nan)
    for row, step in enumerate(steps):
        for layer, margin in zip(step["kept"], step["decision_margin"]):
            grid[row, layer] = margin
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(steps) + 2))
    image = ax.imshow(grid, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
    for row, step in enumerate(steps):
        if step["transition_layer"] is not None:
            ax.plot(step["kept"][step["transition_layer"]], row, marker="|", color="black", ms=14, mew=3)
    ax.set_yticks(range(len(steps)), [f"{s['removed_count']} removed" for s in steps])
    ax.set_xlabel("original layer (| marks l*)")
    ax.set_title(title)
    fig.colorbar(image, label="mean Decision Margin")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_lens_fit(report: Mapping, path: Path, title: str) -> None:
    """Held-out KL per block under the logit and the tuned lens (log scale: they differ tenfold)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    blocks = list(range(len(report["logit_kl"])))
    ax.plot(blocks, report["logit_kl"], marker="o", label="logit lens")
    ax.plot(blocks, report["tuned_kl"], marker="o", label="tuned lens")
    ax.set_yscale("log")
    ax.set_xlabel("block")
    ax.set_ylabel("KL to the model's output (nats)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
