"""The fictional organisation behind the ``kb-qa`` task: names, entity tables, passage texts.

Every name (people, products, cities, policy codes, internal software systems) is built from
invented syllables with the task seed, and every fact (prices, dates, who manages what) is drawn
at random, so no pretrained model can know any of it: whatever a candidate answers correctly
was injected by the candidate (retrieval, fine-tuning, prompting with documents). Entities live
in frozen dataclasses; passages are *rendered* from the tables, so the second ("updated") version
of the documents is the same rendering over tables in which some facts changed.

The organisation itself has a fixed invented name (:data:`ORG`) so the system prompt is constant.
Passage kinds: products, people, offices, policies and procedures; each passage states several
facts and mentions other entities (the manager of a product, a person's line manager, the
approver of a policy...) as distractors and as the links of two-hop questions. The questions,
splits and scoring are in :mod:`harness.tasks.kbqa.task`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

ORG = "Ostravane Kelmoth"
"""The organisation's invented name."""

SYLLABLES: tuple[str, ...] = (
    "ar", "bel", "cor", "dax", "el", "fen", "gal", "hask", "il", "jor", "kel", "lum", "mir",
    "nov", "osk", "pell", "quon", "ras", "sul", "tav", "ur", "vex", "wyn", "xan", "yor", "zel",
    "bra", "dre", "fro", "gli", "kra", "ot", "pru", "sko", "thal", "vin", "ay", "ebb", "iss",
    "oru",
)
CITY_SUFFIXES: tuple[str, ...] = ("holm", "vik", "ford", "mere", "stad", "by")
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
CATEGORIES: tuple[str, ...] = (
    "label printer", "desk lamp", "air purifier", "barcode scanner", "standing desk",
    "water filter", "coffee grinder", "wireless headset", "smart thermostat", "document camera",
    "ergonomic chair", "portable projector", "shredder", "conference speaker", "laminator",
)
MANAGER_ROLES: tuple[str, ...] = ("product manager", "product lead", "category manager")
HEAD_ROLES: tuple[str, ...] = ("office director", "site director", "regional director")
OTHER_ROLES: tuple[str, ...] = (
    "finance analyst", "support engineer", "quality inspector", "logistics coordinator",
    "legal counsel", "procurement officer", "warehouse supervisor", "training coordinator",
)
OPENING_TIMES: tuple[str, ...] = ("7:00", "7:30", "8:00", "8:30", "9:00", "9:30")
CLOSING_TIMES: tuple[str, ...] = ("16:00", "16:30", "17:00", "17:30", "18:00", "18:30", "19:00")
WARRANTY_MONTHS: tuple[int, ...] = (6, 12, 18, 24, 36, 48, 60)
POLICY_TOPICS: tuple[tuple[str, str, int, int], ...] = (
    # (noun, value format, lowest, highest)
    ("refund window", "{} days", 14, 60),
    ("daily travel allowance", "${}", 60, 180),
    ("daily meal allowance", "${}", 20, 55),
    ("parental leave entitlement", "{} weeks", 10, 26),
    ("annual training budget", "${}", 300, 950),
    ("expense approval threshold", "${}", 150, 900),
    ("password rotation interval", "{} days", 30, 120),
    ("laptop replacement cycle", "{} months", 24, 48),
    ("data retention period", "{} months", 7, 60),
    ("notice period", "{} weeks", 2, 12),
    ("monthly overtime cap", "{} hours", 10, 40),
    ("probation period", "{} months", 3, 9),
)
DIVISIONS: tuple[str, ...] = (
    "Retail", "Wholesale", "Field Service", "Research", "Logistics", "Finance", "Support",
    "Manufacturing", "Marketing", "Legal",
)
PROCEDURE_TITLES: tuple[str, ...] = (
    "returning a damaged unit", "onboarding a new supplier", "closing an office for the night",
    "reporting a lost laptop", "ordering office supplies", "handling a customer complaint",
    "shipping a replacement part", "welcoming a new employee", "booking business travel",
    "claiming travel expenses", "disposing of old hardware", "running a stock count",
    "receiving a delivery", "issuing a refund", "requesting a new laptop",
    "hosting a site visitor", "recalling a faulty batch", "changing a supplier's bank details",
    "archiving project files", "reporting a safety incident", "renewing a software licence",
    "moving a desk to another office", "preparing a trade show booth", "approving an invoice",
    "resetting a forgotten password", "setting up a demo unit", "handing over a product line",
    "opening an office in the morning", "testing a new product sample",
    "cancelling a customer order", "registering a warranty claim", "publishing a price change",
    "requesting parental leave", "escalating a support ticket", "training a new sales hire",
    "auditing petty cash",
)
STEPS: tuple[str, ...] = (
    # {0}, {1}, {2} are the organisation's (invented) internal software systems
    "log the request in {0}", "open a ticket in {1}", "scan the barcode into {2}",
    "photograph the item", "check the serial number", "print a shipping label",
    "book a courier", "notify the customer by email", "get sign-off from the office director",
    "update the record in {0}", "archive the paperwork", "count the remaining stock",
    "lock the supply cabinet", "record the meter readings", "inspect the packaging",
    "attach the receipt in {1}", "issue a visitor badge", "collect the signed form",
    "test the power supply", "wipe the device", "return the keys to reception",
    "send a summary to finance", "reset the alarm code", "tag the item with a red sticker",
    "file a copy in {2}", "call the supplier", "check the purchase order", "seal the box",
    "sign the logbook", "switch off the lights", "back up the files to {0}",
    "brief the night guard", "refund the payment in {1}", "order replacement parts",
    "book the meeting room", "schedule a follow-up call", "shred the old documents",
    "verify the staff ID",
)
N_PRODUCTS, N_MANAGERS, N_OTHERS, N_OFFICES, N_POLICIES, N_PROCEDURES = 40, 40, 8, 12, 30, 30
CHANGEABLE: dict[str, tuple[str, ...]] = {
    "product": ("price", "launch", "warranty", "name"),
    "office": ("opens", "closes", "staff"),
    "policy": ("value", "effective"),
}
"""The attributes the knowledge update may change, per entity kind."""

