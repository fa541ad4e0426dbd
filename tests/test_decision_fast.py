"""The decision scorer's fast path (stacked candidates, bfloat16 ranking, float32 re-check) against the slow path.

Tiny seeded models of several architectures, items whose options are 1-4 words long (so the
continuation passes against the KV cache run too); the slow path re-runs the whole float32 model per
candidate (`cache=false`).
"""

from __future__ import annotations

import json
import random

import pytest
import torch

from drtframe.evaluation.loglikelihood import choice_scores, choice_scores_without
from drtframe.evaluation.runner import load_items, resolve_benchmark
from drtframe.evaluation.stacked_replay import (read_recorded, record, recorded_without, replay,
                                                stacked_choice_scores_without)
from drtframe.models.loading import ModelSpec, load_model
from drtframe.probing.lens import lens_profile, profile_readout
from drtframe.scoring.methods import resolve_method
from drtframe.scoring.scorer import ScoringContext
from test_eval_cli import TASK
from tiny_models import tiny_longrope_phi3, tiny_model, tiny_tokenizer

ARCHITECTURES = ["llama", "gpt2", "gemma3_text", "opt", "mistral"]


@pytest.fixture
def words_task(tmp_path):
    rng = random.Random(2)
    rows = [{"question": " ".join(f"w{rng.randrange(2, 90)}" for _ in range(rng.randrange(2, 7))),
             "options": [" ".join(f"w{rng.randrange(2, 90)}" for _ in range(rng.randrange(1, 5))) for _ in range(3)],
             "answer": rng.randrange(3)} for _ in range(24)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "task.yaml").write_text(TASK)
    return tmp_path / "task.yaml"


def loaded(model_type, tmp_path, registry):
    path = tmp_path / model_type
    tiny_model(model_type).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return load_model(ModelSpec(str(path)), registry)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_stacked_candidates_score_as_one_candidate_per_forward(model_type, words_task, tmp_path, registry):
    handle = loaded(model_type, tmp_path, registry)
    items = load_items(resolve_benchmark(registry, str(words_task)), None, None, None)
    for removed in ((), (1, 3)):  # also a model with a non-contiguous removal already made
        with handle.temporarily_without(removed) as pruned:
            positions = list(range(pruned.num_layers))
            one = choice_scores_without(pruned, items, positions, budget=40)
            for group in (1, 2, 4, 10):
                stacked = stacked_choice_scores_without(pruned, items, positions, group=group, budget=40)
                for p in positions:
                    assert torch.cat(stacked[p]) == pytest.approx(torch.cat(one[p]), abs=1e-5), (removed, group, p)


@pytest.mark.parametrize("model_type", ARCHITECTURES)  # orders seen: llama 0,2,3,4; gemma3_text 0,4,3,2; mistral 0,2,1,4
def test_fast_path_removes_blocks_in_the_slow_path_order(model_type, words_task, tmp_path, registry):
    handle = loaded(model_type, tmp_path, registry)
    options = {"benchmark": str(words_task), "eval_items": "0", "calib_items": "24"}
    plans = {}
    for fast in ("true", "false"):
        method = resolve_method(registry, "decision", {**options, "cache": fast})
        plans[fast] = method.schedule.plan(method.scorer, ScoringContext(handle, None), 4)
    assert plans["true"].order == plans["false"].order


def test_fast_path_scores_are_float32_for_the_blocks_it_rechecks(words_task, tmp_path, registry):
    handle = loaded("llama", tmp_path, registry)
    options = {"benchmark": str(words_task), "eval_items": "0", "calib_items": "24"}
    ctx = ScoringContext(handle, None)
    fast = resolve_method(registry, "decision", options).scorer
    slow = resolve_method(registry, "decision", {**options, "cache": "false"}).scorer
    fast_scores, slow_scores = fast.score(ctx), slow.score(ctx)
    best = min(range(len(slow_scores)), key=slow_scores.__getitem__)
    assert min(range(len(fast_scores)), key=fast_scores.__getitem__) == best
    assert fast_scores[best] == pytest.approx(slow_scores[best], abs=1e-6)


