"""PNG plots: scores over epochs with switch lines, and score vs parameters per architecture.

Uses matplotlib's object API with the Agg canvas, so the process-wide backend is left alone."""

from __future__ import annotations

from pathlib import Path

from pai_sweep.analysis.history import IN_PROGRESS, KEPT, REJECTED, RunHistory

SCORES_PNG = "scores.png"
ARCH_PNG = "architectures.png"


def _figure(width=9.0, height=4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_scores(history: RunHistory, path: Path) -> Path | None:
    s = history.scores
    if s.empty:
        return None
    fig = _figure()
    ax = fig.add_subplot(111)
    # The training loop's epochs (as metrics.jsonl and MLflow's steps) when every kept epoch can be placed: the
    # gaps are the epochs PerforatedAI discarded. Else PerforatedAI's renumbered final history, said so.
    loop = [history.loop_epoch(int(e)) for e in s["epoch"]]
    switches = [(int(sw["dendrites"]), history.switch_loop_epoch(int(sw["epoch"])), int(sw["epoch"]))
                for _, sw in history.switches.iterrows()]
    placed = None not in loop and all(at is not None for _, at, _ in switches)
    x = loop if placed else s["epoch"]
    ax.plot(x, s["val"], marker="o", ms=3, label="validation")
    for name in history.extras:
        if s[name].notna().any():
            ax.plot(x, s[name], ls="--", alpha=0.7, label=name)
    top = ax.get_ylim()[1]
    for dendrites, at, pai in switches:
        e = at if placed else pai
        ax.axvline(e + 0.5, color="grey", ls=":", lw=1)
        ax.text(e + 0.6, top, f"{dendrites}d", va="top", fontsize=8, color="grey")
    ax.set_xlabel("epoch (as the training loop counts; gaps: epochs PerforatedAI discarded)" if placed
                  else "epoch (PerforatedAI's final history)")
    ax.set_ylabel("score")
    ax.set_title(f"{history.save_name}: scores, dotted lines = dendrites added")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_architectures(history: RunHistory, path: Path) -> Path | None:
    arch = history.best_arch.dropna(subset=["params"])
    if arch.empty:
        return None
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot(111)
    kept = arch[arch["status"] == KEPT].sort_values("dendrites")
    ax.plot(kept["params"].astype(float), kept["val"], marker="o", label="kept")
    for _, row in kept.iterrows():
        ax.annotate(f"{int(row['dendrites'])}d", (float(row["params"]), row["val"]), textcoords="offset points",
                    xytext=(4, -10), fontsize=8)
    for status, marker, color in ((REJECTED, "x", "tab:red"), (IN_PROGRESS, "s", "tab:orange")):
        part = arch[arch["status"] == status]
        if not part.empty:
            ax.scatter(part["params"].astype(float), part["val"], marker=marker, color=color, label=status.replace("_", " "))
    ax.set_xlabel("parameters")
    ax.set_ylabel("best validation score")
    ax.set_title(f"{history.save_name}: score vs parameters per architecture")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_plots(history: RunHistory, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    made = [plot_scores(history, out_dir / SCORES_PNG), plot_architectures(history, out_dir / ARCH_PNG)]
    return [p for p in made if p is not None]
