"""A grid's tables as plain data, one per benchmark: the terminal, results.md and results.tex each
render the same cells, marks and intervals.

A cell shows the benchmark's primary measure and its change from the dense model: acc and retention
(acc / dense acc), or perplexity and its ratio to the dense perplexity. Marks: the best cell at its K,
the cells not separable from it (95% paired interval), collapsed variants (the guard), and why a cell
is missing. Details, when asked for: the difference to the dense model with its 95% interval and
McNemar p, and how many answers flipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .result import CompareResult

BEST, TIED, COLLAPSED = "best", "not separable from the best", "collapsed"
DETAILS = ("intervals", "agreement")  # what `show` may ask for


@dataclass(frozen=True)
class Entry:
    """One cell as text, its marks (BEST, TIED, COLLAPSED), and the detail lines asked for; a missing
    cell has `missing` ("stopped after s" or "error") instead."""

    text: str = ""
    marks: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    missing: str = ""


@dataclass(frozen=True)
class BenchTable:
    title: str
    caption: str
    budgets: tuple[int, ...]
    rows: tuple[tuple[str, tuple[Entry, ...]], ...]


def bench_tables(result: CompareResult, show: tuple[str, ...] = ()) -> list[BenchTable]:
    """Per benchmark, methods (and healers) by K."""
    unknown = set(show) - set(DETAILS)
    if unknown:
        raise ValueError(f"unknown table details {sorted(unknown)}; choose from {', '.join(DETAILS)}")
    tables = []
    for bench in result.benchmarks:
        name = bench["name"]
        dense = result.dense(name)
        rows = []
        for method, healer in result.lines():
            entries = []
            for k in result.budgets:
                cell = result.cell(method, k, name, healer)
                if cell is None:
                    failed = result.error(method, k, name, healer) is not None
                    entries.append(Entry(missing="error" if failed else f"stopped after {method.stopped_after}"))
                    continue
                evidence = result.evidence[(method.removed[k], healer, name)]
                marks = ((BEST,) if evidence["best"] else (TIED,) if not evidence["separable_from_best"] else ())
                marks += (COLLAPSED,) if result.collapsed(method.removed[k], healer) else ()
                entries.append(Entry(_value(result, cell, name), marks, _details(cell, evidence, show)))
            rows.append((result.label(method, healer), tuple(entries)))
        tables.append(BenchTable(_title(bench, dense), _caption(dense), result.budgets, tuple(rows)))
    return tables


def _number(x: float) -> str:
    """A perplexity or a ratio: two decimals, or three significant digits once it is large (a collapsed
    model's perplexity can exceed 1e9)."""
    return f"{x:.2f}" if x < 1e4 else f"{x:.3g}"


def _value(result: CompareResult, cell: dict, benchmark: str) -> str:
    if "ppl" in cell:
        text = f"{_number(cell['ppl'])} (×{_number(result.ppl_ratio(cell, benchmark))})"
        return text + (f" acc {cell['acc']:.3f}" if "acc" in cell else "")
    return f"{cell['acc']:.3f} ({result.retention(cell, benchmark):.0%})"


def _details(cell: dict, evidence: dict, show: tuple[str, ...]) -> tuple[str, ...]:
    lines = []
    if "intervals" in show:
        for measure, test in evidence["vs_dense"].items():
            if measure == "ppl":
                lines.append(f"×{_number(test['diff'])} [{_number(test['low'])}, {_number(test['high'])}]")
            else:
                lines.append(f"Δacc {test['diff']:+.3f} [{test['low']:+.3f}, {test['high']:+.3f}] p={test['p']:.2g}")
    if "agreement" in show and "agreement" in evidence:
        a = evidence["agreement"]
        lines.append(f"flips {a['flips']:.0%} (✓→✗ {a['correct_to_wrong']:.0%}, ✗→✓ {a['wrong_to_correct']:.0%}) "
                     f"KL {a['kl']:.3f}")
    return tuple(lines)


def _title(bench: dict, dense: dict) -> str:
    where = f"{bench['name']} ({bench['split']}, {bench['format']}, n={bench['n']})"
    if "ppl" in dense:
        acc = f", acc {dense['acc']:.3f}" if "acc" in dense else ""
        return f"{where}: dense {dense['metric']} {_number(dense['ppl'])}{acc}"
    return f"{where}: dense acc {dense['acc']:.3f} ± {dense['acc_stderr']:.3f}, chance {bench['chance']:.3f}"


def _caption(dense: dict) -> str:
    value = ("perplexity, lower is better (× its ratio to the dense model's)" if "ppl" in dense
             else "acc (retention = acc / dense acc)")
    return (f"{value}; ★ best at this K; ≈ not separable from the best (95% paired bootstrap); "
            f"✗ collapsed: no decision transition on the guard items")


SYMBOLS = {BEST: "★", TIED: "≈", COLLAPSED: "✗"}


def to_markdown(tables: list[BenchTable], heading: str) -> str:
    """results.md: a GitHub-flavoured table per benchmark, details on extra lines of each cell."""
    parts = [f"# {heading}\n"]
    for table in tables:
        parts.append(f"## {table.title}\n\n| method | {' | '.join(f'K={k}' for k in table.budgets)} |\n"
                     f"|---|{'---:|' * len(table.budgets)}")
        for label, entries in table.rows:
            parts.append(f"| {label} | " + " | ".join(_markdown_entry(e) for e in entries) + " |")
        parts.append(f"\n{table.caption}\n")
    return "\n".join(parts)


def _markdown_entry(entry: Entry) -> str:
    if entry.missing:
        return f"*{entry.missing}*"
    text = f"**{entry.text}**" if BEST in entry.marks else entry.text
    text += "".join(f" {SYMBOLS[m]}" for m in entry.marks)
    return "<br>".join([text, *entry.details])


def to_latex(tables: list[BenchTable], heading: str) -> str:
    """results.tex: a booktabs table per benchmark (\\usepackage{booktabs,makecell}), details in small type."""
    parts = [f"% {heading}\n% needs \\usepackage{{booktabs,makecell}}"]
    for table in tables:
        parts += [r"\begin{table}[ht]", r"\centering", rf"\caption{{{_tex(table.title)}. {_tex(table.caption)}}}",
                  rf"\begin{{tabular}}{{l{'r' * len(table.budgets)}}}", r"\toprule",
                  "method & " + " & ".join(f"$K={k}$" for k in table.budgets) + r" \\", r"\midrule"]
        for label, entries in table.rows:
            parts.append(_tex(label) + " & " + " & ".join(_latex_entry(e) for e in entries) + r" \\")
        parts += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(parts)


def _latex_entry(entry: Entry) -> str:
    if entry.missing:
        return rf"\emph{{{_tex(entry.missing)}}}"
    text = _tex(entry.text)
    text = rf"\textbf{{{text}}}" if BEST in entry.marks else text
    text += "".join({BEST: r"$^\star$", TIED: r"$^\approx$", COLLAPSED: r"$^\times$"}[m] for m in entry.marks)
    if not entry.details:
        return text
    return r"\makecell[r]{" + r" \\ ".join([text, *(rf"\scriptsize {_tex(d)}" for d in entry.details)]) + "}"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "×": r"$\times$", "Δ": r"$\Delta$", "★": r"$\star$",
        "≈": r"$\approx$", "✗": r"$\times$", "✓": r"$\checkmark$", "→": r"$\to$", "±": r"$\pm$"}


def _tex(text: str) -> str:
    """`text` with LaTeX's special characters escaped and the tables' symbols in math mode."""
    return "".join(_TEX.get(c, c) for c in text)
