"""``addresses``: normalise a messy US-style postal address to one canonical line (open-ended).

Each item is one address (invented street and city names, real state codes) written in a messy
input layout, e.g. ``12 baker st apt 4 springfield illinois 62704``; the reference is the
canonical line ``12 Baker Street, Apt 4, Springfield, IL 62704``. The canonical rules are fixed
and stated in the instruction: street types and directions in full (the USPS Publication 28
abbreviations, expanded), the unit as ``Apt N`` or ``Suite N``, title case, the state's
two-letter USPS code followed by the ZIP code, commas as shown. Replies are free text, so
partial credit is natural: a reply with the street right and the state wrong is a near miss
for the generic text metrics (token F1, ROUGE-L, chrF), and wrong for exact match.

Why it is built this way:

* **Input templates.** Messy inputs come from the layouts of :data:`bank.TEMPLATES`: lower,
  upper or mixed case, abbreviations (``St``, ``St.``) or full words, ``#4`` / ``unit 4`` /
  ``apartment 4`` / ``ste 4``, the state's name or code, missing commas, line breaks, tabs,
  ZIP first, labelled fields (``street: ... | city: ...``), extra spaces. A template fixes the
  layout and some styles; the rest is drawn per item.
* **Held-out templates**, as the held-out phrasings of the ``sentiment`` task: every third
  template is eval-only. Train and validation use only the other templates; eval holds half
  its items in those seen templates (new addresses, ``meta["kind"] == "seen-template"``)
  and half in held-out ones (``"held-out-template"``), so the accuracy suite's per-kind
  breakdown separates learning the rules from memorising the layouts. ``meta["template"]``
  names the template.
* **Clean splits.** Every canonical address and every normalised prompt occurs once across
  all splits, and no input is already canonical. Templates are used in shuffled rounds and
  eval alternates the two kinds, so any prefix (``TaskData.subset``) covers every template
  and both kinds about evenly.

Everything is drawn from ``random.Random(seed)``: the same seed always gives the same data.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from harness.tasks.addresses import bank
from harness.tasks.addresses.bank import Template
from harness.tasks.base import Example, Message, Task, TaskData, normalize_text

SYSTEM = "You clean up postal addresses."
CANONICAL_EXAMPLE = "12 Baker Street, Apt 4, Springfield, IL 62704"
_EXPANSIONS = ", ".join(
    f"{short} {full}" for table in (bank.STREET_TYPES, bank.DIRECTIONS) for short, full in table
)
INSTRUCTION = (
    f'Write the address on one line like "{CANONICAL_EXAMPLE}": title case; street types and '
    f"directions spelt out ({_EXPANSIONS}); apt, apartment, unit or # as Apt N; ste or suite as "
    "Suite N; no unit if none; the state as its two-letter code. Reply with the address only."
)
SPLIT_SIZES: dict[str, int] = {"train": 2400, "validation": 200, "eval": 600}
KINDS: tuple[str, str] = ("seen-template", "held-out-template")
UNIT_SHARE = 0.4
"""Share of addresses with a unit; of those, :data:`SUITE_SHARE` are suites."""
SUITE_SHARE = 0.3
DIRECTION_SHARE = 0.25
"""Share of streets with a direction before the name ("North Alderwick Road")."""
CITY_LEAD_SHARE = 0.2
"""Share of cities with a lead word ("Port Marrowdale")."""
MAX_ATTEMPTS = 1_000
"""Draws allowed per item before generation fails (repeated addresses are redrawn)."""

TEMPLATE_SIDES: dict[str, tuple[Template, ...]] = {
    "train": tuple(t for i, t in enumerate(bank.TEMPLATES) if i % 3 != 2),
    "eval": tuple(t for i, t in enumerate(bank.TEMPLATES) if i % 3 == 2),
}
"""Templates at positions 2, 5, 8, ... are eval-only (``held-out-template``)."""

_UNIT_SEGMENT = re.compile(r"\[([^\]]*)\]")
_SPACE_RUN = re.compile(r" +")
_SEPARATOR = re.compile(r"([,;]) ")


@dataclass(frozen=True)
class Address:
    """One address, in the parts the canonical line and the messy inputs are written from."""

    number: str
    direction: tuple[str, str] | None
    name: str
    street_type: tuple[str, str]
    unit: tuple[str, str] | None
    """``("Apt" | "Suite", number)`` or ``None``."""
    city: str
    state: tuple[str, str]
    zip: str

    def canonical(self) -> str:
        """The reference line: ``12 North Baker Street, Apt 4, Springfield, IL 62704``."""
        direction = f"{self.direction[1]} " if self.direction else ""
        parts = [f"{self.number} {direction}{self.name} {self.street_type[1]}"]
        if self.unit:
            parts.append(" ".join(self.unit))
        parts += [self.city, f"{self.state[0]} {self.zip}"]
        return ", ".join(parts)


def draw_address(rng: random.Random) -> Address:
    """A random address; house numbers have 1 to 4 digits, equally often."""
    digits = rng.randint(1, 4)
    number = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
    unit = None
    if rng.random() < UNIT_SHARE:
        unit = ("Suite" if rng.random() < SUITE_SHARE else "Apt", str(rng.randint(1, 999)))
    city = rng.choice(bank.CITY_STEMS) + rng.choice(bank.CITY_ENDINGS)
    if rng.random() < CITY_LEAD_SHARE:
        city = f"{rng.choice(bank.CITY_LEADS)} {city}"
    return Address(
        number=number,
        direction=rng.choice(bank.DIRECTIONS) if rng.random() < DIRECTION_SHARE else None,
        name=rng.choice(bank.STREET_NAMES),
        street_type=rng.choice(bank.STREET_TYPES),
        unit=unit,
        city=city,
        state=rng.choice(bank.STATES),
        zip=f"{rng.randrange(100_000):05d}",
    )


def _style(value: str, options: tuple[str, ...], rng: random.Random) -> str:
    return rng.choice(options) if value == "any" else value


def _case(text: str, case: str) -> str:
    return {"lower": text.lower(), "upper": text.upper()}.get(case, text)


def render(address: Address, template: Template, rng: random.Random) -> str:
    """``address`` written in ``template``'s layout, with its styles (drawn where ``any``)."""
    street_style = _style(template.street_type, ("abbr", "dotted", "full"), rng)
    short, full = address.street_type
    street_type = {"abbr": short, "dotted": f"{short}.", "full": full}[street_style]
    direction = ""
    if address.direction:
        short, full = address.direction
        direction = rng.choice((short, f"{short}.", full)) + " "
    unit = ""
    if address.unit:
        kind, number = address.unit
        marker = rng.choice(bank.APT_MARKERS if kind == "Apt" else bank.SUITE_MARKERS)
        unit = f"{marker}{rng.choice(('', ' '))}{number}" if marker == "#" else f"{marker} {number}"
    code, name = address.state
    pieces = {
        "number": address.number,
        "street": f"{direction}{address.name} {street_type}",
        "unit": unit,
        "city": address.city,
        "state": code if _style(template.state, ("code", "name"), rng) == "code" else name,
        "zip": address.zip,
    }
    case = _style(template.case, ("natural", "lower", "upper", "mixed"), rng)
    for key, value in pieces.items():
        piece_case = rng.choice(("natural", "lower", "upper")) if case == "mixed" else case
        pieces[key] = _case(value, piece_case)
    layout = _UNIT_SEGMENT.sub(lambda m: m.group(1) if address.unit else "", template.layout)
    text = layout.format(**pieces)
    if template.messy_spacing:
        text = _SEPARATOR.sub(lambda m: rng.choice(("{0}", " {0}", " {0} ", "{0}  ")).format(
            m.group(1)), text)
        text = _SPACE_RUN.sub(lambda m: " " * rng.choice((1, 1, 2, 3)), text)
    return text


