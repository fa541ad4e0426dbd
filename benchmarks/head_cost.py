"""The calibration loss's head and logsumexp, side by side in one run, on SmolLM2's real head and the
final-norm states of one 8 x 256 batch of `wikitext2-sample`.

Prints, best of `--rounds`, in bfloat16 (the SLEB ranking's copy) and float32 (its re-checks):
- the textbook logsumexp of whole logits (`torch.logsumexp`), the logsumexp shifted by each row's
  largest logit 32 rows at a time (drtframe's form before 2026-12-01) and `drtframe.row_logsumexp`
  (unshifted), with the largest difference from the textbook one;
- the model's whole logits then `row_logsumexp` and the target's logit, against
  `drtframe.OutputHead`'s tiles (`logsumexp` and `target_logits`), with the largest difference.

    python benchmarks/head_cost.py [--model smollm2-135m] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from drtframe.forward.logits import _shifted_logsumexp, row_logsumexp
from drtframe.forward.output_head import OutputHead
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.calibration import WIKITEXT2_SAMPLE, CalibrationSpec, calibration_tokens


def best_ms(run, rounds: int) -> float:
    run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def shifted_chunks(rows: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """The logsumexp drtframe took before: each 32-row chunk shifted by its rows' maxima (what
    `row_logsumexp` now falls back to)."""
    return torch.cat([_shifted_logsumexp(rows[start:start + chunk], None, start)
                      for start in range(0, len(rows), chunk)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    handle = load_model(ModelSpec(args.model, device="cpu", dtype="float32"), load_registry())
    ids = calibration_tokens(CalibrationSpec(WIKITEXT2_SAMPLE, 8, 256), handle.tokenizer)
    captured = []
    hook = handle.final_norm.register_forward_hook(lambda module, inputs, output: captured.append(output))
    with torch.inference_mode():
        handle.model(input_ids=ids, use_cache=False, logits_to_keep=1)
    hook.remove()
    normed32 = captured[0][:, :-1].reshape(-1, captured[0].shape[-1])
    targets = ids[:, 1:].reshape(-1)
    print(f"{args.model}: {len(normed32)} rows x {handle.model.get_output_embeddings().weight.shape[0]} "
          f"vocabulary, {torch.get_num_threads()} threads, best of {args.rounds}")
    for dtype in (torch.bfloat16, torch.float32):
        head = OutputHead.of(handle)
        head = OutputHead(head.weight.to(dtype), None if head.bias is None else head.bias.to(dtype), head.softcap)
        normed = normed32.to(dtype)
        with torch.inference_mode():
            logits = F.linear(normed, head.weight)
            textbook = torch.logsumexp(logits.float(), -1)
            forms = {"torch.logsumexp": lambda: torch.logsumexp(logits.float(), -1),
                     "shifted, 32 rows": lambda: shifted_chunks(logits),
                     "row_logsumexp": lambda: row_logsumexp(logits)}
            line = [f"{name} {best_ms(run, args.rounds):.1f} ms" for name, run in forms.items()]
            gap = (row_logsumexp(logits) - textbook).abs().max().item()
            print(f"  {str(dtype):15} logsumexp of the logits: {', '.join(line)} (row_logsumexp within {gap:.1e})")

            def whole():
                z = F.linear(normed, head.weight)
                return row_logsumexp(z) - z.gather(-1, targets[:, None]).squeeze(-1).float()

            def tiles():
                return head.logsumexp(normed) - head.target_logits(normed, targets)

            ours, theirs = best_ms(tiles, args.rounds), best_ms(whole, args.rounds)
            gap = (tiles() - whole()).abs().max().item()
            print(f"  {'':15} loss with the head: whole logits {theirs:.1f} ms, OutputHead tiles {ours:.1f} ms "
                  f"({theirs / ours:.2f}x), within {gap:.1e}")


if __name__ == "__main__":
    main()
