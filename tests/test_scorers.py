"""Each scorer against a direct, obviously correct computation on tiny seeded models, and the
cached skip-one-block engine against re-running the whole model (same scores, same orders, fewer
block forwards)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from drtframe.errors import DrtframeError
from drtframe.forward.hidden_states import (block_inputs, carried_inputs, completed_inputs, count_block_forwards,
                                    resumed_after)
from drtframe.models.architecture import find_architecture
from drtframe.models.handle import ModelHandle
from drtframe.scoring.methods import resolve_method
from drtframe.scoring.scorer import ScoringContext, rechecked
from drtframe.scoring.skip import SkipScorer, still_racing
from test_architectures import hand_pruned
from tiny_models import CONFIGS, VOCAB, tiny_model, tiny_tokenizer


def deep_llama(layers: int = 8, seed: int = 0):
    """A tiny Llama with more blocks, so orders and costs have room to differ."""
    torch.manual_seed(seed)
    config = CONFIGS["llama"]()
    config.num_hidden_layers = layers
    return AutoModelForCausalLM.from_config(config).eval()


def handle_of(model, registry) -> ModelHandle:
    arch = find_architecture(registry, model.config.model_type)
    return ModelHandle(model, tiny_tokenizer(), "tiny", arch, model.config.num_hidden_layers)


def calibration(samples: int = 6, length: int = 16, seed: int = 3) -> torch.Tensor:
    return torch.randint(2, VOCAB, (samples, length), generator=torch.Generator().manual_seed(seed))


def ctx_for(handle, batch_size: int = 4) -> ScoringContext:
    return ScoringContext(handle, calibration(), batch_size)  # 6 samples: batches of 4 and 2


def method(registry, spec, **options):
    return resolve_method(registry, spec, {k: str(v) for k, v in options.items()})


def raw_hidden_states(model, ids) -> tuple[torch.Tensor, ...]:
    """The L+1 residual-stream states: embeddings, then each block's output. transformers applies the
    final norm to the last one, so the norm is made an identity for this call."""
    norm = model.model.norm
    model.model.norm = torch.nn.Identity()
    try:
        with torch.inference_mode():
            return model(ids, output_hidden_states=True).hidden_states
    finally:
        model.model.norm = norm


def nll(model, ids) -> float:
    """Mean next-token negative log-likelihood over every predicted token, written out."""
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids).logits.double(), dim=-1)
    picked = logp[:, :-1].gather(-1, ids[:, 1:, None])
    return -picked.mean().item()


def test_block_influence_is_mean_one_minus_cosine_over_tokens(registry):
    model = tiny_model("llama")
    ids = calibration()
    states = raw_hidden_states(model, ids)
    expected = []
    for layer in range(model.config.num_hidden_layers):
        x, y = (F.normalize(s.flatten(0, 1).double(), dim=-1) for s in (states[layer], states[layer + 1]))
        expected.append((1 - (x @ y.T).diagonal()).mean().item())  # ShortGPT's token x token matrix, diagonal
    got = method(registry, "block_influence").scorer.score(ctx_for(handle_of(model, registry)))
    assert got == pytest.approx(expected, rel=1e-5)


def test_block_influence_does_not_depend_on_batching(registry):
    handle = handle_of(tiny_model("llama"), registry)
    scorer = method(registry, "block_influence").scorer
    assert scorer.score(ctx_for(handle, 1)) == pytest.approx(scorer.score(ctx_for(handle, 6)), rel=1e-6)


def angular(states, start, n) -> float:
    a, b = states[start][:, -1].double(), states[start + n][:, -1].double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return (torch.arccos(cos.clamp(-1, 1)) / math.pi).mean().item()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_angular_distance_at_the_last_token_for_runs_of_n(n, registry):
    model = tiny_model("llama")
    states = raw_hidden_states(model, calibration())
    expected = [angular(states, start, n) for start in range(model.config.num_hidden_layers - n + 1)]
    got = method(registry, "angular_distance").scorer.score_runs(ctx_for(handle_of(model, registry)), n)
    assert got == pytest.approx(expected, rel=1e-6)


def test_angular_distance_removes_the_best_run_with_the_contiguous_schedule(registry):
    model = deep_llama()
    states = raw_hidden_states(model, calibration())
    runs = [angular(states, start, 3) for start in range(8 - 3 + 1)]
    best = min(range(len(runs)), key=runs.__getitem__)
    chosen = method(registry, "angular_distance", n=3)
    assert chosen.name == "angular_distance@contiguous"
    plan = chosen.schedule.plan(chosen.scorer, ctx_for(handle_of(model, registry)), 3)
    assert plan.order == plan.removed == (best, best + 1, best + 2)
    assert plan.scores[:6] == pytest.approx(runs, rel=1e-6) and plan.scores[6:] == (None, None)


def test_angular_distance_refuses_a_run_length_that_disagrees(registry):
    ctx = ctx_for(handle_of(tiny_model("llama"), registry))
    with pytest.raises(DrtframeError, match="n=2 but the schedule removes 3"):
        method(registry, "angular_distance", n=2).scorer.score_runs(ctx, 3)
    with pytest.raises(DrtframeError, match="contiguous schedule"):
        method(registry, "angular_distance@one_shot", n=2).scorer.score(ctx)


EXACT = [{"cache": True, "bfloat16": False}, {"cache": False}]  # every candidate in float32


@pytest.mark.parametrize("options", EXACT, ids=["cached", "rerun"])
def test_perplexity_is_the_nll_with_the_block_deleted(options, registry):
    model = tiny_model("llama")
    ids = calibration()
    expected = [nll(hand_pruned(model, (layer,)), ids) for layer in range(model.config.num_hidden_layers)]
    chosen = method(registry, "perplexity", **options)
    assert chosen.name == "perplexity@iterative"
    assert chosen.scorer.score(ctx_for(handle_of(model, registry))) == pytest.approx(expected, rel=1e-5)


def test_without_native_bfloat16_the_ranking_is_float32s(registry, monkeypatch):
    """On a device that emulates bfloat16 (an AVX2-only CPU: several times slower than float32) no bfloat16
    copy is made, and the default ranking is the float32 one, score for score."""
    from drtframe.models import placement

    assert placement.fast_bfloat16(torch.device("meta")) is False
    monkeypatch.setattr("drtframe.models.handle.fast_bfloat16", lambda device: False)
    handle = handle_of(tiny_model("llama"), registry)
    assert handle.bfloat16_copy() is None
    ranked = method(registry, "perplexity").scorer.score(ctx_for(handle))
    assert ranked == method(registry, "perplexity", bfloat16=False).scorer.score(ctx_for(handle))
    monkeypatch.setattr("drtframe.models.handle.fast_bfloat16", lambda device: True)
    assert next(handle.bfloat16_copy().model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_bfloat16_ranking_measures_the_leaders_in_float32(model_type, registry):
    """The default ranks in bfloat16, then re-measures in float32 every candidate near the best: the
    lowest score is float32's and belongs to float32's best block; the others are bfloat16's."""
    handle = handle_of(tiny_model(model_type), registry)
    ranked = method(registry, "perplexity").scorer.score(ctx_for(handle))
    exact = method(registry, "perplexity", bfloat16=False).scorer.score(ctx_for(handle))
    best = min(range(len(exact)), key=exact.__getitem__)
    assert min(range(len(ranked)), key=ranked.__getitem__) == best
    assert ranked[best] == pytest.approx(exact[best], rel=1e-6)
    assert ranked == pytest.approx(exact, abs=0.05)  # bfloat16's rounding of a mean NLL
    assert next(handle.model.parameters()).dtype == torch.float32


