"""``prefs``: preference pairs for customer-support replies (chosen vs rejected).

Each item is a support conversation for an invented company: the system message is the agent's
knowledge sheet (the fact the question needs, among a few others), the user turn a customer's
question, ``answer`` the preferred reply and ``rejected`` a dispreferred one. The chosen reply
is polite, correct and short, so ``prompt + answer`` also serves as supervised fine-tuning data.
The design follows:

* **Helpful and harmless pairs** as in Anthropic's HH-RLHF (Bai et al., 2022, "Training a
  Helpful and Harmless Assistant with Reinforcement Learning from Human Feedback"): one prompt,
  two replies, the better one marked.
* **Rated properties** as in UltraFeedback (Cui et al., 2023, "UltraFeedback: Boosting Language
  Models with High-quality Feedback"): helpfulness, honesty/correctness, instruction-following
  and verbosity. Every rejected reply fails on one of them, recorded in ``meta["flaw"]`` (equal
  shares): ``rude`` (right fact, condescending), ``wrong`` (polite and short, wrong fact),
  ``evasive`` (polite, no answer) and ``padded`` (right and polite, buried in filler).
* **Length is not the signal.** Singhal et al. (2023, "A Long Way to Go: Investigating Length
  Correlations in RLHF") show preference data and reward models reward length; here padded
  replies are rejected while rude and evasive ones are often shorter than the chosen reply, and
  no single word separates the two sides (both are tested: at most 90% of pairs).
* **Held-out phrasings.** Question templates, rude remarks and evasive deflections are split
  like ``sentiment``'s banks: every third is eval-only, so eval measures generalisation.
  Splits are by prompt: no normalised customer question occurs twice in the task.

Free replies are scored by the rule-based judge of :mod:`judge`. Everything is drawn from
``random.Random(seed)``; building is cached per seed.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.tasks.base import Example, Message, Task, TaskData, normalize_text
from harness.tasks.prefs import judge as prefs_judge
from harness.tasks.prefs import phrases as bank
from harness.tasks.sentiment.task import holdout

TRAIN_SIZE = 1200
VALIDATION_SIZE = 100
EVAL_SIZE = 300
SPLIT_SIZES: dict[str, int] = {"train": TRAIN_SIZE, "validation": VALIDATION_SIZE,
                               "eval": EVAL_SIZE}
FLAWS: tuple[str, ...] = ("rude", "wrong", "evasive", "padded")
INTENTS: tuple[str, ...] = tuple(bank.QUESTIONS)
N_PRODUCTS, N_PLANS, N_CHANNELS, N_METHODS = 8, 4, 4, 5
TYPO_RATE, LOWER_RATE, NO_MARK_RATE = 0.12, 0.08, 0.1
PADDED_MIN_WORDS = 46
"""Padded replies are longer than the judge's concise limit (40 words)."""
MAX_ATTEMPTS = 2_000
SYSTEM = ("You are a support agent for {company}. Answer the customer politely and briefly, "
          "using these facts:")
"""The head of every system message; the knowledge-sheet lines follow, one per line."""

_SIDES = ("train", "eval")
QUESTION_POOLS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    side: {intent: holdout([(f"{intent}-{i:02d}", t) for i, t in enumerate(templates)])[side]
           for intent, templates in bank.QUESTIONS.items()}
    for side in _SIDES
}
"""Question templates per side and intent, with ids; eval uses only the ``"eval"`` side."""
RUDE_POOLS = holdout(bank.RUDE)
EVASIVE_POOLS = holdout(bank.EVASIVE)


@dataclass
class Subject:
    """One thing customers ask about: its intent, fact, knowledge-sheet line and wording."""

    intent: str
    value: Any
    """The fact's value (an int, an ``(open, close)`` pair or a menu path tuple)."""
    fields: dict[str, str]
    """Template fields for replies (``product``, ``plan``, ``channel``...)."""
    questions: tuple[dict[str, str], ...] = field(default=())
    """Field sets for the question templates (several phrasings of one action)."""
    options: tuple[tuple[str, ...], ...] = field(default=())
    """For menu paths: the menu names each step could have had (wrong paths use them)."""

    @property
    def fact(self) -> str:
        return fact_text(self.intent, self.value)

    @property
    def line(self) -> str:
        return bank.SHEET_LINES[self.intent].format(F=self.fact, **self.fields)


