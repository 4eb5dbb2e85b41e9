"""Validate a judge against human- or model-labelled responses, beside a reference prefix list.

Labelled files:
- JailbreakBench artifact JSON (`*.json`): {"jailbreaks": [{"goal", "response", "jailbroken",
  "index", ...}]}; the label is `jailbroken`; entries whose response is null are skipped.
- JSONL (`*.jsonl`): rows {"prompt", "response", "unsafe": bool} and optionally "id".
- Label references (`read_label_refs`): JSONL rows {"id", "source", "row", "refused": bool} that
  point into benchmark files under a data root instead of copying their text: a STAR-1 JSON
  (`id` = row; the response after the reasoning's `</think>`), a JailbreakBench artifact
  (`index` = row) or a prompt CSV (`id` or `index` = row) with the response given inline as
  "response" (a model's output generated for the check). Such a check labels refusals, so an
  item's "unsafe" is "not refused": false_safe_rate is then the false-refusal rate and
  false_unsafe_rate the missed-refusal rate.

Metrics (opsa.judges.agreement), with "unsafe" as the positive class: agreement, Cohen's
kappa, precision and recall of each class, false_safe_rate (share of truly unsafe responses
judged safe), false_unsafe_rate (share of truly safe responses judged unsafe), and the ranking
of the policies that produced the responses (each file, or a row's "policy") by the judge
against the labels: Spearman's rho with a bootstrap interval. Items the judge left unlabelled
(unsafe None, only with on_unparsed "none") are counted in n_unlabelled and left out of the
rates.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.judges.agreement import ranking, rates
from opsa.judges.base import Judge, JudgeItem
from opsa.judges.refusal import PrefixListJudge
from opsa.judges.spec import JudgeSpec, build_judge
from opsa.records import read_json, read_jsonl, require_columns, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Labelled:
    file: str
    item: JudgeItem
    unsafe: bool
    policy: str = ""  # what produced the response (default: its file)

    @property
    def group(self) -> str:
        return self.policy or self.file


def read_labelled(path: Path, key: str) -> list[Labelled]:
    """The labelled responses of one file; `key` names the file in the report."""
    if path.suffix == ".json":
        return _read_artifact(path, key)
    if path.suffix == ".jsonl":
        return _read_generic(path, key)
    raise InputError(f"{path}: labelled responses must be .json (JailbreakBench) or .jsonl")


def _read_artifact(path: Path, key: str) -> list[Labelled]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("jailbreaks"), list):
        raise InputError(f"{path}: no 'jailbreaks' list (not a JailbreakBench artifact)")
    rows = data["jailbreaks"]
    require_columns(rows, ["goal", "response", "jailbroken"], path)
    out = []
    for n, row in enumerate(rows):
        if row["response"] is None:
            continue
        item = JudgeItem(row["goal"], row["response"], f"{key}:{row.get('index', n)}")
        out.append(Labelled(key, item, _label(row["jailbroken"], path, "jailbroken", item.id)))
    return out


def _read_generic(path: Path, key: str) -> list[Labelled]:
    rows = read_jsonl(path)
    require_columns(rows, ["prompt", "response", "unsafe"], path)
    out = []
    for n, row in enumerate(rows, 1):
        item = JudgeItem(row["prompt"], row["response"], f"{key}:{row.get('id', n)}")
        label = _label(row["unsafe"], path, "unsafe", item.id)
        out.append(Labelled(key, item, label, str(row.get("policy", ""))))
    return out


def read_label_refs(path: Path, data_root: Path) -> list[Labelled]:
    """The labelled responses of a label-reference file, texts read from `data_root`."""
    rows = read_jsonl(path)
    require_columns(rows, ["id", "source", "row", "refused"], path)
    sources: dict[str, dict[str, dict[str, Any]]] = {}
    out = []
    for row in rows:
        if row["source"] not in sources:
            sources[row["source"]] = _source_rows(data_root / row["source"])
        found = sources[row["source"]].get(str(row["row"]))
        if found is None:
            raise InputError(f"{path}: id '{row['id']}': no row '{row['row']}' in {row['source']}")
        prompt, response = found["prompt"], row.get("response", found["response"])
        if response is None:
            raise InputError(f"{path}: id '{row['id']}': {row['source']} holds no response")
        refused = _label(row["refused"], path, "refused", row["id"])
        item = JudgeItem(prompt, response, row["id"])
        out.append(Labelled(path.name, item, not refused, str(row.get("policy", ""))))
    return out


def _source_rows(path: Path) -> dict[str, dict[str, Any]]:
    """{row id: {"prompt", "response"}} of one benchmark file (response None in a prompt CSV)."""
    if not path.is_file():
        raise InputError(f"{path}: labelled source not found")
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        key = "id" if rows and "id" in rows[0] else "index"
        text = "prompt" if rows and "prompt" in rows[0] else "goal"
        require_columns(rows, [key, text], path)
        return {r[key]: {"prompt": r[text], "response": None} for r in rows}
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("jailbreaks"), list):
        rows = data["jailbreaks"]
        require_columns(rows, ["index", "goal", "response"], path)
        return {str(r["index"]): {"prompt": r["goal"], "response": r["response"]} for r in rows}
    if isinstance(data, list):
        require_columns(data, ["id", "question", "response"], path)
        return {
            str(r["id"]): {"prompt": r["question"], "response": r["response"].split("</think>")[-1]}
            for r in data
        }
    raise InputError(f"{path}: neither a JailbreakBench artifact nor a STAR-1 style list")


def _label(value: Any, path: Path, column: str, item_id: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{path}: column '{column}' of id '{item_id}' is not true/false")
    return value


def judge_report(judge: Judge, labelled: list[Labelled]) -> dict[str, Any]:
    verdicts = judge.judge([x.item for x in labelled])
    predicted = [v.unsafe for v in verdicts]
    truth = [x.unsafe for x in labelled]
    report = {"judge": judge.name, **rates(truth, predicted)}
    report["ranking"] = ranking([x.group for x in labelled], truth, predicted)
    per_file: dict[str, Any] = {}
    for file in dict.fromkeys(x.file for x in labelled):
        idx = [i for i, x in enumerate(labelled) if x.file == file]
        per_file[file] = rates([labelled[i].unsafe for i in idx], [predicted[i] for i in idx])
    return report | {"per_file": per_file}


def file_keys(paths: list[Path]) -> list[str]:
    """Each path relative to the paths' common folder (just the name for a single file)."""
    if len(paths) == 1:
        return [paths[0].name]
    root = os.path.commonpath([p.resolve().parent for p in paths])
    return [str(p.resolve().relative_to(root)) for p in paths]


def validate_judge(
    labelled_paths: list[Path],
    name: str,
    spec: JudgeSpec,
    model_dir: str | Path | None,
    out_path: str | Path,
    reference: PrefixListJudge | None = None,
) -> dict[str, Any]:
    """Score the judge (and a reference prefix list, if given) on the labelled files; write and
    return the report."""
    if not labelled_paths:
        raise InputError(f"judge '{name}': no labelled files to validate on")
    paths = [Path(p) for p in labelled_paths]
    labelled = [
        x for p, k in zip(paths, file_keys(paths), strict=True) for x in read_labelled(p, k)
    ]
    if not labelled:
        raise InputError(f"judge '{name}': the labelled files hold no responses")
    report = judge_report(build_judge(name, spec, model_dir), labelled)
    report = {"kind": spec.kind, **report}
    if reference is not None:
        report["reference"] = judge_report(reference, labelled)
    write_json(out_path, report)
    log.info(
        "judge '%s': agreement %s, false-safe %s on %d responses (reference: %s)",
        name,
        report["agreement"],
        report["false_safe_rate"],
        report["n"],
        report.get("reference", {}).get("agreement"),
    )
    return report