def test_a_ranking_resumes_from_the_inputs_the_round_before_saved(registry):
    """After block b goes, candidates before b start from the input their last replay gave b: the
    same scores as a ranking from scratch, with fewer block forwards."""
    from dataclasses import replace

    from drtframe.scoring.skip import KEPT_BLOCKS

    handle = handle_of(deep_llama(), registry)
    ctx = ctx_for(handle)
    scorer = method(registry, "perplexity").scorer
    scorer.score(ctx)
    (carried,) = scorer._carried.values()
    saved = {block for batch in carried.states for _, block in batch}
    assert len(saved) == KEPT_BLOCKS
    removed = max(saved)  # the saved block with the most candidates before it
    scores, counts = {}, {}
    with handle.temporarily_without((removed,)) as pruned:
        for resume, chosen in ((True, scorer), (False, method(registry, "perplexity", resume=False).scorer)):
            with count_block_forwards(pruned) as counter:
                scores[resume] = chosen.score(replace(ctx, handle=pruned))
            counts[resume] = counter.count
    assert scores[True] == pytest.approx(scores[False], rel=1e-6)
    assert counts[True] < counts[False]


def test_nothing_carries_over_to_other_calibration_data(registry):
    """A scorer that ranked on one calibration set starts afresh on another: the same scores as a new one."""
    from dataclasses import replace

    handle = handle_of(deep_llama(), registry)
    scorer = method(registry, "perplexity").scorer
    first = scorer.score(ctx_for(handle))
    removed = min(range(8), key=first.__getitem__)
    other = ScoringContext(handle, calibration(seed=11), 4)
    with handle.temporarily_without((removed,)) as pruned:
        scores = [chosen.score(replace(other, handle=pruned)) for chosen in (scorer, method(registry, "perplexity").scorer)]
    assert scores[0] == scores[1]