def fact_text(intent: str, value: Any) -> str:
    """How a fact value is written ("$49", "3 business days", "8am to 6pm", "A > B > C")."""
    if intent in ("price", "plan_price", "free_shipping"):
        return f"${value}"
    if intent == "hours":
        start, end = value
        return f"{start}am to {end}pm"
    if intent == "steps":
        return " > ".join(value)
    unit = {"warranty": "year", "returns": "day", "delivery": "business day",
            "refund": "business day", "plan_devices": "device"}[intent]
    return f"{value} {unit}{'' if value == 1 else 's'}"


def build_world(rng: random.Random) -> tuple[str, list[Subject]]:
    """The company name and every subject of its knowledge sheet, drawn from ``rng``."""
    company = rng.choice(bank.COMPANY_HEADS) + rng.choice(bank.COMPANY_TAILS)
    subjects: list[Subject] = []
    prefixes = rng.sample(bank.PRODUCT_PREFIXES, N_PRODUCTS)
    for prefix, (noun, low, high) in zip(prefixes, rng.sample(bank.PRODUCT_KINDS, N_PRODUCTS),
                                         strict=True):
        fields = {"product": f"{prefix} {noun}"}
        values = {"price": rng.randint(low, high), "warranty": rng.randint(1, 5),
                  "returns": rng.choice((14, 21, 28, 30, 45, 60, 90)),
                  "delivery": rng.randint(1, 9)}
        subjects += [Subject(i, v, fields, (fields,)) for i, v in values.items()]
    plans = sorted(rng.sample(bank.PLAN_NAMES, N_PLANS), key=bank.PLAN_NAMES.index)
    prices = sorted(rng.sample(range(4, 40), N_PLANS))
    devices = sorted(rng.sample(range(1, 11), N_PLANS))
    for plan, price, count in zip(plans, prices, devices, strict=True):
        fields = {"plan": plan}
        subjects += [Subject("plan_price", price, fields, (fields,)),
                     Subject("plan_devices", count, fields, (fields,))]
    for channel in rng.sample(bank.CHANNELS, N_CHANNELS):
        fields = {"channel": channel, "Channel": channel[0].upper() + channel[1:]}
        subjects.append(Subject("hours", (rng.randint(7, 10), rng.randint(4, 10)), fields,
                                ({"channel": channel},)))
    for actions, task, *menus in bank.PATH_TASKS.values():
        path = tuple(rng.choice(names) for names in menus)
        subjects.append(Subject("steps", path, {"task": task},
                                tuple({"action": a} for a in actions), tuple(menus)))
    for method in rng.sample(bank.REFUND_METHODS, N_METHODS):
        fields = {"method": method}
        subjects.append(Subject("refund", rng.randint(2, 14), fields, (fields,)))
    subjects.append(Subject("free_shipping", rng.choice(range(25, 101, 5)), {}, ({},)))
    for subject in subjects:
        subject.fields = {"company": company, **subject.fields}
    return company, subjects


