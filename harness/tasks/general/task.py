"""``general``: easy multiple-choice probes of general ability, to detect forgetting.

Fine-tuning a small model on a narrow task can erode what it knew before (catastrophic
forgetting). This task measures that: it is scored before and after adaptation, and a drop in
accuracy is the cost of the adaptation. Biderman et al. (2024, "LoRA Learns Less and Forgets
Less") measure forgetting the same way, with multiple-choice evaluations of the HellaSwag / ARC /
WinoGrande kind scored by log-likelihood; the categories here echo that mix, scaled down to
what a 135M-parameter instruct model can do well above chance:

* **world facts**: capitals, continents, languages, currencies, landmarks of large countries;
* **arithmetic**: one-digit sums and differences, sums of tens, two-digit sums, times tables;
* **science**: basic astronomy, biology, physics, states of matter, animal classes (ARC-like);
* **commonsense**: everyday objects, places, colours, sounds, days and months;
* **word meaning**: opposites, synonyms, young animals, occupations, kinds of thing;
* **reading**: a two-sentence passage and a question answered literally in it.

Every item has four short choices (one to three words or a number) and is scored by the
log-likelihood of each choice as the assistant's reply (lm-eval's multiple-choice protocol,
:func:`harness.measure.evaluate.score_by_choice`). The prompt is the question alone, *cloze*
style, as
lm-eval scores ARC, HellaSwag and PIQA: the choices are not listed in it. Listing them
("Options: Paris, Lyon, ...") was measured first and made SmolLM2-135M-Instruct pick the first
listed option for three items in four, i.e. score at chance whatever it knew; without the list
the same model scores well above chance in every category. Items are written for this project
(tables in :mod:`bank`), not taken from any benchmark.

Everything is drawn from ``random.Random(seed)``: distractors, the operands of arithmetic
items, the reading passages, the choice order and the item order. The answer's position in
``choices`` is exactly balanced within each category (for scorers that show the choices), and
the eval list is a round-robin over categories (each shuffled), so any prefix
(``TaskData.subset``) covers all categories evenly.

:data:`GENERAL_TEXT` is held-out plain expository prose for a perplexity probe of the same
forgetting (:func:`general_text`); it is unrelated to the training tasks.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from harness.tasks.base import Example, Task, TaskData
from harness.tasks.general import bank

CATEGORIES: tuple[str, ...] = (
    "world facts", "arithmetic", "science", "commonsense", "word meaning", "reading",
)
N_CHOICES = 4
READING_ITEMS = 80
"""How many passages :func:`reading` draws; the other categories use every row of their tables
(:data:`ARITHMETIC_KINDS` for arithmetic), about as many."""
INSTRUCTION = "Answer in a few words."
MAX_ATTEMPTS = 10_000

_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


@dataclass(frozen=True)
class Probe:
    """One question before its choices are drawn: at least three candidate distractors."""

    question: str
    answer: str
    distractors: tuple[str, ...]
    passage: str = ""


def _fill(template: str, *args: str, **fields: str) -> str:
    """``template`` filled in, with "a" before a vowel turned into "an"."""
    return _ARTICLE.sub(r"\1n ", template.format(*args, **fields))


def _rows(table: str) -> list[tuple[str, ...]]:
    """The ``|``-separated rows of a :mod:`bank` table."""
    return [tuple(f.strip() for f in line.split("|")) for line in table.strip().splitlines()]


def _pairs(
    pairs: Sequence[tuple[str, str]], question: str, names: Sequence[str] | None = None
) -> list[Probe]:
    """One probe per ``(subject, answer)``; distractors are the other answers (or ``names``)."""
    pool = list(dict.fromkeys(names or [a for _, a in pairs]))
    return [
        Probe(_fill(question, subject), answer, tuple(x for x in pool if x != answer))
        for subject, answer in pairs
    ]


def _table(table: str, question: str = "{}") -> list[Probe]:
    return [Probe(_fill(question, s), a, tuple(ds)) for s, a, *ds in _rows(table)]


def world_facts(rng: random.Random) -> list[Probe]:
    return [
        *_pairs(bank.CAPITALS, "What is the capital of {}?"),
        *_pairs(bank.CONTINENTS, "On which continent is {}?", bank.CONTINENT_NAMES),
        *_pairs(bank.LANGUAGES, "What is the main language spoken in {}?"),
        *_pairs(bank.CURRENCIES, "What is the name of the currency of {}?"),
        *_pairs(bank.LANDMARKS, "In which country can you find {}?"),
        *_table(bank.WORLD),
    ]


ARITHMETIC_KINDS: dict[str, int] = {"1+1": 16, "1-1": 16, "10+10": 16, "2+2": 16, "1×1": 16}
"""Items per kind: one-digit sums, differences from the teens, sums of tens, two-digit sums
and one-digit products. Measured on SmolLM2-135M-Instruct, harder kinds (two-digit
differences, near-miss distractors for sums) sit at chance, which probes nothing."""
_FAR = (-11, 11, -12, 12, -13, 13, -21, 21)
_NEAR = (-1, 1, -2, 2, -10, 10)


def _operands(kind: str, rng: random.Random) -> tuple[int, str, int]:
    if kind == "1+1":
        return rng.randint(2, 9), "+", rng.randint(2, 9)
    if kind == "1-1":
        return rng.randint(10, 18), "-", rng.randint(2, 9)
    if kind == "10+10":
        return 10 * rng.randint(1, 8), "+", 10 * rng.randint(1, 8)
    if kind == "2+2":
        return rng.randint(10, 79), "+", rng.randint(10, 89)
    return rng.randint(2, 9), "×", rng.randint(2, 9)


def arithmetic(rng: random.Random) -> list[Probe]:
    """Easy sums, differences and products. Distractors are clearly wrong but of the same size:
    off by 11-21 for sums and differences (so the last digit never matches), and the table
    neighbours (off by 1, 2 or 10) for products, which are recalled rather than computed. No
    distractor equals an operand (a small model favours numbers it has just read)."""
    probes: list[Probe] = []
    seen: set[str] = set()
    for kind, count in ARITHMETIC_KINDS.items():
        for _ in range(count):
            for _ in range(MAX_ATTEMPTS):
                a, op, b = _operands(kind, rng)
                question = f"What is {a} {op} {b}?"
                if question not in seen:
                    break
            else:
                raise RuntimeError("general: could not draw a new arithmetic question")
            seen.add(question)
            value = {"+": a + b, "-": a - b, "×": a * b}[op]
            near = [value + d for d in (_NEAR if op == "×" else _FAR)]
            distractors = [n for n in near if n > 0 and n not in (value, a, b)]
            probes.append(Probe(question, str(value), tuple(map(str, dict.fromkeys(distractors)))))
    return probes


def science(rng: random.Random) -> list[Probe]:
    return [
        *_table(bank.SCIENCE),
        *_pairs(bank.ANIMAL_CLASSES, "What kind of animal is a {}?", bank.ANIMAL_CLASS_NAMES),
        *_pairs(bank.STATES_OF_MATTER, "Is {} a solid, a liquid or a gas?", bank.STATE_NAMES),
    ]


def _sequence(names: Sequence[str], question: str) -> list[Probe]:
    """"What comes after X?" for each name of a cycle (weekdays, months). X itself is
    never a distractor: a small model readily repeats the word it has just read."""
    return [
        Probe(question.format(name), names[(i + 1) % len(names)],
              tuple(n for j, n in enumerate(names) if j not in (i, (i + 1) % len(names))))
        for i, name in enumerate(names)
    ]


def commonsense(rng: random.Random) -> list[Probe]:
    return [
        *_table(bank.COMMONSENSE),
        *_sequence(bank.DAYS, "Which day of the week comes after {}?"),
        *_sequence(bank.MONTHS, "Which month comes after {}?"),
    ]


def word_meaning(rng: random.Random) -> list[Probe]:
    return [
        *_table(bank.OPPOSITES, "What is the opposite of \"{}\"?"),
        *_table(bank.SYNONYMS, "Which word means the same as \"{}\"?"),
        *_pairs(bank.BABY_ANIMALS, "What is a baby {} called?"),
        *_pairs(bank.JOBS, "What do we call a person who {}?"),
        *_table(bank.KINDS_OF_WORD, "Give an example of a {}."),
    ]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def reading(rng: random.Random) -> list[Probe]:
    """Passages filled from :data:`bank.READING_POOLS`, cycling through every
    (passage, question) pair; distractors are values of the same slot absent from the passage."""
    pairs = [(p, q, slot) for p, questions in bank.PASSAGES for q, slot in questions]
    probes: list[Probe] = []
    seen: set[str] = set()
    for k in range(READING_ITEMS):
        template, question_template, slot = pairs[k % len(pairs)]
        for _ in range(MAX_ATTEMPTS):
            name, he = rng.choice(bank.NAMES)
            values = {key: rng.choice(pool) for key, pool in bank.READING_POOLS.items()}
            his = {"she": "her", "he": "his"}[he]
            fields = {"Name": name, "he": he, "He": _capitalise(he), "his": his, **values}
            passage = _fill(template, **fields)
            question = _fill(question_template, **fields)
            if (passage, question) not in seen:
                break
        else:
            raise RuntimeError("general: could not draw a new reading passage")
        seen.add((passage, question))
        others = [v for v in bank.READING_POOLS[slot] if v != values[slot]]
        if slot == "relative":
            answer, distractors = f"{his} {values[slot]}", [f"{his} {v}" for v in others]
        else:
            answer, distractors = values[slot], others
        probes.append(Probe(question, answer, tuple(distractors), passage))
    return probes


BUILDERS: dict[str, Callable[[random.Random], list[Probe]]] = {
    "world facts": world_facts,
    "arithmetic": arithmetic,
    "science": science,
    "commonsense": commonsense,
    "word meaning": word_meaning,
    "reading": reading,
}


def render(probe: Probe) -> str:
    """The user prompt: optional passage, the question and :data:`INSTRUCTION`. The choices
    are not listed (see the module docstring)."""
    lines = [] if not probe.passage else [
        "Read the passage and answer the question.", f"Passage: {probe.passage}"
    ]
    return "\n".join([*lines, f"Question: {probe.question}", INSTRUCTION])


def raw_context(example: Example) -> str:
    """The probe as plain text for raw-mode scoring, in the ``Question: ...\nAnswer:`` form
    lm-eval's HFLM scores ARC and similar tasks with: the user turn without
    :data:`INSTRUCTION` (a chat-style instruction), each choice following after a space."""
    text = example.messages[-1]["content"].removesuffix(f"\n{INSTRUCTION}")
    return f"{text}\nAnswer:"


def category_items(category: str, rng: random.Random) -> list[Example]:
    """One category's examples in table order, with exactly balanced answer positions."""
    probes = BUILDERS[category](rng)
    positions = [i % N_CHOICES for i in range(len(probes))]
    rng.shuffle(positions)
    slug = category.replace(" ", "-")
    items: list[Example] = []
    for i, (probe, position) in enumerate(zip(probes, positions, strict=True)):
        choices = rng.sample(probe.distractors, N_CHOICES - 1)
        choices.insert(position, probe.answer)
        items.append(Example(
            id=f"general-{slug}-{i:04d}",
            messages=({"role": "user", "content": render(probe)},),
            answer=probe.answer,
            choices=tuple(choices),
            meta={"category": category},
        ))
    return items


