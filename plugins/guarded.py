"""The guarded schedule: any scorer's ranking, each removal first held to the collapse guard's rule.

`scorer@guarded` re-scores after every removal, like `iterative`, and tries the blocks from the
lowest score up: the model without a candidate is evaluated on the guard's MC items (the packaged
ARC-Easy sample unless item options name others, the window of the decision scorers and of
`drtframe prune`'s guard) and `drtframe.pruning.runner.guard_verdict` judges it against the dense model. A
refused candidate (the pruned model no longer beats the best constant answer by two standard
errors: no transition, it no longer decides) is recorded and the next one tried; when every block
is refused, the schedule stops (`ScheduleStopped`) keeping what it chose. A dense model without a
transition on the items leaves nothing to protect: nothing is checked, as in the guard.

The verdict reads the model's own output only (`drtframe.pruning.runner.final_profile`): the rule's 'no
transition' test depends on the final accuracy alone, so one plain evaluation per candidate gives
the verdict of a full logit-lens probe. The plan's `record` counts those evaluations and names
every refused block with its accuracy.
"""

from __future__ import annotations

from dataclasses import replace

from drtframe import ItemOptions, PrunePlan, Schedule, ScheduleStopped, Scorer, ScoringContext, hookimpl
from drtframe import scores_in_original_numbering


class GuardOptions(ItemOptions):
    """The guard's items: the packaged sample, or items eval_items.. of a benchmark."""


class Guarded(Schedule):
    """Iterative removal in the scorer's order, skipping any block whose removal loses the decision transition."""

    name = "guarded"
    prefix_consistent = True  # each greedy step, and each verdict, ignores how many removals follow
    Options = GuardOptions

    def __init__(self, options: GuardOptions | None = None) -> None:
        super().__init__(options)
        self.window = self.options.window(self.name)  # bad options fail here, before a model is loaded

    def plan(self, scorer: Scorer, ctx: ScoringContext, k: int, progress=None) -> PrunePlan:
        from drtframe import final_profile, load_registry

        items, where = self.window.load(load_registry())
        dense = final_profile(ctx.handle, items)
        record = {"items": where, "checked": dense.transition.layer is not None, "dense_acc": dense.acc[-1],
                  "baseline_acc": dense.transition.baseline, "evaluations": {"dense": 1, "accepted": 0, "rejected": 0},
                  "rejected": []}
        order: list[int] = []
        first = None
        for step in range(1, k + 1):
            with ctx.handle.temporarily_without(tuple(order)) as pruned:
                step_ctx = replace(ctx, handle=pruned)
                scores = scorer.score(step_ctx)
                first = first or scores_in_original_numbering(step_ctx, scores)
                ranking = [pruned.kept[i] for i in sorted(range(len(scores)), key=lambda i: (scores[i], i))]
                chosen = next((block for block in ranking if self._keeps_transition(pruned, block, items, dense, record,
                                                                                     step)), None)
            if chosen is None:
                raise ScheduleStopped(self._stop_message(scorer, where, order, k, dense), tuple(order), _summed(record))
            order.append(chosen)
            if progress:
                progress(1)
        return PrunePlan(scorer.name, tuple(sorted(order)), tuple(order), first, _summed(record))

    @staticmethod
    def _keeps_transition(pruned, block: int, items, dense, record: dict, step: int) -> bool:
        """The guard's verdict on removing `block` (original index) from `pruned`, counted in `record`."""
        from drtframe import final_profile, guard_verdict

        if not record["checked"]:
            return True
        with pruned.temporarily_without((block,)) as candidate:
            after = final_profile(candidate, items)
        if guard_verdict(dense.transition.layer, after.transition.layer) == "pass":
            record["evaluations"]["accepted"] += 1
            return True
        record["evaluations"]["rejected"] += 1
        record["rejected"].append({"step": step, "layer": block, "acc": after.acc[-1],
                                   "reason": f"accuracy {after.acc[-1]:.2f} does not beat the best constant answer's "
                                             f"{after.transition.baseline:.2f} by two standard errors"})
        return False

    def _stop_message(self, scorer: Scorer, where: dict, order: list[int], k: int, dense) -> str:
        done = f"stopped after {len(order)} of {k} removals" + (f" (removed {', '.join(map(str, order))})" if order else "")
        return (f"{scorer.name}@{self.name} {done}: removing any remaining block leaves no decision transition on "
                f"{where['benchmark']} {where['split']} items {where['first_item']}-{where['last_item']} (accuracy "
                f"no longer beats the best constant answer's {dense.transition.baseline:.2f} by two standard errors)")


def _summed(record: dict) -> dict:
    """The record with a one-line `summary` for reports."""
    if not record["checked"]:
        return {**record, "summary": "not checked: the dense model shows no decision transition on the guard items"}
    n = record["evaluations"]
    refused = "; ".join(f"layer {r['layer']} at step {r['step']} (accuracy {r['acc']:.2f})" for r in record["rejected"])
    return {**record, "summary": f"{n['accepted']} removals kept the decision transition, {n['rejected']} refused"
                                 + (f": {refused}" if refused else "")}


@hookimpl
def drtframe_register_schedules(register):
    register(Guarded)
