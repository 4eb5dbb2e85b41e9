"""The filesystem saying no, on real small filesystems (tmpfs mounts): a full disk while a step
writes its output, and a read-only output folder, are one line naming the path, the cause and
the free space, and nothing partial is left."""

from __future__ import annotations

import json
from pathlib import Path

from tests.errors.test_input_files import prepare


def big_source(tmp_path: Path) -> Path:
    """3,000 prompts, about 600 KB prepared: more than the small disk holds."""
    text = "how does this work? " * 8
    rows = [{"id": f"p{i}", "prompt": f"Question {i}: {text}"} for i in range(3000)]
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_full_disk_while_writing_is_one_line(opsa, tmp_path, small_mount):
    source = big_source(tmp_path)
    assert prepare(opsa, {"path": str(source)}, tmp_path).returncode == 0  # a fine input
    disk = small_mount("disk", size="256k")
    line = prepare(opsa, {"path": str(source)}, disk).error(
        f"{disk / 'out/harmful.jsonl'}: no space left on the disk", "MB free on its filesystem"
    )
    assert "nothing partial was kept" in line
    assert [p for p in disk.rglob("*") if p.is_file()] == []


def test_a_read_only_output_folder_is_one_line(opsa, tmp_path, small_mount):
    frozen = small_mount("frozen", read_only=True)
    prepare(opsa, {"path": str(big_source(tmp_path))}, frozen).error(
        f"{frozen}", "the filesystem is read-only"
    )
    assert list(frozen.iterdir()) == []


def test_a_read_only_results_folder_stops_the_run_before_any_job(
    embedded_config, snakemake, tmp_path, small_mount
):
    small_mount("results", read_only=True)
    run = snakemake(embedded_config, dry_run=False)
    run.error("opsa workflow: error: results/: not writable (the filesystem is read-only)")
    assert not (tmp_path / "logs").exists()