def build(seed: int) -> list[Example]:
    """Every item, each category shuffled, then interleaved round-robin (in a seeded order).

    Each category draws from its own generator (seeded from ``random.Random(seed)``), so
    editing one category's table leaves the other categories' items unchanged.
    """
    rng = random.Random(seed)
    streams = {category: random.Random(rng.getrandbits(64)) for category in CATEGORIES}
    by_category = {category: category_items(category, streams[category]) for category in CATEGORIES}
    for category, items in by_category.items():
        streams[category].shuffle(items)
    order = list(CATEGORIES)
    rng.shuffle(order)
    longest = max(map(len, by_category.values()))
    return [
        by_category[c][k] for k in range(longest) for c in order if k < len(by_category[c])
    ]


class GeneralTask(Task):
    """Multiple-choice probes of general ability, scored before and after adaptation."""

    name: ClassVar[str] = "general"
    description: ClassVar[str] = "multiple-choice probes of general ability (forgetting)"
    max_new_tokens: ClassVar[int] = 8

    def load(self, seed: int) -> TaskData:
        """Eval only (nothing to train on); ``labels`` is empty as choices differ per item."""
        return TaskData(name=self.name, train=[], validation=[], eval=build(seed), labels=())


def general_text() -> list[str]:
    """:data:`GENERAL_TEXT` as a list, for the perplexity probe."""
    return list(GENERAL_TEXT)


