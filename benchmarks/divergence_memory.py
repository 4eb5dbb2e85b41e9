"""Row 4: the chunked distillation loss against a naive full-tensor loss, same inputs.

Student and teacher final hidden states at N positions, and a student and a teacher LM head of
vocabulary V (Qwen's 151,936; hidden 1,024 as Qwen3-0.6B), seeded. The naive side applies each
head to all N positions at once ([N, V] logits per model, as `model(...).logits` would hold
them) and computes the same per-token loss; the chunked side is the training loop's own
`chunked_terms` over chunks of 256 positions (for the top-k, the student's head on the support
columns only). Both run the loss forward and backward (student
hidden states and head get gradients); each side runs in its own process, and its memory is
the peak RSS above what the process held once the inputs existed. The loss is the pipeline's
default: mixed 0.5 over the teacher's top-512, and, where named, the full vocabulary.
"""

from __future__ import annotations

from typing import Any

from benchmarks.isolate import run_isolated
from benchmarks.suite import Settings
from benchmarks.timing import ratio

FULL = {"positions": 2048, "vocab": 151_936, "hidden": 1024, "chunk": 256}
SMALL = {"positions": 64, "vocab": 4096, "hidden": 64, "chunk": 16}
ESTIMATORS = ("topk", "full")
TOLERANCE = 1e-5


def run(settings: Settings) -> dict[str, Any]:
    sizes = SMALL if settings.small else FULL
    cases = {}
    for estimator in ESTIMATORS:
        sides = {}
        for mode in ("chunked", "naive"):
            kwargs = sizes | {"mode": mode, "estimator": estimator,
                              "reps": settings.reps, "warmup": settings.warmup}  # fmt: skip
            log = settings.side_log(4, f"{estimator}_{mode}")
            sides[mode] = run_isolated(
                "benchmarks.divergence_memory:loss_side", kwargs, settings.threads, log
            )
        cases[estimator] = compare(sides["chunked"], sides["naive"])
    return summarise(cases, sizes)


def compare(chunked: dict[str, Any], naive: dict[str, Any]) -> dict[str, Any]:
    diff = abs(chunked["loss"] - naive["loss"])
    rel = diff / max(abs(naive["loss"]), 1e-30)
    grad_rel = abs(chunked["grad_norm"] - naive["grad_norm"]) / max(naive["grad_norm"], 1e-30)
    return {
        "chunked": chunked,
        "naive": naive,
        "loss_abs_diff": diff,
        "loss_rel_diff": rel,
        "grad_norm_rel_diff": grad_rel,
        "same_value": bool(rel <= TOLERANCE and grad_rel <= TOLERANCE),
        "memory_ratio": ratio(naive["loss_peak_mb"], chunked["loss_peak_mb"]),
        "time_ratio": ratio(naive["timing"]["median_s"], chunked["timing"]["median_s"]),
    }


def summarise(cases: dict[str, dict[str, Any]], sizes: dict[str, int]) -> dict[str, Any]:
    main = cases["topk"]
    full = cases["full"]
    met = all(c["same_value"] and c["memory_ratio"] >= 4 for c in cases.values())
    return {
        "measure": f"distillation loss fwd+bwd, V {sizes['vocab']:,}, {sizes['positions']:,} "
        "positions: peak memory above the inputs (top-512; full vocabulary)",
        "ours": f"chunked: {_gib(main['chunked'])} / {_gib(full['chunked'])}",
        "peer": f"naive full-tensor: {_gib(main['naive'])} / {_gib(full['naive'])}",
        "ratio": main["memory_ratio"],
        "ratio_text": f"{main['memory_ratio']}× / {full['memory_ratio']}× less memory; "
        f"value rel. diff {main['loss_rel_diff']:.1e} / {full['loss_rel_diff']:.1e}",
        "target": "same value to 1e-5, ≥4× less peak memory",
        "met": met,
        "sizes": sizes,
        "cases": cases,
    }


def _gib(side: dict[str, Any]) -> str:
    return f"{side['loss_peak_mb'] / 1024:.2f} GiB ({side['timing']['median_s']:.2f} s)"


def loss_side(
    mode: str,
    estimator: str,
    positions: int,
    vocab: int,
    hidden: int,
    chunk: int,
    reps: int,
    warmup: int,
) -> dict[str, Any]:
    """Time the loss forward + backward on seeded inputs; report its value, the student
    gradients' norm and the peak RSS above the inputs."""
    import torch

    from benchmarks.machine import peak_rss_mb, rss_mb
    from benchmarks.timing import repeat
    from opsa.training.chunked import chunked_terms
    from opsa.training.config import OPSAConfig
    from opsa.training.token_loss import DistillSpec, distill_from_hidden, distill_terms

    torch.manual_seed(0)
    config = OPSAConfig(divergence="mixed", estimator=estimator, top_k=512)
    spec = DistillSpec.from_config(config)
    heads = [torch.nn.Linear(hidden, vocab, bias=False) for _ in range(2)]
    for head in heads:
        torch.nn.init.normal_(head.weight, std=hidden**-0.5)
    s_head, t_head = heads
    t_head.requires_grad_(False)
    h_s = torch.randn(positions, hidden, requires_grad=True)
    h_t = h_s.detach() + 0.5 * torch.randn(positions, hidden)
    targets = torch.randint(vocab, (positions,))
    token_loss = lambda s, t, y: distill_terms(spec, s, t, y)  # noqa: E731
    head_loss = lambda head, h, t, y: distill_from_hidden(spec, head, h, t, y)  # noqa: E731
    inputs_mb = rss_mb()
    values: list[float] = []

    def once() -> None:
        h_s.grad, s_head.weight.grad = None, None
        if mode == "chunked":
            total, _ = chunked_terms(head_loss, s_head, h_s, targets, chunk, t_head, h_t)
        else:
            with torch.no_grad():
                t_logits = t_head(h_t)
            total = token_loss(s_head(h_s), t_logits, targets)[0].sum()
        total.backward()
        values.append(float(total.detach()))

    timing = repeat(once, reps, warmup)
    grads = torch.cat([h_s.grad.flatten(), s_head.weight.grad.flatten()])
    peak = peak_rss_mb()
    return {
        "loss": values[-1],
        "grad_norm": float(grads.double().norm()),
        "timing": timing.to_dict(),
        "inputs_rss_mb": round(inputs_mb, 1),
        "peak_rss_mb": round(peak, 1),
        "loss_peak_mb": round(peak - inputs_mb, 1),
    }
