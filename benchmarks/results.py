"""Benchmark results: one JSON file per row under the output folder, and the markdown table
docs/benchmarks.md shows, built from those files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opsa.records import write_json

TABLE_NAME = "table.md"
HEADER = [
    "| row | measure | ours | peer | ratio | target | met? |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]


def result_path(out_dir: Path, row: int, name: str) -> Path:
    return out_dir / f"row{row}_{name}.json"


def write_result(out_dir: Path, result: dict[str, Any]) -> Path:
    """Write one row's result (atomically) and return its path."""
    path = result_path(out_dir, result["row"], result["name"])
    write_json(path, result)
    return path


def read_results(out_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(p.read_text()) for p in sorted(out_dir.glob("row*_*.json"))]
    return sorted(rows, key=lambda r: r["row"])


def table_line(result: dict[str, Any]) -> str:
    met = {True: "yes", False: "**no**", None: "n/a"}[result.get("met")]
    cells = [
        str(result["row"]),
        result["measure"],
        result.get("ours", "–"),
        result.get("peer", "–"),
        result.get("ratio_text", "–"),
        result.get("target", "–"),
        met,
    ]
    return "| " + " | ".join(cells) + " |"


def write_table(out_dir: Path) -> Path:
    """`table.md`: the table over every row result in `out_dir`, with each row's command."""
    results = read_results(out_dir)
    lines = HEADER + [table_line(r) for r in results]
    notes = [f"* Row {r['row']}: {r['note']}" for r in results if r.get("note")]
    commands = sorted({r["command"] for r in results if r.get("command")})
    lines += ["", *notes, "", *[f"Command: `{c}`" for c in commands]]
    path = out_dir / TABLE_NAME
    path.write_text("\n".join(lines) + "\n")
    return path
