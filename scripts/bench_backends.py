"""Tokens/s of the HF and vLLM generation backends on a model, at the pipeline's batch shapes.

    python scripts/bench_backends.py MODEL_DIR --backend hf|vllm [--threads 1]

One backend per process (an in-process vLLM engine changes torch's process state). Prompts are
the project's builtin benign and over-refusal sets, rendered with the model's chat template.
Prints the seconds to load and for a first 2-prompt call (warm-up, paid once per step), then
one JSON line per setting: sequences, new tokens, seconds, tokens/s. The measured figures are in
docs/benchmarks.md ("Generation backends").
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources

import torch

from opsa.generation.backend import open_generator
from opsa.generation.engine import SamplingParams
from opsa.models.runtime import Runtime, RuntimeConfig, using
from opsa.prompting.placement import render_prompt

# (name, prompts, sampling): the embedded config's flip-rate scoring, safety generation, and
# OPSA rollouts (8 prompts per step at temperature 0.6)
SETTINGS = [
    ("flip_rate", 32, SamplingParams(temperature=0.0, max_new_tokens=48, batch_size=32)),
    ("generate_safety", 16, SamplingParams(temperature=0.0, max_new_tokens=96, batch_size=16)),
    ("opsa_rollout", 8, SamplingParams(temperature=0.6, max_new_tokens=48, batch_size=16)),
]


def prompts(n: int) -> list[str]:
    rows = []
    for name in ("benign.jsonl", "overrefusal.jsonl"):
        text = resources.files("opsa.data.builtin").joinpath(name).read_text()
        rows += [json.loads(line)["prompt"] for line in text.splitlines() if line.strip()]
    return rows[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--backend", choices=["hf", "vllm"], required=True)
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    config = RuntimeConfig(vllm={"max_model_len": 1024, "cpu_kv_cache_mib": 2048})
    with using(Runtime(config, a.backend)):
        start = time.perf_counter()
        generator = open_generator(a.model_dir, "policy", "bench")
        load = time.perf_counter() - start
        texts = [render_prompt(generator.tokenizer, p) for p in prompts(32)]
        start = time.perf_counter()
        generator.generate(texts[:2], SamplingParams(max_new_tokens=4))  # first call
        first = time.perf_counter() - start
        row = {"backend": a.backend, "load_s": round(load, 1), "first_call_s": round(first, 1)}
        print(json.dumps(row), flush=True)
        for name, n, params in SETTINGS:
            start = time.perf_counter()
            out = generator.generate(texts[:n], params)
            seconds = time.perf_counter() - start
            tokens = sum(len(c.token_ids) + (c.stop_id is not None) for s in out for c in s)
            row = {"backend": a.backend, "setting": name, "sequences": n, "tokens": tokens}
            row |= {"seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
