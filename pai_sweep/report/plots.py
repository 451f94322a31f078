"""The report's PNG plots, drawn with matplotlib's object API (no pyplot: no display, no global state)."""

from __future__ import annotations

from pathlib import Path

from pai_sweep.report.data import SweepData, TrialRow, best_so_far, pareto_front

# origin kind -> (colour, marker)
STYLE = {"sampler": ("tab:blue", "o"), "rule": ("tab:orange", "^"), "derived": ("tab:gray", "."), "baseline": ("black", "*")}


def _kind(row: TrialRow) -> str:
    return "rule" if row.rule else row.origin if row.origin in STYLE else "sampler"


def _figure(width: float = 7.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    return path


def _log_x(ax, xs: list[float]) -> None:
    # Parameter counts span orders of magnitude once downsizing is in the space.
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")


# Where a trial's label may go, in points from its marker: tried in order until it overlaps no other label.
_LABEL_OFFSETS = [(4, 3), (4, -10), (-6, 6), (-6, -12), (6, 12), (6, -18), (-10, 14), (-10, -20), (10, 22), (10, -28)]


def _place_labels(fig, ax, labels: list[tuple[str, float, float]]) -> None:
    """One label per position (trials at the same point share one, "3,6"), moved around its point until its
    box overlaps no label already placed; the last candidate is kept when all overlap."""
    renderer = fig.canvas.get_renderer()
    placed = []
    for text, x, y in labels:
        for dx, dy in _LABEL_OFFSETS:
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=7,
                                ha="left" if dx >= 0 else "right")
            box = label.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(b) for b in placed) or (dx, dy) == _LABEL_OFFSETS[-1]:
                placed.append(box)
                break
            label.remove()


def pareto_figure(data: SweepData):
    """The Pareto plot's (figure, axes), labels placed; pareto_plot saves it."""
    fig, ax = _figure()
    points = [r for r in data.done() if r.params is not None]
    for kind, (colour, marker) in STYLE.items():
        group = [r for r in points if _kind(r) == kind]
        if not group:
            continue
        size = 160 if kind == "baseline" else 36
        faces = [colour if r.feasible is not False else "none" for r in group]
        ax.scatter([r.params for r in group], [r.objective for r in group], c=faces, edgecolors=colour,
                   marker=marker, s=size, label=kind, zorder=3)
    front = pareto_front(data)
    if front:
        ax.step([r.params for r in front], [r.objective for r in front], where="post", color="tab:red",
                linewidth=1.2, label="Pareto front", zorder=2)
    base = data.baseline()
    if base is not None:
        ax.axhline(base.objective, color="black", linestyle=":", linewidth=0.8)
    _log_x(ax, [r.params for r in points])
    ax.set_xlabel("parameters (fewer is better)")
    ax.set_ylabel(f"objective ({'higher' if data.maximize else 'lower'} is better)")
    hollow = any(r.feasible is False for r in points)
    # two lines: on one the note ran past the figure edge and was cut
    ax.set_title(f"{data.name}: score vs parameters" + ("\n(hollow: below the baseline constraint)" if hollow else ""))
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=8)
    fig.tight_layout()  # the final layout first: label boxes are measured where they will be drawn
    at: dict[tuple[float, float], list[str]] = {}
    for r in sorted(points, key=lambda r: r.number):
        at.setdefault((r.params, r.objective), []).append(str(r.number))
    _place_labels(fig, ax, [(",".join(ns), x, y) for (x, y), ns in at.items()])
    return fig, ax


def pareto_plot(data: SweepData, path: Path) -> Path:
    fig, _ = pareto_figure(data)
    fig.savefig(path)
    return path


def progress_figure(data: SweepData):
    """Objective against trials run (a derived trial is free: it sits at the count of the run that measured it)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure()
    curve = best_so_far(data)
    used = {p["trial"]: p["trials_used"] for p in curve}
    for kind, (colour, marker) in STYLE.items():
        group = [r for r in data.done() if _kind(r) == kind]
        if group:
            ax.scatter([used[r.number] for r in group], [r.objective for r in group], c=colour, marker=marker, label=kind, zorder=3)
    curve = [p for p in curve if p["best"] is not None]
    if curve:
        ax.step([p["trials_used"] for p in curve], [p["best"] for p in curve], where="post", color="tab:red", label="best so far")
        ax.legend(fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trials run (derived trials are free: shown at the run that measured them)")
    ax.set_ylabel("objective")
    ax.set_title(f"{data.name}: objective per trial")
    ax.grid(alpha=0.3)
    return fig, ax


def progress_plot(data: SweepData, path: Path) -> Path:
    fig, _ = progress_figure(data)
    return _save(fig, path)


def importance_plot(found: dict[str, float], path: Path) -> Path:
    fig, ax = _figure(height=0.9 + 0.4 * max(len(found), 2))
    names = list(found)[::-1]
    ax.barh(names, [found[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (share of the objective's variation)")
    ax.set_title("importance of each searched setting for the objective")
    return _save(fig, path)


def compare_plots(sweeps: list[SweepData], out_dir: Path) -> list[Path]:
    """Several sweeps on the same axes: best objective vs trials used, and their Pareto fronts."""
    fig, ax = _figure()
    for data in sweeps:
        curve = [p for p in best_so_far(data) if p["best"] is not None]
        ax.step([p["trials_used"] for p in curve], [p["best"] for p in curve], where="post", label=data.name)
    ax.set_xlabel("trials used (derived trials are free)")
    ax.set_ylabel("best objective so far")
    ax.set_title("best objective against trials used")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths = [_save(fig, out_dir / "best_vs_trials.png")]
    fig, ax = _figure()
    xs = []
    for data in sweeps:
        front = pareto_front(data)
        xs += [r.params for r in front]
        line = ax.step([r.params for r in front], [r.objective for r in front], where="post", marker="o", label=data.name)
        base = data.baseline()
        if base is not None and base.params is not None:
            ax.scatter([base.params], [base.objective], marker="*", s=160, color=line[0].get_color(), zorder=3)
    _log_x(ax, xs)
    ax.set_xlabel("parameters (fewer is better)")
    ax.set_ylabel("objective")
    ax.set_title("Pareto fronts (star: baseline)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "pareto.png"))
    return paths