def wrong_value(subject: Subject, rng: random.Random) -> Any:
    """A plausible but wrong value for ``subject``'s fact."""
    value = subject.value
    if subject.intent == "steps":
        position = rng.randrange(len(subject.options))
        path = list(value)
        path[position] = rng.choice([o for o in subject.options[position] if o != path[position]])
        return tuple(path)
    if subject.intent == "hours":
        start, end = value
        if rng.random() < 0.5:
            return (rng.choice([h for h in range(6, 12) if h != start]), end)
        return (start, rng.choice([h for h in range(3, 12) if h != end]))
    number = int(value)
    span = max(3, number // 3)
    return rng.choice([number + d for d in range(-span, span + 1) if d and number + d > 0])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower(sentence: str, subject: Subject) -> str:
    """``sentence`` with a lower-case first letter, unless it starts with a name or "I"."""
    names = [v for k, v in subject.fields.items() if k not in ("channel", "Channel")]
    first = sentence.split(" ", 1)[0]
    if first in ("I", "I'd", "I'm") or any(sentence.startswith(n) for n in names):
        return sentence
    return sentence[:1].lower() + sentence[1:]


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def fact_sentence(subject: Subject, fact: str, rng: random.Random) -> str:
    return rng.choice(bank.FACT_SENTENCES[subject.intent]).format(F=fact, **subject.fields)


def framed(core: str, rng: random.Random) -> str:
    """``core`` alone, or with a greeting, a closing or both (chosen, wrong, evasive)."""
    roll = rng.random()
    greeting = rng.choice(bank.GREETINGS) if 0.3 <= roll < 0.65 or roll >= 0.9 else ""
    closing = rng.choice(bank.CLOSINGS) if roll >= 0.65 else ""
    return _join(greeting, core, closing)


def rejected_reply(flaw: str, subject: Subject, side: str, rng: random.Random) -> tuple[str, str]:
    """``(reply, wrong fact or "")`` for one flaw type."""
    sentence = fact_sentence(subject, subject.fact, rng)
    if flaw == "wrong":
        wrong = fact_text(subject.intent, wrong_value(subject, rng))
        return framed(fact_sentence(subject, wrong, rng), rng), wrong
    if flaw == "rude":
        template = rng.choice(RUDE_POOLS[side])
        return _cap(template.format(S=sentence, s=_lower(sentence, subject),
                                    F=subject.fact)), ""
    if flaw == "evasive":
        topic, team, page = (t.format(**subject.fields)
                             for t in bank.EVASIVE_CONTEXT[subject.intent])
        return framed(rng.choice(EVASIVE_POOLS[side]).format(topic=topic, team=team, page=page),
                      rng), ""
    fillers = [f.format(**subject.fields) for f in rng.sample(bank.FILLER, len(bank.FILLER))]
    before = [fillers.pop() for _ in range(rng.randint(1, 2))]
    after = [rng.choice(bank.REPEATS).format(s=_lower(sentence, subject))]
    after += [fillers.pop() for _ in range(rng.randint(0, 1))]
    closing = rng.choice(bank.LONG_CLOSINGS).format(**subject.fields)
    greeting = rng.choice(bank.GREETINGS) if rng.random() < 0.6 else ""
    while True:
        reply = _join(greeting, *before, sentence, *after, closing)
        if prefs_judge.word_count(reply) >= PADDED_MIN_WORDS:
            return reply, ""
        before.append(fillers.pop())


def typo(text: str, protect: str, rng: random.Random) -> str:
    """``text`` with one misspelt word (letters swapped, dropped or doubled) outside ``protect``."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words)
                  if w.isalpha() and len(w) >= 4 and w.lower() not in protect.lower()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word, j = words[i], rng.randrange(1, len(words[i]) - 2)
    words[i] = rng.choice((word[:j] + word[j + 1] + word[j] + word[j + 2:],
                           word[:j] + word[j + 1:], word[:j] + word[j] + word[j:]))
    return " ".join(words)


def question(subject: Subject, side: str, rng: random.Random) -> tuple[str, str]:
    """``(customer question, template id)`` from the ``side`` templates of the subject's intent."""
    template_id, template = rng.choice(QUESTION_POOLS[side][subject.intent])
    fields = rng.choice(subject.questions)
    body = _cap(template.format(**fields))
    opening, extra = rng.choice(bank.OPENINGS), rng.choice(bank.EXTRAS)
    if opening.endswith((",", "but")) and not body.startswith(("I ", "I'")) and not any(
            body.startswith(v) for v in fields.values() if v[:1].isupper()):
        body = body[:1].lower() + body[1:]
    if not extra and rng.random() < NO_MARK_RATE:
        body = body.removesuffix("?")
    text = _join(opening, body, extra)
    roll = rng.random()
    if roll < TYPO_RATE:
        text = typo(text, " ".join(fields.values()), rng)
    elif roll < TYPO_RATE + LOWER_RATE:
        text = text.lower()
    return text, template_id


def system_message(subject: Subject, others: list[Subject], rng: random.Random) -> Message:
    """The knowledge sheet: the subject's line among 0-2 lines about other subjects."""
    lines = [subject.line] + [s.line for s in rng.sample(others, rng.choice((0, 1, 1, 2, 2)))]
    rng.shuffle(lines)
    head = SYSTEM.format(company=subject.fields["company"])
    return {"role": "system", "content": "\n".join([head, *(f"- {line}" for line in lines)])}


def _pair(flaw: str, subject: Subject, side: str, rng: random.Random) -> tuple[str, str, str]:
    """``(chosen, rejected, wrong fact)``, redrawn until the replies test what they should."""
    for _ in range(MAX_ATTEMPTS):
        chosen = framed(fact_sentence(subject, subject.fact, rng), rng)
        rejected, wrong = rejected_reply(flaw, subject, side, rng)
        states = prefs_judge.states_fact(rejected, subject.fact)
        if flaw in ("wrong", "evasive") and states:
            continue
        if wrong and (not prefs_judge.states_fact(rejected, wrong)
                      or prefs_judge.states_fact(chosen, wrong)):
            continue
        return chosen, rejected, wrong
    raise RuntimeError(f"prefs: could not draw a {flaw} pair about {subject.fact!r}")


def generate_split(split: str, size: int, subjects: list[Subject], rng: random.Random,
                   seen: set[str]) -> list[Example]:
    """``size`` pairs, flaws in equal shares and intents in turn, shuffled, with new questions."""
    side = "eval" if split == "eval" else "train"
    by_intent = {i: [s for s in subjects if s.intent == i] for i in INTENTS}
    drawn = []
    for n in range(size):
        flaw, intent = FLAWS[n % len(FLAWS)], INTENTS[(n // len(FLAWS)) % len(INTENTS)]
        for _ in range(MAX_ATTEMPTS):
            subject = rng.choice(by_intent[intent])
            text, template_id = question(subject, side, rng)
            if normalize_text(text) not in seen:
                break
        else:
            raise RuntimeError(f"prefs: could not draw a new {split} {intent} question")
        seen.add(normalize_text(text))
        others = [s for s in subjects if s is not subject]
        messages = (system_message(subject, others, rng), {"role": "user", "content": text})
        chosen, rejected, wrong = _pair(flaw, subject, side, rng)
        meta = {"flaw": flaw, "intent": intent, "fact": subject.fact, "template": template_id}
        if wrong:
            meta["wrong_fact"] = wrong
        drawn.append((messages, chosen, rejected, meta))
    rng.shuffle(drawn)
    return [Example(id=f"prefs-{split}-{i:05d}", messages=messages, answer=chosen,
                    rejected=rejected, meta=meta)
            for i, (messages, chosen, rejected, meta) in enumerate(drawn)]


@functools.lru_cache(maxsize=4)
def build(seed: int) -> dict[str, tuple[Example, ...]]:
    """Every split for ``seed`` (cached; :meth:`PrefsTask.load` copies the tuples)."""
    rng = random.Random(seed)
    _, subjects = build_world(rng)
    seen: set[str] = set()
    return {split: tuple(generate_split(split, size, subjects, rng, seen))
            for split, size in SPLIT_SIZES.items()}


class PrefsTask(Task):
    """Chosen/rejected customer-support replies (rude, wrong, evasive, padded), with a judge."""

    name: ClassVar[str] = "prefs"
    description: ClassVar[str] = (
        "preference pairs for customer-support replies: chosen (polite, correct, concise) vs "
        "rejected (rude, wrong, evasive or padded); scored by a rule-based judge"
    )
    max_new_tokens: ClassVar[int] = 64

    def load(self, seed: int) -> TaskData:
        """The three splits for ``seed``, already shuffled."""
        built = build(seed)
        return TaskData(name=self.name, train=list(built["train"]),
                        validation=list(built["validation"]), eval=list(built["eval"]))

    def score_generation(self, generated: str, example: Example) -> tuple[str | None, bool]:
        """Acceptable iff the judge finds the fact stated and scores the reply at least 0.75
        (so a correct reply may miss politeness or concision, but not both)."""
        parts = prefs_judge.judge(generated, example)
        return generated, parts["correct"] == 1.0 and parts["score"] >= 0.75

    def extra_scores(self, generated: str, example: Example) -> dict[str, float]:
        """The judge's components: ``judge_score``, ``judge_correct``, ``judge_polite``,
        ``judge_concise`` and ``judge_answered``."""
        return {f"judge_{k}": v for k, v in prefs_judge.judge(generated, example).items()}

    def judge(self, reply: str, example: Example) -> float:
        """The rule-based judge's score of a free reply (:func:`judge.judge`)."""
        return prefs_judge.judge(reply, example)["score"]