@pytest.mark.parametrize("change", ["in place", "replaced"])
def test_nothing_carries_over_once_a_weight_changed(change, registry):
    """A healer or an optimiser step between two rankings makes the inputs the first one saved stale:
    the next ranking starts afresh (the same scores as a new scorer)."""
    from dataclasses import replace

    handle = handle_of(deep_llama(), registry)
    ctx = ctx_for(handle)
    scorer = method(registry, "perplexity").scorer
    scorer.score(ctx)
    (carried,) = scorer._carried.values()
    removed = max(block for batch in carried.states for _, block in batch)
    down = handle.layers[0].mlp.down_proj  # block 0 runs before every saved input
    with torch.no_grad():
        if change == "in place":
            down.weight.mul_(1.5)
        else:
            down.weight = torch.nn.Parameter(down.weight * 1.5)
    with handle.temporarily_without((removed,)) as pruned:
        scores = [chosen.score(replace(ctx, handle=pruned)) for chosen in (scorer, method(registry, "perplexity").scorer)]
    assert scores[0] == scores[1]


def test_rechecked_measures_every_candidate_the_ranking_puts_near_the_best():
    ranked = {0: 1.00, 1: 1.01, 2: 1.10, 3: 1.50}
    truth = {0: 1.05, 1: 1.00, 2: 1.20, 3: 1.04}  # the ranking erred by 0.46 on block 3
    calls = []

    def measure(close):
        calls.append(close)
        return {p: truth[p] for p in close}

    exact = rechecked(ranked, measure, float, within=0.02)
    assert calls[0] == [0, 1]  # within 0.02 of the best ranked value
    # errors of 0.05 and 0.01 widen the margin to 0.1 around the best exact value (1.00): block 2 is in
    assert 2 in exact and 3 not in exact
    assert min(exact, key=exact.get) == 1


def test_still_racing_lets_go_only_of_candidates_clearly_beyond_the_margin():
    base = torch.tensor([2.0, 3.0, 2.5, 4.0])
    losses = {0: base, 1: base + 0.01, 2: base + torch.tensor([0.5, 0.6, 0.5, 0.55]),
              3: base + torch.tensor([0.0, 1.0, -0.9, 0.1])}
    assert still_racing(losses, within=0.02) == [0, 1, 3]  # 3 is as far on average, but noisily
    assert still_racing({p: v[:1] for p, v in losses.items()}, within=0.02) == [0, 1, 2, 3]  # one sample


def test_a_race_stops_far_off_candidates_and_keeps_the_best_with_its_exact_score(registry):
    handle = handle_of(deep_llama(), registry)
    ctx = ScoringContext(handle, calibration(samples=12), 2)
    scores, counts = {}, {}
    for race in (True, False):
        scorer = method(registry, "perplexity", race=race, resume=False).scorer
        with count_block_forwards(handle) as counter:
            scores[race] = scorer.score(ctx)
        counts[race] = counter.count
    best = min(range(8), key=scores[False].__getitem__)
    assert min(range(8), key=scores[True].__getitem__) == best
    assert scores[True][best] == scores[False][best]
    assert counts[True] < counts[False]  # block 3 left the race (its score: the batches it ran)
    assert scores[True][3] != pytest.approx(scores[False][3], abs=1e-3)


