"""Row 5: scoring K candidate contexts on N prompts, the pipeline's way against the naive loop.

Ours (the pipeline's stages): the no-context baseline decoded once and judged once, then all
K candidates' prompts decoded in one batched call and judged. The naive loop: for each
candidate, decode and judge the baseline again, then decode and judge that candidate alone.
Both call the same package functions on the embedded model (each call loads the model, as a
pipeline job would), greedy decoding, the refusal-pattern judge. Scaling: ours is timed as K
and then N double; the decoded sequences grow as N·(1 + K), the no-context pass paid once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import inputs
from benchmarks.suite import Settings
from benchmarks.timing import Timing, ratio, repeat

MAIN = (4, 8)  # (K candidates, N prompts) of the comparison
SCALING = [(2, 8), (4, 8), (4, 16)]  # K doubles, then N doubles
SMALL_MAIN, SMALL_SCALING = (2, 2), [(1, 2), (2, 2), (2, 4)]
NEW_TOKENS, SMALL_NEW_TOKENS = 16, 4
BATCH = 32  # contexts.sampling.batch_size of the embedded default


def run(settings: Settings) -> dict[str, Any]:
    from opsa.generation.engine import SamplingParams

    main, scaling = (SMALL_MAIN, SMALL_SCALING) if settings.small else (MAIN, SCALING)
    new_tokens = SMALL_NEW_TOKENS if settings.small else NEW_TOKENS
    sampling = SamplingParams(temperature=0.0, max_new_tokens=new_tokens, batch_size=BATCH)
    with tempfile.TemporaryDirectory(prefix="opsa-bench-ctx-") as tmp:
        bench = SearchBench(settings, sampling, Path(tmp))
        ours = bench.time(*main, naive=False)
        naive = bench.time(*main, naive=True)
        same = bench.same_scores()
        grid = {f"K{k}_N{n}": bench.time(k, n, naive=False) for k, n in scaling}
    return summarise(main, ours, naive, same, scaling, grid)


def summarise(
    main: tuple[int, int],
    ours: Timing,
    naive: Timing,
    same: bool,
    scaling: list[tuple[int, int]],
    grid: dict[str, Timing],
) -> dict[str, Any]:
    speed = ratio(naive.median, ours.median)
    steps = []
    for (k0, n0), (k1, n1) in zip(scaling, scaling[1:], strict=False):
        measured = ratio(grid[f"K{k1}_N{n1}"].median, grid[f"K{k0}_N{n0}"].median)
        expected = ratio(n1 * (1 + k1), n0 * (1 + k0))
        steps.append({"from": [k0, n0], "to": [k1, n1], "time_ratio": measured,
                      "sequences_ratio": expected})  # fmt: skip
    scaling_text = "; ".join(
        f"K,N {s['from']}→{s['to']}: time ×{s['time_ratio']} (sequences ×{s['sequences_ratio']})"
        for s in steps
    )
    k, n = main
    return {
        "measure": f"context search, K={k} candidates × N={n} prompts, greedy: seconds",
        "ours": f"{ours.median:.1f} s (baseline once)",
        "peer": f"naive loop: {naive.median:.1f} s (baseline per candidate)",
        "ratio": speed,
        "ratio_text": f"{speed}× faster",
        "note": f"scaling of ours: {scaling_text}",
        "target": "faster than the naive loop; linear in K·N, no-context pass once",
        "met": bool(speed > 1.0),
        "same_scores": same,
        "ours_timing": ours.to_dict(),
        "naive_timing": naive.to_dict(),
        "scaling": steps,
        "scaling_timings": {key: t.to_dict() for key, t in grid.items()},
    }


class SearchBench:
    """Inputs written once; each timed call scores into a fresh folder."""

    def __init__(self, settings: Settings, sampling: Any, folder: Path) -> None:
        from opsa.contexts.candidates import CandidatesConfig, build_candidates
        from opsa.judges.refusal import RefusalPatternJudge
        from opsa.records import write_jsonl

        self.settings, self.sampling, self.folder = settings, sampling, folder
        self.judge = RefusalPatternJudge()
        n_max = max(n for _, n in SCALING + [MAIN])
        for label, prompts in (("harmful", inputs.harmful_prompts(n_max)),
                               ("benign", inputs.benign_prompts(n_max))):  # fmt: skip
            rows = [{"id": f"{label}-{i}", "prompt": p} for i, p in enumerate(prompts)]
            write_jsonl(folder / f"{label}.jsonl", rows)
        pool = build_candidates(CandidatesConfig(), settings.model_dir, folder / "pool.jsonl")
        self.pool = [c.to_row() for c in pool]
        self.runs = 0
        self.last: dict[bool, Path] = {}

    def time(self, k: int, n: int, naive: bool) -> Timing:
        return repeat(lambda: self.score(k, n, naive), self.settings.reps, self.settings.warmup)

    def score(self, k: int, n: int, naive: bool) -> Path:
        """Score the first k candidates on n prompts (n/2 harmful, n/2 benign)."""
        from opsa.records import write_jsonl

        self.runs += 1
        out = self.folder / f"run{self.runs}"
        candidates = self.pool[:k]
        if naive:
            tables = [self._score_alone(out / str(i), [c], n) for i, c in enumerate(candidates)]
        else:
            tables = [self._score_alone(out, candidates, n)]
        write_jsonl(out / "scores.jsonl", [row for t in tables for row in t])
        self.last[naive] = out / "scores.jsonl"
        return out

    def _score_alone(self, folder: Path, candidates: list[dict], n: int) -> list[dict]:
        """The pipeline's stages for one pool: baseline, its verdicts once, the pool's scores."""
        from opsa.contexts.flip_rate import baseline_generations, judge_baseline, score_candidates
        from opsa.records import write_jsonl

        model, sampling, folder = self.settings.model_dir, self.sampling, folder
        write_jsonl(folder / "candidates.jsonl", candidates)
        harmful, benign = self.folder / "harmful.jsonl", self.folder / "benign.jsonl"
        baseline_generations(model, harmful, benign, n // 2, n // 2, 0, sampling,
                             folder / "baseline.jsonl")  # fmt: skip
        judge_baseline(folder / "baseline.jsonl", self.judge, sampling, folder / "judged.jsonl")
        table = score_candidates(model, folder / "candidates.jsonl", folder / "judged.jsonl",
                                 self.judge, sampling, folder / "scores.csv")  # fmt: skip
        return table.to_dict(orient="records")

    def same_scores(self) -> bool:
        """Did the last naive and pipeline runs give the same flip rates and over-refusals?"""
        from opsa.records import read_jsonl

        keys = ("id", "n_tfr", "n_over_refusal")
        ours, naive = (read_jsonl(self.last[flag]) for flag in (False, True))
        return [[r[k] for k in keys] for r in ours] == [[r[k] for k in keys] for r in naive]