Date = tuple[int, int, int]
LINKS: dict[str, str] = {
    "manager": "person", "boss": "person", "head": "person", "approver": "person",
    "office": "office", "policy": "policy", "bundle": "product",
}
"""Attributes whose value is the index of an entity of another table (answered by its name)."""


class NameMaker:
    """Invented words from :data:`SYLLABLES`, each unique (case-insensitively) in one world."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = {w.lower() for w in ORG.split()}

    def _fresh(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            text = make()
            if 4 <= len(text) <= 12 and text.lower() not in self.used:
                self.used.add(text.lower())
                return text
        raise RuntimeError("kb-qa: ran out of invented names")

    def word(self, syllables: tuple[int, ...] = (2, 3), suffix: str = "") -> str:
        rng = self.rng
        return self._fresh(
            lambda: ("".join(rng.sample(SYLLABLES, rng.choice(syllables))) + suffix).title()
        )

    def person(self) -> str:
        return f"{self.word((2,))} {self.word()}"

    def city(self) -> str:
        return self.word((2,), self.rng.choice(CITY_SUFFIXES))

    def code(self) -> str:
        rng = self.rng
        return self._fresh(
            lambda: "".join(rng.choices("BCDFGHKLMNPRSTVWXZ", k=2)) + f"-{rng.randint(100, 999)}"
        )


@dataclass(frozen=True)
class Entity:
    """One row of a world table: a product, person, office, policy or procedure."""

    kind: str
    pid: str
    """The id of the passage describing this entity."""
    name: str
    """Product or person name, office city, policy code or procedure title."""
    facts: dict[str, Any]
    """Raw attribute values; the :data:`LINKS` attributes hold indices into other tables."""
    template: int
    """Which passage template renders this entity."""
    former: str = ""
    """The previous name, set when the knowledge update renamed the product."""


@dataclass(frozen=True)
class World:
    tables: dict[str, tuple[Entity, ...]]
    """Entities by kind: product, person, office, policy, procedure (passage order)."""
    unused_titles: tuple[str, ...]
    """Procedure titles no passage describes (for unanswerable questions)."""

    def entities(self, kind: str) -> tuple[Entity, ...]:
        return self.tables[kind]


def article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def format_date(date: Date) -> str:
    year, month, day = date
    return f"{day} {MONTHS[month - 1]} {year}"


def random_date(rng: random.Random, first: int = 2012, last: int = 2024) -> Date:
    return (rng.randint(first, last), rng.randint(1, 12), rng.randint(1, 28))


def build_world(rng: random.Random, names: NameMaker) -> World:
    """Draw every entity table (version 1 of the documents) from ``rng``."""
    systems = [names.word((2,)) for _ in range(3)]
    cities = [names.city() for _ in range(N_OFFICES)]
    groups = ["manager"] * N_MANAGERS + ["head"] * N_OFFICES + ["other"] * N_OTHERS
    rng.shuffle(groups)
    heads = [i for i, g in enumerate(groups) if g == "head"]
    managers = [i for i, g in enumerate(groups) if g == "manager"]
    rng.shuffle(managers)
    roles = {"manager": MANAGER_ROLES, "head": HEAD_ROLES, "other": OTHER_ROLES}
    ids = (f"p{i:03d}" for i in range(1, 1000))

    def table(kind: str, rows: list[tuple[str, dict[str, Any]]]) -> tuple[Entity, ...]:
        return tuple(Entity(kind, next(ids), n, f, rng.randrange(3)) for n, f in rows)

    products = table("product", [(names.word(), {
        "category": rng.choice(CATEGORIES), "price": rng.randint(40, 990),
        "launch": random_date(rng), "warranty": rng.choice(WARRANTY_MONTHS),
        "manager": managers[i], "bundle": rng.choice([j for j in range(N_PRODUCTS) if j != i]),
    }) for i in range(N_PRODUCTS)])
    office_of = [heads.index(i) if g == "head" else rng.randrange(N_OFFICES)
                 for i, g in enumerate(groups)]
    people = table("person", [(names.person(), {
        "role": rng.choice(roles[g]), "office": office_of[i], "year": rng.randint(2004, 2023),
        "boss": rng.choice([h for h in heads if h != i]) if g == "head" else heads[office_of[i]],
    }) for i, g in enumerate(groups)])
    offices = table("office", [(cities[k], {
        "opened": rng.randint(1995, 2020), "opens": rng.choice(OPENING_TIMES),
        "closes": rng.choice(CLOSING_TIMES), "staff": rng.randint(15, 480), "head": heads[k],
    }) for k in range(N_OFFICES)])
    pairs = rng.sample([(t, d) for t in range(len(POLICY_TOPICS)) for d in DIVISIONS], N_POLICIES)
    policies = table("policy", [(names.code(), {
        "topic": topic, "division": division, "value": rng.randint(*POLICY_TOPICS[topic][2:]),
        "effective": random_date(rng), "approver": rng.randrange(len(people)),
    }) for topic, division in pairs])
    titles = rng.sample(PROCEDURE_TITLES, len(PROCEDURE_TITLES))
    procedures = table("procedure", [(title, {
        "steps": tuple(s.format(*systems) for s in rng.sample(STEPS, rng.randint(3, 5))),
        "policy": rng.randrange(N_POLICIES),
    }) for title in titles[:N_PROCEDURES]])
    tables = {"product": products, "person": people, "office": offices, "policy": policies,
              "procedure": procedures}
    return World(tables, tuple(titles[N_PROCEDURES:]))


def answer(world: World, kind: str, index: int, attr: str) -> str:
    """The short answer text of one attribute of one entity."""
    entity = world.tables[kind][index]
    if attr == "name":
        return entity.name
    if attr in ("first", "last"):
        return entity.facts["steps"][0 if attr == "first" else -1]
    value = entity.facts[attr]
    if attr in LINKS:
        return world.tables[LINKS[attr]][value].name
    if attr in ("launch", "effective"):
        return format_date(value)
    if attr == "price":
        return f"${value}"
    if attr == "warranty":
        return f"{value} months"
    if attr == "value":
        return POLICY_TOPICS[entity.facts["topic"]][1].format(value)
    return str(value)


def fields(world: World, kind: str, index: int) -> dict[str, str]:
    """The template fields naming one entity (``name``, ``city``, ``code`` or ``title``)."""
    entity = world.tables[kind][index]
    key = {"office": "city", "policy": "code", "procedure": "title"}.get(kind, "name")
    out = {"org": ORG, key: entity.name}
    if kind == "policy":
        out.update(noun=POLICY_TOPICS[entity.facts["topic"]][0], division=entity.facts["division"])
    return out


PRODUCT_TEXTS = (
    "{first} is {a_category} from {org}, launched on {launch}. It sells for {price} and comes "
    "with a warranty of {warranty}. The product is managed by {manager} and is often bundled "
    "with {bundle}.",
    "{first}, {a_category}, went on sale on {launch}. Its list price is {price}, and every unit "
    "is covered by a warranty of {warranty}. {manager} manages {name}; customers often pair it "
    "with {bundle}.",
    "{org} launched {first}, {a_category}, on {launch}. {name} costs {price} and carries a "
    "warranty of {warranty}. Its product manager is {manager}, and sales staff recommend "
    "{bundle} as an add-on.",
)
PERSON_TEXTS = (
    "{name} joined {org} in {year} and works as {a_role} at the {office} office. {given} "
    "reports to {boss}.",
    "{name} is {a_role} based at the {office} office. {given} has been with {org} since {year} "
    "and reports to {boss}.",
    "Based at the {office} office, {name} has worked for {org} since {year}. {given} is "
    "{a_role} and reports directly to {boss}.",
)
OFFICE_TEXTS = (
    "The {org} office in {city} opened in {opened}. It is open from {opens} to {closes} on "
    "weekdays and has {staff} staff. The office is led by {head}.",
    "{city} is home to one of {org}'s offices, established in {opened} and led by {head}. Its "
    "{staff} staff keep the doors open from {opens} until {closes}.",
    "Led by {head}, the {city} office of {org} employs {staff} staff. It opens at {opens}, "
    "closes at {closes} and has been operating since {opened}.",
)
POLICY_TEXTS = (
    "Policy {code} sets the {noun} for the {division} division at {value}. It took effect on "
    "{effective} and was approved by {approver}.",
    "Under policy {code}, which applies to the {division} division, the {noun} is {value}. "
    "{approver} approved the policy, and it has applied since {effective}.",
    "{division} division staff follow policy {code}: the {noun} is {value}. The policy was "
    "approved by {approver} and came into force on {effective}.",
)
PASSAGE_TEXTS = {
    "product": PRODUCT_TEXTS, "person": PERSON_TEXTS, "office": OFFICE_TEXTS,
    "policy": POLICY_TEXTS,
}


def _procedure_text(world: World, procedure: Entity) -> str:
    steps = procedure.facts["steps"]
    title, code = procedure.name, world.tables["policy"][procedure.facts["policy"]].name
    if procedure.template == 0:
        middle = "".join(f" Next, they {s}." for s in steps[1:-1])
        return (f"When {title}, staff first {steps[0]}.{middle} Finally, they {steps[-1]}. "
                f"This procedure follows policy {code}.")
    if procedure.template == 1:
        numbered = " ".join(f"Step {i}: {s[0].upper()}{s[1:]}." for i, s in enumerate(steps, 1))
        return f"The procedure for {title} follows policy {code}. {numbered}"
    middle = "".join(f", then {s}" for s in steps[1:-1])
    return (f"Policy {code} governs {title}. The first step is to {steps[0]}{middle}, and the "
            f"last step is to {steps[-1]}.")


def render(world: World) -> list[tuple[str, str, str]]:
    """``(passage id, title, text)`` of every document, rendered from the tables."""
    out = []
    for kind, table in world.tables.items():
        for index, entity in enumerate(table):
            first = f"{entity.name} (formerly {entity.former})" if entity.former else entity.name
            values = {attr: answer(world, kind, index, attr) for attr in entity.facts}
            values.update(fields(world, kind, index), first=first, given=first.split()[0])
            for attr in ("category", "role"):
                values[f"a_{attr}"] = article(values.get(attr, "-"))
            title = {
                "office": f"{entity.name} office",
                "policy": f"Policy {entity.name}: {values.get('noun')} ({values.get('division')})",
                "procedure": entity.name[0].upper() + entity.name[1:],
            }.get(kind, first)
            if kind == "procedure":
                text = _procedure_text(world, entity)
            else:
                text = PASSAGE_TEXTS[kind][entity.template].format(**values)
            out.append((entity.pid, title, text))
    return out


def changeable_facts(world: World) -> list[tuple[str, int, str]]:
    """``(kind, index, attribute)`` of every fact the knowledge update may change."""
    return [
        (kind, index, attr)
        for kind, attrs in CHANGEABLE.items()
        for index in range(len(world.tables[kind]))
        for attr in attrs
    ]


def _new_value(rng: random.Random, names: NameMaker, entity: Entity, attr: str) -> Any:
    """A different value for one attribute, close to the old one where that makes sense."""
    if attr == "name":
        return names.word()
    old = entity.facts[attr]
    if attr == "price":
        options: list[Any] = list(range(max(10, round(old * 0.6)), min(999, round(old * 1.4))))
    elif attr in ("launch", "effective"):
        options = [random_date(rng, old[0], old[0] + 2) for _ in range(5)]
    elif attr == "staff":
        options = list(range(max(10, old - 60), old + 61))
    elif attr == "value":
        options = list(range(*POLICY_TOPICS[entity.facts["topic"]][2:]))
    else:
        options = list({"warranty": WARRANTY_MONTHS, "opens": OPENING_TIMES,
                        "closes": CLOSING_TIMES}[attr])
    return rng.choice([o for o in options if o != old])


def update_world(
    world: World, rng: random.Random, names: NameMaker, fraction: float
) -> tuple[World, list[tuple[str, int, str]]]:
    """Version 2 of the tables: ``round(fraction * n)`` of the ``n`` changeable facts changed.

    Renamed products keep their old name in ``former`` (rendered "New (formerly Old)").
    Returns the new world and the changed ``(kind, index, attribute)`` facts, in table order.
    """
    facts = changeable_facts(world)
    changed = sorted(rng.sample(facts, round(fraction * len(facts))), key=facts.index)
    tables = {kind: list(table) for kind, table in world.tables.items()}
    for kind, index, attr in changed:
        entity = tables[kind][index]
        value = _new_value(rng, names, entity, attr)
        if attr == "name":
            tables[kind][index] = replace(entity, name=value, former=entity.name)
        else:
            tables[kind][index] = replace(entity, facts={**entity.facts, attr: value})
    return replace(world, tables={k: tuple(t) for k, t in tables.items()}), changed
