"""Randomly initialised models with the paper's architectures, for the GPU row (no hub here).

`build_random_model(name, folder)` writes a loadable model directory: the architecture's
published config (Qwen3-0.6B; DeepSeek-R1-Distill-Qwen-1.5B, a Qwen2 model), seeded random
bf16 weights, and a byte-level tokenizer with exactly the architecture's vocabulary size and a
ChatML chat template (both models' template family). Every id the model can sample decodes,
and text encodes one token per byte, so prompts and completions have real lengths. `small`
keeps the vocabulary and shrinks the rest, to check the code path on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# the published configs' shape fields (the Hugging Face model cards' config.json)
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "qwen3-0.6b": {
        "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024,
        "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
        "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
        "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    },
    "r1-distill-qwen-1.5b": {
        "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 1536,
        "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
        "num_key_value_heads": 2, "max_position_embeddings": 131072, "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
    },
}  # fmt: skip
SMALL = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32}  # fmt: skip
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_random_model(name: str, folder: Path, small: bool = False, seed: int = 0) -> Path:
    """Write the random model `name` (a key of ARCHITECTURES) to `folder`; returns it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = ARCHITECTURES[name] | (SMALL if small else {})
    ids = {t: shape["vocab_size"] - len(SPECIALS) + k for k, t in enumerate(SPECIALS)}
    config = AutoConfig.for_model(
        **shape, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"]
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    byte_tokenizer(shape["vocab_size"]).save_pretrained(folder)
    return folder


def byte_tokenizer(vocab_size: int) -> Any:
    """A byte-level tokenizer of `vocab_size` ids: the 256 bytes, filler tokens that decode to
    their own name, and the ChatML special tokens as the last ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    fillers = vocab_size - len(alphabet) - len(SPECIALS)
    vocab = {ch: k for k, ch in enumerate(alphabet)}
    vocab |= {f"<x{k}>": len(alphabet) + k for k in range(fillers)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML,
    )