def test_the_race_has_its_own_margin(registry):
    """`race_within`, not `recheck_within`, decides who leaves the race: a wide one keeps everyone."""
    handle = handle_of(deep_llama(), registry)
    ctx = ScoringContext(handle, calibration(samples=12), 2)
    counts = {}
    for name, options in (("no race", {"race": False}), ("wide", {"race_within": 100.0}), ("default", {})):
        with count_block_forwards(handle) as counter:
            method(registry, "perplexity", resume=False, recheck_within=0.02, **options).scorer.score(ctx)
        counts[name] = counter.count
    assert counts["wide"] == counts["no race"] > counts["default"]


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_cached_skipping_matches_rerunning_on_every_architecture(model_type, registry):
    handle = handle_of(tiny_model(model_type), registry)
    ctx = ctx_for(handle)
    cached = method(registry, "perplexity", bfloat16=False).scorer.score(ctx)
    rerun = method(registry, "perplexity", cache=False).scorer.score(ctx)
    assert cached == pytest.approx(rerun, rel=1e-5)


@pytest.mark.parametrize("recorded, forwards, message", [(1, 2, "more forwards"), (2, 1, "fewer forwards")])
def test_a_replay_that_does_not_match_its_recording_fails_loudly(recorded, forwards, message, registry):
    handle = handle_of(tiny_model("llama"), registry)
    ids = torch.tensor([[5, 6, 7, 8]])
    state = block_inputs(handle, ids)[2]
    with pytest.raises(RuntimeError, match=message):
        with resumed_after(handle, 2, iter([state] * recorded)):
            for _ in range(forwards):
                handle.model(input_ids=ids, use_cache=False)
    assert handle.num_layers == handle.original_num_layers  # blocks put back


def test_iterative_order_is_greedy_and_the_same_with_and_without_cache(registry):
    model = deep_llama()
    ids = calibration()
    removed: list[int] = []
    for _ in range(3):  # the greedy loop written out: delete each candidate for real, keep the best
        candidates = [j for j in range(8) if j not in removed]
        removed.append(min(candidates, key=lambda j: nll(hand_pruned(model, tuple(removed) + (j,)), ids)))
    handle = handle_of(model, registry)
    orders = []
    for options in ({}, *EXACT):
        chosen = method(registry, "perplexity", **options)
        orders.append(chosen.schedule.plan(chosen.scorer, ctx_for(handle), 3).order)
    assert orders == [tuple(removed)] * 3
    assert handle.num_layers == 8


def test_caching_costs_the_predicted_block_forwards(registry):
    handle = handle_of(deep_llama(), registry)
    counts = {}
    for cache in (True, False):
        chosen = method(registry, "perplexity", cache=cache, bfloat16=False)
        with count_block_forwards(handle) as counter:
            chosen.schedule.plan(chosen.scorer, ctx_for(handle), 3)
        counts[cache] = counter.count
    batches = 2
    rounds = (8, 7, 6)  # layers present when each removal is chosen
    assert counts[False] == batches * sum(n * (n - 1) for n in rounds)
    assert counts[True] == batches * sum(n + n * (n - 1) // 2 + 1 for n in rounds)


def test_block_inputs_up_to_a_block_run_only_the_blocks_before_it(registry):
    handle = handle_of(deep_llama(), registry)
    ids = calibration()[:2]
    whole = block_inputs(handle, ids)
    with count_block_forwards(handle) as counter:
        front = block_inputs(handle, ids, last=3)
    assert counter.count == 4 and len(front) == 4 and handle.num_layers == 8
    for a, b in zip(front, whole):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    known = dict(zip(handle.kept[:3], whole[:3]))  # recorded before: blocks 2..4 run from block 2's input
    with count_block_forwards(handle) as counter:
        completed = completed_inputs(handle, ids, known, 5)
    assert counter.count == 4 and len(completed) == 6
    for a, b in zip(completed, whole):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_carried_inputs_keep_what_still_holds_after_one_removal():
    before, inputs = (0, 1, 2, 3, 4), {0: "a", 1: "b", 2: "c", 3: "d"}
    assert carried_inputs(before, inputs, (0, 1, 3, 4)) == {0: "a", 1: "b", 3: "c"}  # 2's input now enters 3
    assert carried_inputs(before, inputs, (0, 1, 2, 3)) == {0: "a", 1: "b", 2: "c", 3: "d"}
    assert carried_inputs(before, {0: "a"}, (0, 1, 3, 4)) == {0: "a"}  # 2's input was not recorded
    assert carried_inputs(before, inputs, before) == {}
    assert carried_inputs(before, inputs, (0, 3, 4)) == {}


def test_float32_rechecks_start_from_the_inputs_the_round_before_recorded(registry):
    """After block b goes, a re-check needs no recording of the blocks before b, and starts the rest
    from b's recorded input: the same scores with fewer block forwards."""
    from dataclasses import replace

    handle = handle_of(deep_llama(), registry)
    ctx = ctx_for(handle)
    scorers = [method(registry, "perplexity").scorer for _ in range(2)]
    for scorer in scorers:
        first = scorer.score(ctx)
    removed = min(range(8), key=first.__getitem__)
    (carried,) = scorers[1]._carried.values()
    assert all(removed in batch for batch in carried.inputs)
    scorers[1]._carried[handle.model] = replace(carried, inputs=[])  # as if nothing had been recorded
    scores, counts = [], []
    with handle.temporarily_without((removed,)) as pruned:
        for scorer in scorers:
            with count_block_forwards(pruned) as counter:
                scores.append(scorer.score(replace(ctx, handle=pruned)))
            counts.append(counter.count)
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)
    assert counts[0] < counts[1]


