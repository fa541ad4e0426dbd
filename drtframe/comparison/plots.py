"""The two pictures of a grid: accuracy against blocks removed, and which blocks each method removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evidence import primary
from .request import NO_HEALER
from .result import CompareResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(result: CompareResult, path: Path) -> None:
    """A panel per benchmark: one line per method over the budgets (the dense model at 0) with each
    point's 95% paired interval against the dense model, the dense (and chance) levels as reference
    lines, variants the guard finds collapsed marked with a red cross; healed variants dashed. A
    perplexity benchmark's panel shows perplexity on a log scale."""
    plt = _pyplot()
    benches = result.benchmarks
    fig, axes = plt.subplots(1, len(benches), figsize=(5.5 * len(benches), 4.5), squeeze=False)
    for ax, bench in zip(axes[0], benches):
        name = bench["name"]
        dense_cell = result.dense(name)
        measure = primary(dense_cell)
        dense = dense_cell[measure]
        for method, healer in result.lines():
            points = [(0, dense, (), (0.0, 0.0))]
            for k in result.budgets:
                if (cell := result.cell(method, k, name, healer)) is not None:
                    test = result.evidence[(method.removed[k], healer, name)]["vs_dense"][measure]
                    low, high = (dense * test["low"], dense * test["high"]) if measure == "ppl" else \
                        (dense + test["low"], dense + test["high"])
                    # a percentile interval may miss its own point (skewed resamples): no bar on that side
                    points.append((k, cell[measure], method.removed[k],
                                   (max(0.0, cell[measure] - low), max(0.0, high - cell[measure]))))
            ks, values, removed, spread = zip(*points)
            line = ax.errorbar(ks, values, yerr=np.array(spread).T, marker="o", capsize=3,
                               ls="-" if healer == NO_HEALER else "--", label=result.label(method, healer)).lines[0]
            bad = [(k, v) for k, v, r, _ in points if r and result.collapsed(r, healer)]
            if bad:
                ax.scatter(*zip(*bad), marker="x", s=90, color="red", zorder=5)
            if method.stopped_after is not None and healer == NO_HEALER:
                ax.annotate(f"stopped after {method.stopped_after}", (ks[-1], values[-1]), fontsize=7,
                            color=line.get_color(), textcoords="offset points", xytext=(4, -10))
        ax.axhline(dense, color="black", ls="--", lw=1, label="dense")
        if measure == "acc":
            ax.axhline(bench["chance"], color="grey", ls=":", lw=1, label="chance")
        else:
            ax.set_yscale("log")
        ax.set_title(f"{name} ({bench['split']}, {bench['format']}, n={bench['n']})")
        ax.set_xlabel("blocks removed")
        ax.set_ylabel(f"{dense_cell['metric']} (log scale, lower is better)" if measure == "ppl" else "acc")
        ax.set_xticks([0, *result.budgets])
    if result.guard_items:
        axes[0][-1].scatter([], [], marker="x", color="red", label="collapsed (guard)")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(f"{result.model['source']}: against blocks removed (bars: 95% paired interval vs dense)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_removal_map(result: CompareResult, path: Path) -> None:
    """Methods x blocks: the step at which each block was removed (largest budget), over the dense
    model's Silent Phase (shaded) and its transition l*."""
    plt = _pyplot()
    num_layers = result.model["num_layers"]
    grid = np.full((len(result.methods), num_layers), np.nan)
    for row, method in enumerate(result.methods):
        for step, layer in enumerate(method.order, start=1):
            grid[row, layer] = step
    fig, ax = plt.subplots(figsize=(max(6, 0.32 * num_layers + 3), 0.55 * len(result.methods) + 1.8))
    dense = result.profiles.get(((), NO_HEALER))
    if dense and dense["transition_original_layer"] is not None:
        lstar = dense["transition_original_layer"]
        ax.axvspan(-0.5, lstar - 0.5, color="tab:red", alpha=0.08, label="dense Silent Phase")
        ax.axvline(lstar - 0.5, color="tab:green", lw=2, label=f"dense transition l* = {lstar}")
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis_r", interpolation="nearest",
                      extent=(-0.5, num_layers - 0.5, len(result.methods) - 0.5, -0.5))
    for row, method in enumerate(result.methods):
        for step, layer in enumerate(method.order, start=1):
            ax.text(layer, row, str(step), ha="center", va="center", fontsize=7, color="white")
    ax.set_yticks(range(len(result.methods)), [m.method for m in result.methods])
    ax.set_xticks(range(num_layers))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("block (original index)")
    ax.set_title(f"blocks removed, numbered by removal step (up to {max(result.budgets)} blocks)")
    fig.colorbar(image, ax=ax, label="removal step")
    if dense and dense["transition_original_layer"] is not None:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.25), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
