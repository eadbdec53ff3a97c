"""Helpers that turn results into metadata the Dagster UI renders (tables, inline charts)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import polars as pl


def markdown_table(frame: pl.DataFrame, max_cell: int = 120) -> str:
    """A markdown table of ``frame`` (cells shortened, pipes escaped)."""
    if frame.is_empty():
        return "_none_"
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| "
        + " | ".join(str(v).replace("|", "\\|").replace("\n", " ")[:max_cell] for v in row)
        + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([header, rule, *body])


def png_markdown(draw: Callable[[object], None], title: str, size: tuple[float, float]) -> str:
    """Render a matplotlib figure drawn by ``draw(ax)`` as markdown with an inline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    try:
        draw(ax)
        ax.set_title(title)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{title}](data:image/png;base64,{encoded})"
