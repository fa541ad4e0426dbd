"""Tiny seeded models of every supported architecture, built from configs (as transformers' testers do)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import (Gemma3TextConfig, GPT2Config, GPTNeoXConfig, LlamaConfig, MistralConfig,
                          OPTConfig, Phi3Config, PreTrainedTokenizerFast, Qwen2Config, Qwen3Config, Qwen3MoeConfig, AutoModelForCausalLM)

VOCAB = 96
LAYERS = 5
_common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
               bos_token_id=1, eos_token_id=1)
_ids = dict(bos_token_id=1, eos_token_id=1)

CONFIGS = {
    "llama": lambda: LlamaConfig(**_common),
    "qwen2": lambda: Qwen2Config(**_common, use_sliding_window=True, sliding_window=4, max_window_layers=2),
    "qwen3": lambda: Qwen3Config(**_common, head_dim=8),
    "qwen3_moe": lambda: Qwen3MoeConfig(**{**_common, "intermediate_size": 64}, head_dim=8, num_experts=4,
                                        num_experts_per_tok=2, moe_intermediate_size=16, mlp_only_layers=[1, 3]),
    "mistral": lambda: MistralConfig(**_common, sliding_window=4),
    "gemma3_text": lambda: Gemma3TextConfig(**_common, head_dim=8, sliding_window=4,
                                            layer_types=["sliding_attention", "full_attention", "sliding_attention",
                                                         "sliding_attention", "full_attention"]),
    "phi3": lambda: Phi3Config(**_common, pad_token_id=1),
    "gpt2": lambda: GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=LAYERS, n_head=4, n_positions=128, **_ids),
    "gpt_neox": lambda: GPTNeoXConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                                      num_attention_heads=4, max_position_embeddings=128, **_ids),
    "opt": lambda: OPTConfig(vocab_size=VOCAB, hidden_size=32, ffn_dim=64, num_hidden_layers=LAYERS,
                             num_attention_heads=4, max_position_embeddings=128, word_embed_proj_dim=32, **_ids),
}


def tiny_model(model_type: str, seed: int = 0):
    """A randomly initialised model of `model_type`, reproducible from `seed`, in eval mode."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(CONFIGS[model_type]()).eval()


def tiny_longrope_phi3(seed: int = 0):
    """A tiny Phi-3 with LongRoPE scaling (as Phi-3-128k and Phi-3.5-mini have), whose rotary embedding
    rewrites its frequency buffer in place on every forward."""
    torch.manual_seed(seed)
    config = CONFIGS["phi3"]()
    half = config.hidden_size // config.num_attention_heads // 2
    config.rope_parameters = {"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 1.0,
                              "short_factor": [1.0] * half, "long_factor": [2.0] * half,
                              "original_max_position_embeddings": 16}
    config.original_max_position_embeddings = 16
    return AutoModelForCausalLM.from_config(config).eval()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over VOCAB ids, enough for saving and short generations."""
    words = ["<unk>", "<eos>"] + [f"w{i}" for i in range(VOCAB - 2)]
    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>")


def sample_ids(seed: int = 1, length: int = 12) -> torch.Tensor:
    return torch.randint(2, VOCAB, (2, length), generator=torch.Generator().manual_seed(seed))