def test_taylor_is_the_weight_times_gradient_salience_of_each_block(registry):
    model = tiny_model("llama")
    ids = calibration()
    for batch in (ids[:4], ids[4:]):
        model(batch, labels=batch).loss.backward()
    expected = [sum((p * p.grad).abs().sum().item() for name, p in layer.named_parameters() if not name.endswith("bias"))
                for layer in model.model.layers]
    model.zero_grad(set_to_none=True)
    got = method(registry, "taylor").scorer.score(ctx_for(handle_of(model, registry)))
    assert got == pytest.approx(expected, rel=1e-4)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("spec", ["block_influence", "angular_distance@one_shot", "perplexity", "taylor"])
def test_scorers_follow_a_pruned_model(spec, registry):
    """Scores of a handle with layers removed equal those of the same model deleted by hand."""
    model = deep_llama(6)
    reference = hand_pruned(deep_llama(6), (1, 4))
    scorer = method(registry, spec).scorer
    got = scorer.score(ctx_for(handle_of(model, registry).without((1, 4))))
    expected = scorer.score(ctx_for(handle_of(reference, registry)))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("spec", ["block_influence", "angular_distance", "perplexity", "taylor"])
def test_scorers_that_read_data_need_calibration(spec, registry):
    chosen = method(registry, spec)
    assert chosen.scorer.needs_calibration
    with pytest.raises(DrtframeError, match="needs calibration data"):
        chosen.scorer.score(ScoringContext(handle_of(tiny_model("llama"), registry), None))


def test_default_counts_of_the_schedules(registry):
    assert method(registry, "block_influence").schedule.default_count(method(registry, "block_influence").scorer, 8) == 7
    angular = method(registry, "angular_distance")
    assert angular.schedule.default_count(angular.scorer, 8) == 1
    angular = method(registry, "angular_distance", n=4)
    assert angular.schedule.default_count(angular.scorer, 8) == 4


class LogitsLoss(SkipScorer):
    """A third-party loss written against `loss(logits, ids)`: perplexity's, from whole logits."""

    name = "logits_loss"

    def loss(self, logits, ids):
        return F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), ids[:, 1:], reduction="none").mean(-1)


@pytest.mark.parametrize("options", [{"bfloat16": "false"}, {}], ids=["float32", "default"])
def test_a_skip_scorer_written_on_logits_scores_as_perplexity_does(options, registry):
    """perplexity reads the tiled head (`next_token_nll`), this scorer the model's whole logits: the
    same float32 scores; in the default bfloat16 ranking, the same block chosen with the same float32
    score, the others within bfloat16's rounding (the tiles take the target's logit in float32)."""
    handle = handle_of(deep_llama(), registry)
    expected = method(registry, "perplexity", **options).scorer.score(ctx_for(handle))
    got = LogitsLoss(LogitsLoss.Options(**{k: v == "true" for k, v in options.items()})).score(ctx_for(handle))
    best = min(range(len(expected)), key=expected.__getitem__)
    assert min(range(len(got)), key=got.__getitem__) == best
    assert got[best] == pytest.approx(expected[best], abs=1e-5)
    assert got == pytest.approx(expected, abs=1e-5 if options else 1e-3)


def test_a_skip_scorer_with_no_loss_says_so(registry):
    class NoLoss(SkipScorer):
        name = "no_loss"

    with pytest.raises(NotImplementedError, match="NoLoss implements neither"):
        NoLoss().score(ctx_for(handle_of(deep_llama(), registry)))
