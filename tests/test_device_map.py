"""`--device-map auto`: a tiny model spread over CPU memory and disk computes what the plain model does.

A CPU budget of about half the model puts the embeddings and the first blocks in memory and the rest
on disk (asserted, so no test passes on an undispatched model). Tolerance: relative 1e-5 on summed
log-likelihoods; offloaded weights are fresh copies whose memory alignment can change float32 rounding.
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from drtframe.cli import cli
from drtframe.errors import DrtframeError
from drtframe.evaluation.items import MCItem
from drtframe.evaluation.loglikelihood import choice_scores, choice_scores_without
from drtframe.evaluation.stacked_replay import stacked_choice_scores_without
from drtframe.forward.hidden_states import recording_inputs, replaying_without
from drtframe.models.loading import ModelSpec, load_model
from drtframe.models.placement import parse_max_memory
from drtframe.probing.lens import layer_scores
from drtframe.pruning.saving import save_pruned
from tiny_models import sample_ids, tiny_model, tiny_tokenizer

REMOVED = (1, 3)


def items():
    """Contexts of one to four words, choices of one to three tokens."""
    return [MCItem("t", i, (" ".join(f"w{i + j}" for j in range(i % 4 + 1)),) * 3,
                   (f" w{i + 4}", f" w{i + 5} w{i + 6}", f" w{i + 7} w8 w9"), i % 3, (3, 6, 9)) for i in range(10)]


def half_of(handle) -> str:
    """A CPU budget of half the model's bytes: the first modules stay in memory, the rest go to disk."""
    return f"cpu={handle.parameter_count() * 4 // 2}"


@pytest.fixture(params=["llama", "gpt2"])
def model_dir(request, tmp_path):
    """A tiny saved model: Llama (separate head) and GPT-2 (head tied to the embeddings)."""
    path = tmp_path / request.param
    tiny_model(request.param).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def pair(model_dir, registry):
    """(plain, spread): the same model loaded plainly and with --device-map auto over CPU memory and disk."""
    plain = load_model(ModelSpec(str(model_dir)), registry)
    spread = load_model(ModelSpec(str(model_dir), device_map="auto", max_memory=half_of(plain)), registry)
    placements = set(spread.model.hf_device_map.values())
    assert placements == {"cpu", "disk"}, spread.model.hf_device_map
    assert any(spread.model.get_parameter(name).device.type == "meta" for name in spread.offloaded)
    assert not plain.offloaded and not hasattr(plain.model, "hf_device_map")
    return plain, spread


