"""bfloat16 against float32 on this machine's CPU: a SmolLM2-sized linear layer,
side by side, and whether drtframe would rank candidates in a bfloat16 copy here (`fast_bfloat16`).

On a CPU without AVX512-BF16 or AMX, torch emulates bfloat16 and the copy is the slower of the two, so
the scorers rank in float32 there.

    python benchmarks/bfloat16_speed.py
"""

from __future__ import annotations

import time

import torch

from drtframe.models.placement import fast_bfloat16


def timed(step, repeats: int) -> float:
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, threads {torch.get_num_threads()}, "
          f"native bfloat16: {fast_bfloat16(torch.device('cpu'))}")
    x, w = torch.randn(8 * 256, 576), torch.randn(1536, 576)  # a batch of 8 x 256 tokens through an MLP projection
    with torch.inference_mode():
        times = {dtype: timed(lambda: torch.nn.functional.linear(x.to(dtype), w.to(dtype)), 10)
                 for dtype in (torch.float32, torch.bfloat16)}
    print(f"linear 2048 x 576 -> 1536: float32 {times[torch.float32] * 1e3:.1f} ms, bfloat16 "
          f"{times[torch.bfloat16] * 1e3:.1f} ms: bfloat16 / float32 = {times[torch.bfloat16] / times[torch.float32]:.2f}x")


if __name__ == "__main__":
    main()