def test_decision_guided_takes_a_block_only_on_an_exact_verdict():
    """A candidate that decides in the bfloat16 ranking but not in float32 is not taken: it is re-measured,
    and the next deciding candidate is chosen."""
    from drtframe_plugins.decision import DecisivePhase, Outcome

    class Exact:
        def __init__(self):
            self.asked = []

        def outcomes(self, ctx, positions, exact=False):
            assert exact
            self.asked += positions
            return [Outcome(p, 0.30, 0.35, decides=False) for p in positions]  # float32: it no longer decides

    ranked = [Outcome(0, 0.40, 0.50, True, exact=False), Outcome(1, 0.35, 0.45, True, exact=True),
              Outcome(2, 0.10, 0.30, False, exact=False)]
    scorer = Exact()
    best = DecisivePhase._best(scorer, None, ranked)
    assert scorer.asked == [0] and best.position == 1
    assert DecisivePhase._best(scorer, None, [ranked[0]]) is None  # nothing left that decides


@pytest.mark.parametrize("model_type", ["llama", "phi3 longrope"])
def test_an_iterative_plan_records_its_items_once(model_type, words_task, tmp_path, registry, monkeypatch):
    """Each round after the first is built from the one before (the weights have not changed), so K
    removals record the calibration items once; also where the rope rewrites its frequencies on every
    forward (LongRoPE)."""
    import drtframe_plugins.decision as decision

    recordings = []
    monkeypatch.setattr(decision, "record", lambda *args, **kwargs: recordings.append(1) or record(*args, **kwargs))
    if model_type == "phi3 longrope":
        tiny_longrope_phi3().save_pretrained(tmp_path / "phi3")
        tiny_tokenizer().save_pretrained(tmp_path / "phi3")
        handle = load_model(ModelSpec(str(tmp_path / "phi3")), registry)
    else:
        handle = loaded(model_type, tmp_path, registry)
    method = resolve_method(registry, "decision", {"benchmark": str(words_task), "eval_items": "0", "calib_items": "24"})
    assert len(method.schedule.plan(method.scorer, ScoringContext(handle, None), 3).order) == 3
    assert len(recordings) == 1


@pytest.mark.parametrize("removal", [(), (2,)])
def test_a_round_recorded_before_a_weight_changed_is_not_reused(removal, words_task, tmp_path, registry):
    """After a weight changed in place (a healer, an optimiser step), the same model and the model less
    one more block score, and profile, as a new scorer does: the round's recording is stale."""
    handle = loaded("llama", tmp_path, registry)
    options = {"benchmark": str(words_task), "eval_items": "0", "calib_items": "24"}
    scorer = resolve_method(registry, "decision", options).scorer
    scorer.score(ScoringContext(handle, None))
    with handle.temporarily_without(removal) as pruned:
        scorer.profile(ScoringContext(pruned, None))
    with torch.no_grad():
        handle.layers[0].mlp.down_proj.weight.mul_(3.0)
    with handle.temporarily_without(removal) as pruned:
        fresh = resolve_method(registry, "decision", options).scorer
        ctx = ScoringContext(pruned, None)
        assert scorer.profile(ctx).decision_margin == fresh.profile(ctx).decision_margin
        assert scorer.score(ctx) == fresh.score(ctx)


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text"])
def test_a_recording_after_one_more_removal_equals_a_fresh_one(model_type, words_task, tmp_path, registry):
    handle = loaded(model_type, tmp_path, registry)
    items = load_items(resolve_benchmark(registry, str(words_task)), None, None, None)
    previous = record(handle, items, range(handle.num_layers), budget=40)
    for position in (0, 2, handle.num_layers - 2, handle.num_layers - 1):
        with handle.temporarily_without((handle.kept[position],)) as pruned:
            fresh = record(pruned, items, range(pruned.num_layers), budget=40)
            reused = recorded_without(pruned, previous, position)
            for (_, expected), (_, got) in zip(fresh.batches, reused.batches, strict=True):
                assert sorted(got) == sorted(expected) == list(range(pruned.num_layers))
                for p in expected:
                    for a, b in zip(expected[p], got[p], strict=True):
                        assert torch.allclose(a, b, atol=1e-6), (position, p)


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "gpt2"])
def test_rounds_resumed_from_earlier_rounds_replays_score_as_one_candidate_per_forward(
        model_type, words_task, tmp_path, registry):
    from drtframe import weights_of
    from drtframe_plugins.decision import Round

    handle = loaded(model_type, tmp_path, registry)
    items = load_items(resolve_benchmark(registry, str(words_task)), None, None, None)
    first = Round(handle.kept, record(handle, items, range(handle.num_layers), budget=40), weights_of(handle.model))
    first.ranked(handle, list(range(handle.num_layers)), keep=set)  # every state
    # a middle block then an earlier one (the second round resumes from states carried over from the
    # first), and the last block then an earlier one
    for removals in ((3, 1), (handle.num_layers - 1, 2)):
        current, gone = first, ()
        for removed in removals:
            gone += (removed,)
            with handle.temporarily_without(gone) as pruned:
                current = current.after_removal(pruned)
                assert sorted(current.resume[1]) == [p for p in pruned.kept if p < removed]
                positions = list(range(pruned.num_layers))
                resumed = current.ranked(pruned, positions, keep=set)
                one = choice_scores_without(pruned, items, positions, cache=False)
                for p in positions:
                    assert torch.cat(resumed[p]) == pytest.approx(torch.cat(one[p]), abs=1e-5), (gone, p)