def assert_same(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_everything_on_disk_still_runs_on_cpu(tiny_llama_dir, registry):
    plain = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    spread = load_model(ModelSpec(str(tiny_llama_dir), device_map="auto", max_memory="cpu=1"), registry)
    assert spread.model.hf_device_map == {"": "disk"}
    assert spread.device == torch.device("cpu")  # not the meta device of the offloaded first weight
    assert len(spread.offloaded) == len(list(spread.model.parameters()))
    assert_same(choice_scores(spread, items()), choice_scores(plain, items()))


def test_evaluation_scores(pair):
    plain, spread = pair
    assert_same(choice_scores(spread, items(), budget=16), choice_scores(plain, items(), budget=16))


def test_removed_blocks_score_as_on_the_plain_model(pair):
    plain, spread = pair
    with plain.temporarily_without(REMOVED) as a, spread.temporarily_without(REMOVED) as b:
        assert b.num_layers == 3
        assert_same(choice_scores(b, items()), choice_scores(a, items()))
    assert_same(choice_scores(spread, items()), choice_scores(plain, items()))  # restored
    assert_same(choice_scores(spread.without(REMOVED), items()), choice_scores(plain.without(REMOVED), items()))


def test_logit_lens_per_layer(pair):
    plain, spread = pair
    expected = layer_scores(plain, items())
    assert expected[0].shape[1] == 5
    assert_same(layer_scores(spread, items()), expected)


def test_recording_and_replay(pair):
    plain, spread = pair
    ids = sample_ids()
    recorded = {}
    for name, handle in (("plain", plain), ("spread", spread)):
        with recording_inputs(handle, (1, 2)) as inputs, torch.inference_mode():
            handle.model(ids)
        with replaying_without(handle, (1, 3), inputs) as pruned, torch.inference_mode():
            recorded[name] = inputs, pruned.model(ids).logits
    for position in (1, 2):
        assert_same(recorded["spread"][0][position], recorded["plain"][0][position])
    torch.testing.assert_close(recorded["spread"][1], recorded["plain"][1], rtol=1e-5, atol=1e-5)
    positions = range(plain.num_layers)
    got, expected = choice_scores_without(spread, items(), positions), choice_scores_without(plain, items(), positions)
    for p in positions:
        assert_same(got[p], expected[p])


def test_saved_pruned_model_reloads_in_plain_transformers(pair, tmp_path):
    plain, spread = pair
    save_pruned(spread.without(REMOVED), tmp_path / "out", {}, overwrite=False)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    with torch.inference_mode():
        assert torch.equal(reloaded(sample_ids()).logits, plain.without(REMOVED).model(sample_ids()).logits)


def test_prune_and_eval_commands(tiny_llama_dir, registry, tmp_path):
    budget = half_of(load_model(ModelSpec(str(tiny_llama_dir)), registry))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"question": f"w{i} w{i + 1}", "options": [f"w{i + 2}", f"w{i + 3} w4", "w9"],
                                        "answer": i % 3}) + "\n" for i in range(8)))
    (tmp_path / "task.yaml").write_text(
        "task: words\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    validation: rows.jsonl\n"
        "validation_split: validation\noutput_type: multiple_choice\ndoc_to_text: '{{question}}'\n"
        "doc_to_choice: '{{options}}'\ndoc_to_target: '{{answer}}'\n")

    def run(*args):
        result = CliRunner().invoke(cli, list(map(str, args)))
        assert result.exit_code == 0, result.output

    for name, placement in (("plain", ()), ("spread", ("--device-map", "auto", "--max-memory", budget))):
        run("eval", "-m", tiny_llama_dir, *placement, "-b", tmp_path / "task.yaml", "--remove-layers", "2",
            "-O", tmp_path / f"{name}.json")
        run("prune", "-m", tiny_llama_dir, *placement, "--layers", "1,3", "--no-guard", "--no-speed",
            "-O", tmp_path / name)
    plain, spread = (json.loads((tmp_path / f"{name}.json").read_text())["results"]["words"]
                     for name in ("plain", "spread"))
    assert_same(*(torch.tensor([i["loglikelihoods"] for i in r["items"]]) for r in (spread, plain)))
    assert spread["acc"] == plain["acc"]
    a, b = (AutoModelForCausalLM.from_pretrained(tmp_path / name) for name in ("plain", "spread"))
    with torch.inference_mode():
        assert torch.equal(a(sample_ids()).logits, b(sample_ids()).logits)


@pytest.mark.parametrize("method", ["block_influence", "perplexity"])
def test_scorers(pair, registry, method):
    from drtframe.scoring.methods import resolve_method
    from drtframe.scoring.scorer import ScoringContext

    plain, spread = pair
    exact = {"bfloat16": "false"} if method == "perplexity" else {}  # an offloaded model gets no bfloat16 copy
    scorer = resolve_method(registry, method, exact).scorer
    calibration = torch.randint(2, 96, (3, 16), generator=torch.Generator().manual_seed(0))
    got, expected = (scorer.score(ScoringContext(h, calibration, 2)) for h in (spread, plain))
    assert got == pytest.approx(expected, rel=1e-5)


def alternating(model_dir, registry):
    """The tiny Llama with its blocks alternately on the GPU and the CPU, each running where it is,
    the embeddings and inputs on the CPU, the final norm and head on the GPU: two execution devices
    (with no GPU, the same hooks on one). Dispatched by hand, as --device-map would stream the CPU's
    share to the GPU instead of running it there."""
    from accelerate import dispatch_model

    handle = load_model(ModelSpec(str(model_dir)), registry)
    gpu = "cuda:0" if torch.cuda.is_available() else "cpu"
    placement = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": gpu, "lm_head": gpu,
                 **{f"model.layers.{i}": gpu if i % 2 == 0 else "cpu" for i in range(5)}}
    dispatch_model(handle.model, placement, main_device="cpu", skip_keys=handle.model._skip_keys_device_placement,
                   force_hooks=True)
    return handle, {torch.device(gpu), torch.device("cpu")}


