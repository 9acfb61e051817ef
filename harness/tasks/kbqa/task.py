"""``kb-qa``: questions about a fictional organisation's documents (knowledge no model has).

The documents (:mod:`world`) describe products, people, offices, policies and procedures
of an invented company; every name and fact is drawn from the seed, so a candidate can only
answer by being given the knowledge: retrieval over ``TaskData.corpus``, fine-tuning on the
train split (which includes every document), or both. The design follows:

* **Templated entity-attribute questions** as in PopQA (Mallen et al., 2023, "When Not to Trust
  Language Models"): every fact is asked with 2-3 paraphrased templates, short answers, and the
  headline score is whether the reference occurs in the reply (:mod:`harness.tasks.qa`).
* **Knowledge injection with held-out facts** after Allen-Zhu & Li (2023, "Physics of Language
  Models: Part 3.1, Knowledge Storage and Extraction") and Ovadia et al. (2024, "Fine-Tuning or
  Retrieval? Comparing Knowledge Injection in LLMs"): the train split recites every document
  and asks paraphrases of most facts; eval asks *other* paraphrases of trained facts
  (``meta["in_train"] == "yes"``) and facts never asked in train (``"no"``), which only the
  documents teach. Splits are by question text: no normalised question occurs in two splits.
* **Bridge (two-hop) questions** as in HotpotQA (Yang et al., 2018): the first passage names
  the entity whose passage holds the answer ("In which city does the manager of X work?");
  ``meta["gold_passages"]`` lists both, the bridge passage first and the answer's second.
* **Unanswerable questions** as in SQuAD 2.0 (Rajpurkar et al., 2018): about entities that do
  not exist or attributes no passage states; the reference is ``qa.REFUSAL`` and a reply is
  correct iff it declines (``meta["absent"]`` is the name or word no passage contains).
* **Knowledge updates** in the spirit of StreamingQA (Liška et al., 2022): ``updated_corpus`` is
  the same documents with :data:`UPDATE_FRACTION` of the changeable facts changed (prices,
  dates, warranties, opening times, staff numbers, policy values, product names), and
  ``update_eval`` asks each changed fact once (``answer`` new, ``meta["old_answer"]`` old).

Everything is drawn from ``random.Random(seed)``; building is cached per seed.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from harness.tasks.base import Example, Message, Passage, Task, TaskData, normalize_text
from harness.tasks.kbqa import world as kw
from harness.tasks.qa import REFUSAL, contains_answer, exact_match, is_refusal, token_f1

SYSTEM = (
    f"You are an assistant for the staff of {kw.ORG}, a company. You answer questions about its "
    "products, people, offices, policies and procedures."
)
INSTRUCTION = (
    "Answer the question with a short answer only (a name, a number, a date or a short phrase). "
    "If you do not know the answer, reply \"I don't know.\""
)
UPDATE_FRACTION = 0.2
"""Share of the changeable facts (:data:`world.CHANGEABLE`) that differ in version 2."""
EVAL_SIZES: dict[str, int] = {"single": 292, "multi-hop": 48, "unanswerable": 60}
VALIDATION_SIZES: dict[str, int] = {"single": 73, "multi-hop": 12, "unanswerable": 15}
TRAIN_SIZES: dict[str, int] = {"multi-hop": 60, "unanswerable": 80}
"""Train also holds every paraphrase but one of each single fact not held out, and one
recitation ("document") example per passage."""
HELD_OUT_SHARE = 0.5
"""Share of the answerable eval / validation questions about facts no train question asks."""
KINDS = ("product", "person", "office", "policy", "procedure")
MAX_ATTEMPTS = 10_000

T = TypeVar("T")

SINGLE_QUESTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("product", "price"): ("How much does {name} cost?", "What is the price of {name}?",
                           "What would a customer pay for {name}?"),
    ("product", "launch"): ("When did {name} launch?", "What is the launch date of {name}?",
                            "On what date did {name} go on sale?"),
    ("product", "warranty"): ("How long is the warranty on {name}?",
                              "What warranty period does {name} come with?",
                              "For how long is {name} covered by its warranty?"),
    ("product", "category"): ("What kind of product is {name}?", "What type of product is {name}?"),
    ("product", "manager"): ("Who manages {name}?", "Who is the product manager for {name}?",
                             "Which person is in charge of the {name} product?"),
    ("person", "role"): ("What is {name}'s job title?", "What role does {name} have at {org}?",
                         "What does {name} do at {org}?"),
    ("person", "office"): ("Which office does {name} work at?", "In which city is {name} based?",
                           "Where does {name} work?"),
    ("person", "year"): ("When did {name} join {org}?", "In what year did {name} join {org}?",
                         "Since which year has {name} worked at {org}?"),
    ("person", "boss"): ("Who does {name} report to?", "Who is {name}'s line manager?"),
    ("office", "opened"): ("In what year did the {city} office open?",
                           "When was the {city} office established?"),
    ("office", "opens"): ("What time does the {city} office open?",
                          "When does the {city} office open in the morning?"),
    ("office", "closes"): ("What time does the {city} office close?",
                           "At what time does the {city} office close for the day?"),
    ("office", "staff"): ("How many staff does the {city} office have?",
                          "How many people work at the {city} office?"),
    ("office", "head"): ("Who leads the {city} office?", "Who is the head of the {city} office?"),
    ("policy", "value"): ("What {noun} does policy {code} set?",
                          "Under policy {code}, what is the {noun}?",
                          "What is the {noun} for the {division} division?"),
    ("policy", "effective"): ("When did policy {code} take effect?",
                              "What is the effective date of policy {code}?"),
    ("policy", "approver"): ("Who approved policy {code}?", "Who signed off policy {code}?"),
    ("procedure", "first"): ("What is the first step when {title}?",
                             "How does the procedure for {title} begin?",
                             "What do staff do first when {title}?"),
    ("procedure", "last"): ("What is the last step when {title}?",
                            "How does the procedure for {title} end?",
                            "What do staff do last when {title}?"),
    ("procedure", "policy"): ("Which policy does the procedure for {title} follow?",
                              "Under which policy is the procedure for {title} carried out?"),
}
"""Paraphrased questions per ``(entity kind, attribute)``; fields from :func:`world.fields`."""
RENAME_QUESTIONS = ("What is the name of the product managed by {manager}?",
                    "What is the product that {manager} manages called?")
MULTI_HOP_QUESTIONS: dict[tuple[str, str, str, str], tuple[str, ...]] = {
    # (kind, linking attribute, kind it links to, attribute asked of that entity)
    ("product", "manager", "person", "office"): (
        "In which city does the manager of {name} work?",
        "Where is the office of the person who manages {name}?"),
    ("product", "manager", "person", "year"): (
        "In what year did the manager of {name} join {org}?",
        "When did the person who manages {name} join {org}?"),
    ("person", "office", "office", "staff"): (
        "How many staff work at the office where {name} works?",
        "How many people are employed at {name}'s office?"),
    ("person", "office", "office", "opens"): (
        "What time does {name}'s office open?",
        "When does the office where {name} works open in the morning?"),
    ("office", "head", "person", "year"): (
        "When did the head of the {city} office join {org}?",
        "In what year did the person who leads the {city} office join {org}?"),
    ("policy", "approver", "person", "office"): (
        "In which city does the person who approved policy {code} work?",
        "Where is the approver of policy {code} based?"),
    ("procedure", "policy", "policy", "effective"): (
        "When did the policy followed by the procedure for {title} take effect?",
        "What is the effective date of the policy behind the procedure for {title}?"),
    ("procedure", "policy", "policy", "approver"): (
        "Who approved the policy that the procedure for {title} follows?",
        "Who signed off the policy behind the procedure for {title}?"),
}
MISSING_QUESTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    # (question about an attribute no passage states, a word no passage contains)
    "product": (("How much does {name} weigh?", "weigh"), ("What colour is {name}?", "colour"),
                ("In which factory is {name} made?", "factory"),
                ("What is the battery life of {name}?", "battery")),
    "person": (("What is {name}'s phone number?", "phone"), ("What is {name}'s salary?", "salary"),
               ("Which university did {name} attend?", "university"),
               ("What is {name}'s date of birth?", "birth")),
    "office": (("What is the street address of the {city} office?", "address"),
               ("What is the phone number of the {city} office?", "phone"),
               ("How large is the car park at the {city} office?", "car park")),
    "policy": (("How many times has policy {code} been revised?", "revised"),
               ("Who drafted policy {code}?", "drafted"),
               ("When does policy {code} expire?", "expire")),
    "procedure": (("How many minutes does the procedure for {title} usually take?", "minutes"),
                  ("Who wrote the procedure for {title}?", "wrote")),
}

@dataclass(frozen=True)
class Fact:
    """One thing a question can ask, with its paraphrased questions."""

    fid: str
    """``p012.price``; two-hop ``p012.manager>p057.office``; unknown entity ``x:name.attr``."""
    kind: str
    """``single``, ``multi-hop``, ``unanswerable``, ``document`` or ``update``."""
    attribute: str
    """The question type: ``product.price``, ``product.manager>person.office``,
    ``unknown-entity.product``, ``unstated.product.colour``, ``document``..."""
    answer: str
    gold: tuple[str, ...]
    questions: tuple[str, ...]
    absent: str = ""
    """For unanswerable questions: the entity name or attribute word no passage contains."""


def single_facts(world: kw.World) -> list[Fact]:
    """Every fact of one passage that the templates ask, in table order."""
    return [
        Fact(f"{entity.pid}.{attr}", "single", f"{kind}.{attr}",
             kw.answer(world, kind, index, attr), (entity.pid,),
             tuple(t.format(**kw.fields(world, kind, index)) for t in templates))
        for (kind, attr), templates in SINGLE_QUESTIONS.items()
        for index, entity in enumerate(world.entities(kind))
    ]


def multi_hop_facts(world: kw.World) -> dict[str, list[Fact]]:
    """Two-hop facts by question type: one per entity and chain of :data:`MULTI_HOP_QUESTIONS`."""
    out: dict[str, list[Fact]] = {}
    for (kind, link, target, attr), templates in MULTI_HOP_QUESTIONS.items():
        group = f"{kind}.{link}>{target}.{attr}"
        for index, entity in enumerate(world.entities(kind)):
            hop = entity.facts[link]
            second = world.entities(target)[hop]
            questions = tuple(t.format(**kw.fields(world, kind, index)) for t in templates)
            out.setdefault(group, []).append(Fact(
                f"{entity.pid}.{link}>{second.pid}.{attr}", "multi-hop", group,
                kw.answer(world, target, hop, attr), (entity.pid, second.pid), questions,
            ))
    return out


def unanswerable_facts(
    world: kw.World, rng: random.Random, names: kw.NameMaker, n: int
) -> list[Fact]:
    """``n`` unanswerable questions, cycling over (unknown entity | unstated attribute) x kind."""
    categories = [(mode, kind) for mode in ("entity", "attribute") for kind in KINDS]
    out: list[Fact] = []
    seen: set[str] = set()
    for _ in range(MAX_ATTEMPTS):
        if len(out) == n:
            return out
        mode, kind = categories[len(out) % len(categories)]
        if mode == "entity":
            name = {
                "product": names.word, "person": names.person, "office": names.city,
                "policy": names.code, "procedure": lambda: rng.choice(world.unused_titles),
            }[kind]()
            key = {"office": "city", "policy": "code", "procedure": "title"}.get(kind, "name")
            topic, division = rng.choice(kw.POLICY_TOPICS), rng.choice(kw.DIVISIONS)
            values = {"org": kw.ORG, key: name, "noun": topic[0], "division": division}
            attr, template = rng.choice([
                (a, t) for (k, a), ts in SINGLE_QUESTIONS.items() if k == kind
                for t in ts if "{division}" not in t  # the division names a real policy
            ])
            fid, absent, text = f"x:{normalize_text(name)}.{attr}", name, template.format(**values)
            attribute = f"unknown-entity.{kind}"
        else:
            index = rng.randrange(len(world.entities(kind)))
            template, absent = rng.choice(MISSING_QUESTIONS[kind])
            text = template.format(**kw.fields(world, kind, index))
            fid = f"{world.entities(kind)[index].pid}.{absent}"
            attribute = f"unstated.{kind}.{absent}"
        if normalize_text(text) not in seen:
            seen.add(normalize_text(text))
            out.append(Fact(fid, "unanswerable", attribute, REFUSAL, (), (text,), absent))
    raise RuntimeError(f"kb-qa: could not draw {n} distinct unanswerable questions")


def _assign(
    facts: list[Fact], rng: random.Random, n_trained: int | None = None
) -> dict[str, list[tuple[Fact, str]]]:
    """``(fact, question)`` per split from randomly ordered ``facts``.

    The first facts are held out (one question each, in validation or eval only); of the next
    ``n_trained`` (all if ``None``), every paraphrase but a reserved one goes to train, and the
    reserved paraphrases of the first of them go to validation and eval.
    """
    kind = facts[0].kind
    held = {s: round(sizes[kind] * HELD_OUT_SHARE) for s, sizes in
            (("eval", EVAL_SIZES), ("validation", VALIDATION_SIZES))}
    known = {"eval": EVAL_SIZES[kind] - held["eval"],
             "validation": VALIDATION_SIZES[kind] - held["validation"]}
    n_held = held["eval"] + held["validation"]
    trained = facts[n_held:] if n_trained is None else facts[n_held : n_held + n_trained]
    held_questions = [(f, rng.choice(f.questions)) for f in facts[:n_held]]
    out: dict[str, list[tuple[Fact, str]]] = {"train": []}
    reserved = []
    for fact in trained:
        keep = rng.randrange(len(fact.questions))
        out["train"] += [(fact, q) for i, q in enumerate(fact.questions) if i != keep]
        reserved.append((fact, fact.questions[keep]))
    if len(reserved) < known["eval"] + known["validation"]:
        raise RuntimeError(f"kb-qa: too few {kind} facts for the split sizes")
    out["eval"] = reserved[: known["eval"]] + held_questions[: held["eval"]]
    out["validation"] = (reserved[known["eval"] : known["eval"] + known["validation"]]
                         + held_questions[held["eval"] :])
    return out


def interleave(groups: dict[str, list[T]], rng: random.Random) -> list[T]:
    """Merge shuffled groups so that every prefix holds each group in about its share."""
    keyed = []
    for items in groups.values():
        rng.shuffle(items)
        keyed += [((i + rng.random()) / len(items), item) for i, item in enumerate(items)]
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def make_messages(question: str, instruction: bool = True) -> tuple[Message, ...]:
    """The prompt conversation for one question (documents are recited without instruction)."""
    content = f"{INSTRUCTION}\n\nQuestion: {question}" if instruction else question
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": content})


def _example(ident: str, fact: Fact, question: str, meta: dict[str, str]) -> Example:
    meta = {"kind": fact.kind, "gold_passages": ",".join(fact.gold), "fact": fact.fid,
            "attribute": fact.attribute, **meta}
    if fact.absent:
        meta["absent"] = fact.absent
    messages = make_messages(question, instruction=fact.kind != "document")
    return Example(id=ident, messages=messages, answer=fact.answer, meta=meta)


@dataclass(frozen=True)
class Build:
    """Everything one seed generates (cached; :meth:`KBQATask.load` copies it into TaskData)."""

    world: kw.World
    updated_world: kw.World
    changes: tuple[tuple[str, int, str], ...]
    splits: dict[str, tuple[Example, ...]]
    corpus: tuple[Passage, ...]
    updated_corpus: tuple[Passage, ...]
    update_eval: tuple[Example, ...]


@functools.lru_cache(maxsize=4)
def build(seed: int) -> Build:
    """Generate the world, its documents (two versions) and every question for ``seed``."""
    rng = random.Random(seed)
    names = kw.NameMaker(rng)
    world = kw.build_world(rng, names)
    updated, changes = kw.update_world(world, rng, names, UPDATE_FRACTION)
    corpus = tuple(Passage(*row) for row in kw.render(world))
    updated_corpus = tuple(Passage(*row) for row in kw.render(updated))

    singles = single_facts(world)
    rng.shuffle(singles)
    by_chain = multi_hop_facts(world)
    for chain in by_chain.values():
        rng.shuffle(chain)
    chains = list(by_chain.values())  # round robin, so every chain type is in every split
    multi = [c[i] for i in range(max(map(len, chains))) for c in chains if i < len(c)]
    n_unanswerable = sum(s["unanswerable"] for s in (TRAIN_SIZES, EVAL_SIZES, VALIDATION_SIZES))
    unanswerable = unanswerable_facts(world, rng, names, n_unanswerable)
    cut = (TRAIN_SIZES["unanswerable"], TRAIN_SIZES["unanswerable"] + EVAL_SIZES["unanswerable"])
    parts = {
        "single": _assign(singles, rng),
        "multi-hop": _assign(multi, rng, TRAIN_SIZES["multi-hop"]),
        "unanswerable": {
            split: [(f, f.questions[0]) for f in facts] for split, facts in
            (("train", unanswerable[: cut[0]]), ("eval", unanswerable[cut[0] : cut[1]]),
             ("validation", unanswerable[cut[1] :]))
        },
        "document": {"train": [
            (Fact(p.id, "document", "document", p.text, (p.id,), ()),
             f'Recite the {kw.ORG} handbook entry "{p.title}".')
            for p in corpus
        ]},
    }
    texts = [normalize_text(q) for by_split in parts.values() for items in by_split.values()
             for _, q in items]
    if len(set(texts)) != len(texts):
        raise RuntimeError("kb-qa: a question text occurs twice")
    trained = {fact.fid for by_split in parts.values() for fact, _ in by_split.get("train", [])}
    splits = {}
    for split in ("train", "validation", "eval"):
        groups = {kind: list(by_split[split]) for kind, by_split in parts.items()
                  if split in by_split}
        splits[split] = tuple(
            _example(f"kb-qa-{split}-{i:05d}", fact, question,
                     {"in_train": "yes" if fact.fid in trained else "no"})
            for i, (fact, question) in enumerate(interleave(groups, rng))
        )

    update_eval = []
    for kind, index, attr in changes:
        entity = world.entities(kind)[index]
        if attr == "name":
            manager = kw.answer(world, kind, index, "manager")
            question = rng.choice(RENAME_QUESTIONS).format(manager=manager)
        else:
            template = rng.choice(SINGLE_QUESTIONS[(kind, attr)])
            question = template.format(**kw.fields(world, kind, index))
        fact = Fact(f"{entity.pid}.{attr}", "update", f"{kind}.{attr}",
                    kw.answer(updated, kind, index, attr), (entity.pid,), (question,))
        meta = {"old_answer": kw.answer(world, kind, index, attr),
                "in_train": "yes" if fact.fid in trained else "no"}
        update_eval.append((fact, meta))
    rng.shuffle(update_eval)
    return Build(
        world, updated, tuple(changes), splits, corpus, updated_corpus,
        tuple(_example(f"kb-qa-update-{i:05d}", fact, fact.questions[0], meta)
              for i, (fact, meta) in enumerate(update_eval)),
    )


class KBQATask(Task):
    """Short-answer QA over a fictional company's handbook, with multi-hop, unanswerable and
    knowledge-update questions."""

    name: ClassVar[str] = "kb-qa"
    description: ClassVar[str] = (
        "questions about a fictional organisation's documents (knowledge no model has)"
    )
    max_new_tokens: ClassVar[int] = 32

    def load(self, seed: int) -> TaskData:
        """The splits, both corpus versions and the update questions for ``seed``."""
        built = build(seed)
        return TaskData(
            name=self.name,
            train=list(built.splits["train"]),
            validation=list(built.splits["validation"]),
            eval=list(built.splits["eval"]),
            labels=(),
            corpus=list(built.corpus),
            updated_corpus=list(built.updated_corpus),
            update_eval=list(built.update_eval),
        )

    def score_generation(self, generated: str, example: Example) -> tuple[str | None, bool]:
        """Unanswerable: correct iff the reply refuses. Otherwise: correct iff it does not
        refuse and contains the reference (PopQA's rule, :func:`qa.contains_answer`)."""
        if example.answer == REFUSAL:
            return generated, is_refusal(generated)
        return generated, not is_refusal(generated) and contains_answer(generated, example.answer)

    def extra_scores(self, generated: str, example: Example) -> dict[str, float]:
        """SQuAD exact match and token F1 against the reference, and whether the reply refused."""
        return {
            "exact_match": float(exact_match(generated, example.answer)),
            "f1": token_f1(generated, example.answer),
            "refused": float(is_refusal(generated)),
        }