@pytest.mark.parametrize("model_type,lens", [*((m, "logit") for m in ARCHITECTURES), ("llama", "tuned")])
def test_a_recording_reads_as_the_forward_it_recorded(model_type, lens, words_task, tmp_path, registry, monkeypatch):
    from drtframe.probing import tuned_lens
    from test_tuned_lens import random_lens

    handle = loaded(model_type, tmp_path, registry)
    monkeypatch.setitem(tuned_lens._ATTACHED, handle.model, random_lens(2))
    items = load_items(resolve_benchmark(registry, str(words_task)), None, None, None)
    for removed in ((), (1, 3), tuple(range(1, handle.num_layers))):  # also a model of one block
        with handle.temporarily_without(removed) as pruned:
            readout = profile_readout(pruned, items, lens)  # the tuned lens picks the translators pruned kept
            recording = record(pruned, items, range(pruned.num_layers), budget=40)
            read = read_recorded(pruned, recording, readout)
            run = choice_scores(pruned, items, readout, hidden=True, budget=40)
            assert read[0].shape[1] == pruned.num_layers
            for a, b in zip(read, run, strict=True):
                assert torch.equal(a, b), removed


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text"])
def test_decision_guided_profiles_read_from_its_rounds_equal_lens_profiles(model_type, words_task, tmp_path, registry,
                                                                            monkeypatch):
    import drtframe_plugins.decision as plugin

    handle = loaded(model_type, tmp_path, registry)
    scorer = resolve_method(registry, "decision_guided", {"benchmark": str(words_task), "eval_items": "0",
                                                          "calib_items": "24"}).scorer
    monkeypatch.setattr(plugin, "lens_profile", None)  # no profile of its own forward
    gone = ()
    for removed in (None, 2, 0):  # the first round's recording, then two recorded from the one before
        gone += () if removed is None else (removed,)
        with handle.temporarily_without(gone) as pruned:
            ctx = ScoringContext(pruned, None)
            got = scorer.profile(ctx)  # before the candidates are scored, as the schedule asks
            scorer.outcomes(ctx)
            expected = lens_profile(pruned, scorer.items())
            assert got.transition == expected.transition, gone
            assert got.decision_margin == pytest.approx(expected.decision_margin, abs=1e-5), gone
            assert got.acc == expected.acc, gone


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text"])
def test_replays_that_let_go_of_states_as_they_go_keep_the_best_blocks_ones(model_type, words_task, tmp_path, registry):
    """`replay`'s `keep` only frees memory: the same scores, and in the end the same states at the blocks
    ranked best, each in its own tensor rather than a view of a stacked replay's."""
    handle = loaded(model_type, tmp_path, registry)
    items = load_items(resolve_benchmark(registry, str(words_task)), None, None, None)
    recording = record(handle, items, range(handle.num_layers), budget=40)
    positions = list(range(handle.num_layers))

    def best(scored):  # the two candidates with the highest summed log-likelihood so far
        return set(sorted(scored, key=lambda p: -float(sum(s.sum() for s in scored[p])))[:2])

    every, trimmed = [], []
    expected = replay(handle, recording, positions, group=2, states=every)
    got = replay(handle, recording, positions, group=2, states=trimmed, keep=best)
    for p in positions:
        assert all(torch.equal(a, b) for a, b in zip(expected[p], got[p], strict=True)), p
    final = {handle.kept[p] for p in best(expected)}
    assert final != set(handle.kept)
    for whole, kept in zip(every, trimmed, strict=True):
        assert set(kept) == {key for key in whole if key[1] in final}
        for key, tensors in kept.items():
            for a, b in zip(whole[key], tensors, strict=True):
                assert torch.equal(a, b) and b.untyped_storage().nbytes() == b.numel() * b.element_size()
