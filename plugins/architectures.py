"""Where the decoder blocks live in the architectures drtframe supports out of the box."""

from __future__ import annotations

from drtframe import Architecture, hookimpl


def _gpt2_unsupported(config) -> str | None:
    if getattr(config, "scale_attn_by_inverse_layer_idx", False):
        return "scale_attn_by_inverse_layer_idx ties each block's attention scale to its index"
    return None


ARCHITECTURES = (
    Architecture("llama-like", "Llama, Mistral, Qwen2/3, Phi-3: blocks at model.layers",
                 ("llama", "mistral", "qwen2", "qwen3", "phi3"), "model.layers", "model.norm",
                 mlp_out_path="mlp.down_proj"),
    Architecture("qwen-moe", "Qwen2/3 mixture-of-experts: blocks at model.layers, dense-MLP layers remapped",
                 ("qwen2_moe", "qwen3_moe"), "model.layers", "model.norm", index_lists=("mlp_only_layers",)),
    # Gemma 3 normalises the MLP output (post_feedforward_layernorm) before adding it: no linear fold.
    Architecture("gemma3", "Gemma 3 text (sliding and full attention mixed): blocks at model.layers",
                 ("gemma3_text",), "model.layers", "model.norm"),
    Architecture("gpt2", "GPT-2: blocks at transformer.h", ("gpt2",), "transformer.h", "transformer.ln_f",
                 unsupported=_gpt2_unsupported, mlp_out_path="mlp.c_proj"),
    Architecture("gpt-neox", "GPT-NeoX / Pythia: blocks at gpt_neox.layers", ("gpt_neox",),
                 "gpt_neox.layers", "gpt_neox.final_layer_norm", mlp_out_path="mlp.dense_4h_to_h"),
    Architecture("opt", "OPT: blocks at model.decoder.layers", ("opt",), "model.decoder.layers",
                 "model.decoder.final_layer_norm"),
)


@hookimpl
def drtframe_register_architectures(register):
    for arch in ARCHITECTURES:
        register(arch)