def make_messages(text: str) -> tuple[Message, ...]:
    """The prompt conversation for one messy address."""
    return (
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{INSTRUCTION}\n\nAddress: {text}"},
    )


def template_rounds(templates: tuple[Template, ...], n: int, rng: random.Random) -> list[Template]:
    """``n`` templates in shuffled rounds of all of them: every prefix is about even."""
    out: list[Template] = []
    while len(out) < n:
        round_ = list(templates)
        rng.shuffle(round_)
        out += round_
    return out[:n]


def split_plan(split: str, size: int, rng: random.Random) -> list[tuple[str, Template]]:
    """``(kind, template)`` for every item of ``split``, in order.

    Train and validation use only train-side templates; eval alternates seen and held-out
    templates (pair order random) so every prefix holds both kinds in about equal numbers.
    """
    seen = [(KINDS[0], t) for t in template_rounds(TEMPLATE_SIDES["train"], size, rng)]
    if split != "eval":
        return seen
    held = size // 2
    held_out = [(KINDS[1], t) for t in template_rounds(TEMPLATE_SIDES["eval"], held, rng)]
    plan: list[tuple[str, Template]] = []
    for pair in zip(seen[: size - held], held_out, strict=True):
        plan += pair if rng.random() < 0.5 else pair[::-1]
    return plan


class AddressesTask(Task):
    """Normalise messy postal addresses to one canonical line; eval holds out input layouts."""

    name: ClassVar[str] = "addresses"
    description: ClassVar[str] = (
        "normalise messy US-style postal addresses to one canonical line (open-ended); half of "
        "eval uses input layouts held out from train"
    )
    max_new_tokens: ClassVar[int] = 48

    def load(self, seed: int) -> TaskData:
        """Generate train / validation / eval deterministically from ``seed``."""
        rng = random.Random(seed)
        answers: set[str] = set()
        prompts: set[str] = set()
        splits = {
            split: [
                self._example(f"addresses-{split}-{i:05d}", kind, template, rng, answers, prompts)
                for i, (kind, template) in enumerate(split_plan(split, size, rng))
            ]
            for split, size in SPLIT_SIZES.items()
        }
        return TaskData(name=self.name, **splits)

    def _example(
        self, ident: str, kind: str, template: Template, rng: random.Random,
        answers: set[str], prompts: set[str],
    ) -> Example:
        """One item in ``template`` whose address and prompt no earlier item has."""
        for _ in range(MAX_ATTEMPTS):
            address = draw_address(rng)
            answer = address.canonical()
            text = render(address, template, rng)
            key = normalize_text(text)
            if answer not in answers and key not in prompts and text != answer:
                break
        else:
            raise RuntimeError(
                f"addresses: could not draw a new address for {ident} ({template.id}) after "
                f"{MAX_ATTEMPTS} attempts; the word banks in harness/tasks/addresses/bank.py "
                "are too small for the split sizes"
            )
        answers.add(answer)
        prompts.add(key)
        return Example(
            id=ident, messages=make_messages(text), answer=answer,
            meta={"kind": kind, "template": template.id},
        )
