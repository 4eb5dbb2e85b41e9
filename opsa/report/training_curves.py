"""Training curves in the report: loss, gradient norm, learning rate and tokens per step of
every trained variant of a policy, read from each model's train_log.jsonl."""

from __future__ import annotations

from pathlib import Path

from opsa.errors import InputError
from opsa.figures import plt, save_png
from opsa.records import read_jsonl, require_columns

LOG_NAME = "train_log.jsonl"  # as opsa.training.loop writes it (not imported: torch-free here)
PANELS = [
    ("loss", "loss"),
    ("grad_norm", "gradient norm (before clipping)"),
    ("lr", "learning rate"),
    ("tokens", "loss tokens per step"),
]


def plot_training_curves(models: dict[str, Path], out_path: str | Path) -> None:
    """One panel per logged quantity, one line per variant (its model directory's log)."""
    if not models:
        raise InputError("training curves: no trained model given")
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), layout="constrained")
    for name, model_dir in models.items():
        path = Path(model_dir) / LOG_NAME
        rows = read_jsonl(path)
        if not rows:
            raise InputError(f"{path}: no logged steps")
        require_columns(rows, ["step", *(key for key, _ in PANELS)], path)
        steps = [r["step"] for r in rows]
        for ax, (key, label) in zip(axes.flat, PANELS, strict=True):
            ax.plot(steps, [r[key] for r in rows], label=name, marker="." if len(rows) < 30 else "")
            ax.set_ylabel(label)
            ax.set_xlabel("optimizer step")
    axes.flat[0].legend(fontsize=8)
    save_png(fig, out_path)


def markdown_section(paths: list[Path]) -> str:
    """summary.md's section: the curves of each policy."""
    lines = ["", "## Training curves", ""]
    for path in paths:
        lines += [
            f"**{Path(path).stem}**",
            "",
            f"![training curves](training/{Path(path).name})",
            "",
        ]
    return "\n".join(lines)