GENERAL_TEXT: tuple[str, ...] = (
    (
        "Clouds form when warm, moist air rises and cools. As the air cools, the water vapour in "
        "it condenses into tiny droplets or ice crystals around specks of dust. Billions of these "
        "droplets together make a cloud that we can see from the ground. When the droplets join "
        "and grow heavy enough, they fall as rain, or as snow if the air is cold enough. Thin, "
        "wispy clouds high in the sky are made mostly of ice, while low grey clouds that cover "
        "the whole sky often bring steady drizzle."
    ),
    (
        "A bicycle turns the push of a rider's legs into forward motion. The pedals turn a crank "
        "attached to a toothed wheel called a chainring, and a chain carries that motion to a set "
        "of smaller gears on the rear wheel. Choosing a larger rear gear makes pedalling easier "
        "on hills, while a smaller one lets the rider go faster on flat ground. Brakes press pads "
        "against the wheel rim or a metal disc to slow the bike down. Air-filled tyres soften "
        "bumps in the road and help the wheels grip."
    ),
    (
        "A public library lends books, magazines, films and music to anyone with a library card, "
        "usually at no cost. Books are arranged on shelves by subject, so readers can find "
        "related titles next to each other. Many libraries use a numbering system in which each "
        "subject has its own range of numbers, printed on a label on the spine of each book. "
        "Besides lending, libraries offer quiet places to study, computers with internet access "
        "and reading sessions for young children. Librarians help visitors find information and "
        "suggest books they might enjoy."
    ),
    (
        "Cooking rice on a stove is simple once the proportions are right. For many kinds of "
        "white rice, a common rule is about one and a half to two cups of water for every cup of "
        "rice. The rice is often rinsed first to remove loose starch, which keeps the grains from "
        "sticking together. The water is brought to a boil, the rice is added, and the pot is "
        "covered and left on low heat until the water has been absorbed. Letting the rice rest "
        "for a few minutes before serving makes it fluffier."
    ),
    (
        "Bread is made from flour, water, salt and yeast. When the ingredients are mixed and "
        "kneaded, proteins in the flour form a stretchy network called gluten. The yeast feeds on "
        "sugars in the dough and releases carbon dioxide gas, which is trapped by the gluten and "
        "makes the dough rise. After rising, the dough is shaped and baked in a hot oven. The "
        "heat sets its structure, turns the outside into a brown crust and drives off much of the "
        "moisture inside."
    ),
    (
        "In autumn, many trees in cool climates change colour and drop their leaves. During "
        "spring and summer, leaves are green because they are full of chlorophyll, the pigment "
        "that captures sunlight. As the days grow shorter and colder, the tree stops making "
        "chlorophyll, and yellow and orange pigments that were hidden underneath become visible. "
        "Some trees also produce red pigments at this time. Dropping its leaves helps a tree save "
        "water and energy during winter, and new leaves grow from buds when warm weather returns."
    ),
    (
        "Bees visit flowers to collect nectar and pollen, which they use as food. As a bee moves "
        "from one flower to the next, grains of pollen stick to the hairs on its body and rub off "
        "on other flowers. This transfer, called pollination, allows many plants to produce fruit "
        "and seeds. Apples, cherries, almonds and many other crops depend on insects for "
        "pollination. Honeybees live in large colonies, but most kinds of bees actually live "
        "alone and build small nests in the ground or in hollow stems."
    ),
    (
        "Along most coastlines the sea rises and falls about twice a day. These changes, called "
        "tides, are caused mainly by the pull of the Moon's gravity on the oceans, with a smaller "
        "effect from the Sun. When the Sun and the Moon line up, around new moon and full moon, "
        "the tides are larger than usual. The difference between high and low water varies "
        "greatly from place to place: in some narrow bays it is many metres, while in almost "
        "enclosed seas it can be very small."
    ),
    (
        "Trains run on steel rails that guide their wheels, so the driver does not need to steer. "
        "Because steel wheels roll on steel rails with very little friction, a single locomotive "
        "can pull a long line of heavy wagons. Many modern trains are powered by electricity "
        "taken from overhead wires or from a third rail, while others carry their own diesel "
        "engines. Signals along the track tell drivers when it is safe to continue, which keeps "
        "trains a safe distance apart on busy lines."
    ),
    (
        "Sleep is a regular period of rest during which the body and the brain recover. Most "
        "adults need around seven to nine hours of sleep each night, while children and teenagers "
        "usually need more. During sleep the body repairs tissues, and the brain sorts and stores "
        "memories from the day. A regular bedtime, a dark and quiet room, and avoiding bright "
        "screens late in the evening can all help people fall asleep more easily. Missing sleep "
        "for several nights in a row makes it harder to concentrate."
    ),
    (
        "A map is a flat drawing that shows part of the world as seen from above. Most maps "
        "include a scale, which tells how a distance on paper relates to a distance on the "
        "ground, and a legend that explains the symbols used for roads, rivers, forests and "
        "buildings. Many maps are drawn with north at the top. Because the Earth is round, every "
        "flat map stretches or squeezes some areas, so mapmakers choose different projections "
        "depending on whether shapes, areas or directions matter most."
    ),
    (
        "Composting turns kitchen scraps and garden waste into a dark, crumbly material that "
        "enriches soil. Fruit and vegetable peels, coffee grounds, grass clippings and dry leaves "
        "can all go into a compost heap. Tiny organisms such as bacteria and fungi, along with "
        "worms, break this material down over weeks or months. A good heap has a mix of wet green "
        "material and dry brown material, enough air and some moisture. Turning the pile over "
        "from time to time speeds up the process."
    ),
    (
        "A volcano is an opening in the Earth's crust through which molten rock, gas and ash "
        "escape. Deep underground, rock melts to form magma, which is lighter than the solid rock "
        "around it and slowly rises. When enough pressure builds up, the magma can break through "
        "the surface in an eruption. Once it reaches the surface, molten rock is called lava. "
        "Some volcanoes erupt explosively and throw ash high into the sky, while others release "
        "slow rivers of lava that flow down their slopes."
    ),
    (
        "Lighthouses have guided ships along dangerous coasts for centuries. A lighthouse is a "
        "tall tower with a powerful lamp at the top, built near rocks, reefs or the entrance to a "
        "harbour. Each lighthouse flashes its light in its own pattern, so sailors at night can "
        "tell which one they are looking at and work out their position. Lenses focus the light "
        "into a beam that can be seen from many kilometres away. Today most lighthouses run "
        "automatically and no longer need a keeper living on site."
    ),
    (
        "Salt has been used for thousands of years to flavour and preserve food. It can be "
        "produced by letting seawater evaporate in shallow ponds under the sun, which leaves salt "
        "crystals behind, or by mining deposits left underground by ancient seas. Ordinary table "
        "salt is the chemical compound sodium chloride. Salting meat and fish draws out water, "
        "which slows the growth of the microbes that make food spoil. Salt is also spread on icy "
        "roads in winter because it lowers the temperature at which water freezes."
    ),
    (
        "People have measured time in many different ways. Early sundials used the shadow cast by "
        "the Sun, and water clocks tracked the hours by the steady flow of water from one "
        "container into another. Mechanical clocks use a swinging pendulum or a balance wheel "
        "driven by a spring to keep a regular beat, which turns a set of gears that move the "
        "hands. Most modern watches keep time with a tiny quartz crystal that vibrates at a very "
        "steady rate when electricity passes through it."
    ),
    (
        "The Moon does not make its own light; it shines because it reflects light from the Sun. "
        "As the Moon travels around the Earth, a journey of about a month, we see different "
        "amounts of its sunlit side. At new moon the lit side faces away from us and the Moon is "
        "hard to see. Over the following two weeks the bright part grows until we see a full "
        "moon, and then it shrinks again. These changing shapes are called the phases of the "
        "Moon."
    ),
    (
        "Recycling turns used materials into new products instead of throwing them away. Paper "
        "can be soaked and pulped to make new paper, glass can be melted and shaped again, and "
        "aluminium cans can be melted down and rolled into fresh metal with far less energy than "
        "it takes to make new metal from ore. For recycling to work well, materials need to be "
        "sorted and reasonably clean. Many towns collect paper, glass, metal and some plastics "
        "separately so that each can be processed in the right way."
    ),
    (
        "A river begins at its source, which may be a spring, a lake or melting snow high in the "
        "mountains. Small streams join together as they flow downhill, and the river grows wider "
        "and carries more water. Over long periods, flowing water wears away rock and soil and "
        "carries sand and mud downstream. Where a river slows down near the sea, it drops this "
        "material and sometimes builds a wide, flat area of land called a delta. Rivers provide "
        "water for drinking, for farming and for transport."
    ),
    (
        "Tea is made from the leaves of a shrub that grows well in warm, rainy places, often on "
        "hillsides. After picking, the leaves are processed in different ways to make different "
        "kinds of tea. For green tea, the leaves are heated soon after picking to stop them from "
        "changing. For black tea, the leaves are rolled and left exposed to the air so that they "
        "darken before they are dried. To make a cup of tea, the dried leaves are steeped in hot "
        "water for a few minutes."
    ),
)
"""About twenty paragraphs of plain expository prose written for this project, held out from
every training set: the text on which a perplexity increase signals forgetting."""
