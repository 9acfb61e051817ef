"""Preference alignment: does the candidate prefer, and write, the replies people prefer?

On tasks with chosen/rejected pairs (``prefs``, or a user's prompt/chosen/rejected file):

- ``preference_accuracy``: share of held-out pairs where the candidate gives the chosen reply
  a higher log-probability than the rejected one (the "reward accuracy" of Rafailov et al.,
  2023, read off the policy itself); per flaw type when the task tags them. A base model
  already prefers short replies by this measure, so also
- ``implicit_reward_accuracy``: share of pairs where the candidate's margin (chosen minus
  rejected log-probability) exceeds the base model's, i.e. DPO's implicit reward
  ``log p/p_base`` ranks chosen first (ties, as for the base itself, count half).
- ``reward_model_accuracy``: the same for a trained reward model, when the candidate carries
  one (``rlhf``).
- ``win_rate_vs_base``: the candidate's greedy replies against the base model's, judged by the
  task's rule-based judge (``Task.judge``, which no approach trains on), ties counting half;
  ``judge_reward`` is the judge's mean score of the candidate's replies.
- ``kl_to_base``: mean of ``log p_candidate(y|x) - log p_base(y|x)`` over the candidate's own
  replies ``y`` (nats per reply): the divergence the RLHF objective penalises, estimated on
  greedy rather than sampled replies, so it is a plug-in estimate, not an unbiased one.

``judge_reward`` against ``kl_to_base`` is the reward/KL frontier of Rafailov et al. (2023,
fig. 2); a sweep of ``--set dpo.beta=...`` traces it for one approach.
"""

import pytest

from harness.core.capabilities import CarriesRewardModel
from harness.measure.metrics import accuracy, mean

PAIRED = "pairs"
TIE = 1e-4
"""Log-probability differences this small (nats) are ties: the same model scored twice."""


def pairs_of(task_data):
    pairs = [e for e in task_data.eval if e.rejected is not None]
    if not pairs:
        pytest.skip(f"task {task_data.name!r} has no chosen/rejected pairs")
    return pairs


def test_preference_accuracy(candidate, task_data, tunebench, record, run_seed):
    pairs = pairs_of(task_data)
    seed = run_seed
    scores = candidate.score_choices([e.messages for e in pairs],
                                     [(e.answer, e.rejected) for e in pairs])
    prefers = [chosen > rejected for chosen, rejected in scores]
    estimate = accuracy(prefers, seed=seed)
    record.metric("preference_accuracy", estimate)
    base_scores = tunebench.memo(
        ("base pair scores", tuple(e.id for e in pairs)),
        lambda: tunebench.base_candidate.score_choices(
            [e.messages for e in pairs], [(e.answer, e.rejected) for e in pairs]))
    shifts = [(c - r) - (base_c - base_r)
              for (c, r), (base_c, base_r) in zip(scores, base_scores, strict=True)]
    implicit = [1.0 if d > TIE else 0.0 if d < -TIE else 0.5 for d in shifts]
    record.metric("implicit_reward_accuracy", mean(implicit, seed=seed))
    flaws = sorted({e.meta.get("flaw") for e in pairs} - {None})
    for flaw in flaws if len(flaws) > 1 else ():
        hits = [p for p, e in zip(prefers, pairs, strict=True) if e.meta.get("flaw") == flaw]
        record.metric(f"preference_accuracy[{flaw}]", accuracy(hits, seed=seed))
    record.examples([
        {"item_id": e.id, "prompt": e.prompt_text, "prediction": "chosen" if p else "rejected",
         "reference": "chosen", "correct": p, "score": c - r,
         "extra": {"chosen_logprob": c, "rejected_logprob": r, "margin_over_base": d,
                   **e.meta}}
        for e, p, (c, r), d in zip(pairs, prefers, scores, shifts, strict=True)
    ], part=PAIRED)

    assert len(prefers) == len(pairs)
    assert estimate.low <= estimate.value <= estimate.high


def test_reward_model_accuracy(candidate, task_data, tunebench, record, run_seed):
    pairs = pairs_of(task_data)
    if not isinstance(candidate, CarriesRewardModel):
        pytest.skip("the candidate carries no reward model")
    prompts = [list(e.messages) for e in pairs]
    chosen = candidate.rewards(prompts, [e.answer for e in pairs])
    rejected = candidate.rewards(prompts, [e.rejected for e in pairs])
    hits = [c > r for c, r in zip(chosen, rejected, strict=True)]
    estimate = accuracy(hits, seed=run_seed)
    record.metric("reward_model_accuracy", estimate)

    assert len(hits) == len(pairs)
    assert estimate.low <= estimate.value <= estimate.high


def test_replies_against_base(candidate, task, task_data, tunebench, record, run_seed):
    pairs = pairs_of(task_data)
    if task.judge(pairs[0].answer, pairs[0]) is None:
        pytest.skip(f"task {task_data.name!r} has no judge for free replies")
    seed, base = run_seed, tunebench.base_candidate
    prompts = [e.messages for e in pairs]
    replies = candidate.generate(prompts, task.max_new_tokens)
    base_replies = tunebench.memo(
        ("base replies", tuple(e.id for e in pairs)),
        lambda: base.generate(prompts, task.max_new_tokens))
    mine = [task.judge(r, e) for r, e in zip(replies, pairs, strict=True)]
    theirs = [task.judge(r, e) for r, e in zip(base_replies, pairs, strict=True)]
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(mine, theirs, strict=True)]
    win_rate = mean(wins, seed=seed)
    reward = mean(mine, seed=seed)

    scored = [i for i, r in enumerate(replies) if r]  # an empty reply has no tokens to score
    own = candidate.score_choices([prompts[i] for i in scored], [[replies[i]] for i in scored])
    reference = base.score_choices([prompts[i] for i in scored], [[replies[i]] for i in scored])
    log_ratios = [a[0] - b[0] for a, b in zip(own, reference, strict=True)]
    divergence = mean(log_ratios, seed=seed) if log_ratios else None

    record.metric("win_rate_vs_base", win_rate)
    record.metric("judge_reward", reward)
    if divergence is not None:
        record.metric("kl_to_base", divergence)
    ratio_of = dict(zip(scored, log_ratios, strict=True))
    record.examples([
        {"item_id": e.id, "prompt": e.prompt_text, "prediction": reply,
         "reference": e.answer, "correct": win == 1.0, "score": score,
         "extra": {"base_reply": base_reply, "base_score": base_score, "win": win,
                   "log_ratio": ratio_of.get(i), **e.meta}}
        for i, (e, reply, base_reply, score, base_score, win) in enumerate(
            zip(pairs, replies, base_replies, mine, theirs, wins, strict=True))
    ], part="versus_base")

    assert len(wins) == len(pairs) and 0.0 <= win_rate.value <= 1.0
    assert win_rate.low <= win_rate.value <= win_rate.high
    if replies == base_replies:  # the same replies tie (tests check zero-shot's recorded 0.5)
        assert win_rate.value == 0.5