def test_blocks_running_on_two_devices(tiny_llama_dir, registry):
    from drtframe.healing.apply import resolve_healer
    from drtframe.healing.healer import HealingContext
    from drtframe.scoring.methods import resolve_method
    from drtframe.scoring.scorer import ScoringContext

    plain = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    spread, devices = alternating(tiny_llama_dir, registry)
    assert {p.device for layer in spread.layers[:2] for p in layer.parameters()} == devices
    assert all(hasattr(layer, "_hf_hook") for layer in spread.layers)
    tolerance = dict(rtol=1e-4, atol=1e-4)  # float32 on a GPU rounds differently from the CPU
    for got, expected in ((choice_scores(spread, items()), choice_scores(plain, items())),
                          (layer_scores(spread, items()), layer_scores(plain, items())),
                          *zip(choice_scores_without(spread, items(), range(5)).values(),
                               choice_scores_without(plain, items(), range(5)).values()),
                          *zip(stacked_choice_scores_without(spread, items(), range(5)).values(),
                               stacked_choice_scores_without(plain, items(), range(5)).values())):
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, **tolerance)
    calibration = torch.randint(2, 96, (6, 16), generator=torch.Generator().manual_seed(0))
    for method, options in (("block_influence", {}), ("angular_distance", {}), ("perplexity", {"bfloat16": "false"})):
        scorer = resolve_method(registry, method, options).scorer  # perplexity: every candidate in float32
        got, expected = (scorer.score(ScoringContext(h, calibration, 4)) for h in (spread, plain))
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-5), method
    for handle in (plain, spread):
        resolve_healer(registry, "linear_ls").heal(HealingContext(handle, REMOVED, calibration, batch_size=4))
    with plain.temporarily_without(REMOVED) as a, spread.temporarily_without(REMOVED) as b:
        for g, e in zip(choice_scores(b, items()), choice_scores(a, items())):
            torch.testing.assert_close(g, e, **tolerance)


def test_weights_off_device_refuse_healing_and_taylor(pair, registry):
    from drtframe.healing.apply import heal, resolve_healer
    from drtframe.scoring.calibration import CalibrationSpec
    from drtframe.scoring.methods import resolve_method
    from drtframe.scoring.scorer import ScoringContext

    _, spread = pair
    with pytest.raises(DrtframeError, match="changes weights in place.*off-device"):
        heal(spread, REMOVED, resolve_healer(registry, "linear_ls"), CalibrationSpec())
    taylor = resolve_method(registry, "taylor", {}).scorer
    with pytest.raises(DrtframeError, match="taylor needs the gradient.*off-device"):
        taylor.score(ScoringContext(spread, torch.ones((1, 4), dtype=torch.long)))


def test_max_memory_parsing_and_a_spec_that_pickles():
    assert parse_max_memory("cpu=2GiB, cuda:0=70GiB,1=500MB,disk=1000") == {"cpu": "2GiB", 0: "70GiB", 1: "500MB",
                                                                          "disk": 1000}
    spec = ModelSpec("m", device_map="auto", max_memory="cpu=2GiB,cuda:0=70GiB")
    assert pickle.loads(pickle.dumps(spec)) == spec and hash(spec) == hash(pickle.loads(pickle.dumps(spec)))


@pytest.mark.parametrize("args, message", [
    (["--device", "cpu", "--device-map", "auto"], "--device cpu and --device-map auto contradict"),
    (["--max-memory", "cpu=1GiB"], "--max-memory limits where --device-map places the model"),
    (["--device-map", "auto", "--max-memory", "gpu=1GiB"], "expects DEVICE=SIZE pairs"),
    (["--device-map", "auto", "--max-memory", "cpu=lots"], "'lots' is not a size"),
])
def test_contradictory_placement_is_one_line(tiny_llama_dir, args, message):
    result = CliRunner().invoke(cli, ["eval", "-m", str(tiny_llama_dir), *args, "-b", "arc_easy"])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_compare_on_a_spread_model_gives_the_plain_results(model_dir, registry, tmp_path):
    from conftest import WIKITEXT_HEAD
    from drtframe.comparison.request import CompareRequest
    from drtframe.comparison.runner import compare
    from drtframe.scoring.calibration import CalibrationSpec
    from drtframe.scoring.calibration_items import ItemWindow

    plain = load_model(ModelSpec(str(model_dir)), registry)
    spec = ModelSpec(str(model_dir), device_map="auto", max_memory=half_of(plain))
    results = {}
    for name, model in (("plain", ModelSpec(str(model_dir))), ("spread", spec)):
        request = CompareRequest(model, ("block_influence", "reverse_order"), (1, 2), ("arc_easy",), limit=5,
                                 calibration=CalibrationSpec(str(WIKITEXT_HEAD), 2, 16), guard=ItemWindow.sample(8),
                                 output_dir=tmp_path / name)
        results[name] = compare(request, registry)
    assert results["spread"].model["fingerprint"] == results["plain"].model["fingerprint"]
    plain_rows, spread_rows = ((tmp_path / n / "results.csv").read_text().replace(str(model_dir), "M")
                               for n in ("plain", "spread"))
    assert spread_rows == plain_rows
