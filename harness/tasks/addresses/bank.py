"""Word banks and input templates for the ``addresses`` task (data only; the generator is in
``task.py``).

Street and city names are invented (city names are compounds of :data:`CITY_STEMS` and
:data:`CITY_ENDINGS`, sometimes after a :data:`CITY_LEADS` word); state names and codes are the
50 US states with their USPS two-letter codes. Street-type and direction abbreviations follow
the USPS Publication 28 (Postal Addressing Standards) primary forms.

:data:`TEMPLATES` is ordered: ``task.py`` holds out every third template (positions 2, 5, 8,
...) for eval only, so the order below decides which input layouts a trained candidate never
sees.
"""

from __future__ import annotations

from dataclasses import dataclass

STREET_TYPES: tuple[tuple[str, str], ...] = (
    ("St", "Street"), ("Ave", "Avenue"), ("Rd", "Road"), ("Blvd", "Boulevard"),
    ("Dr", "Drive"), ("Ln", "Lane"), ("Ct", "Court"), ("Pl", "Place"), ("Ter", "Terrace"),
    ("Pkwy", "Parkway"), ("Cir", "Circle"), ("Hwy", "Highway"),
)
"""``(abbreviation, full word)`` of every street type."""

DIRECTIONS: tuple[tuple[str, str], ...] = (
    ("N", "North"), ("S", "South"), ("E", "East"), ("W", "West"),
)
"""``(abbreviation, full word)`` of the directions that may precede a street name."""

APT_MARKERS: tuple[str, ...] = ("Apt", "Apt.", "Apartment", "Unit", "#")
"""How a messy input may mark an apartment (canonical: ``Apt N``)."""
SUITE_MARKERS: tuple[str, ...] = ("Ste", "Ste.", "Suite")
"""How a messy input may mark a suite (canonical: ``Suite N``)."""

STATES: tuple[tuple[str, str], ...] = (
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"),
    ("CA", "California"), ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"),
    ("FL", "Florida"), ("GA", "Georgia"), ("HI", "Hawaii"), ("ID", "Idaho"),
    ("IL", "Illinois"), ("IN", "Indiana"), ("IA", "Iowa"), ("KS", "Kansas"),
    ("KY", "Kentucky"), ("LA", "Louisiana"), ("ME", "Maine"), ("MD", "Maryland"),
    ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"), ("MS", "Mississippi"),
    ("MO", "Missouri"), ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"),
    ("NH", "New Hampshire"), ("NJ", "New Jersey"), ("NM", "New Mexico"), ("NY", "New York"),
    ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"), ("OK", "Oklahoma"),
    ("OR", "Oregon"), ("PA", "Pennsylvania"), ("RI", "Rhode Island"),
    ("SC", "South Carolina"), ("SD", "South Dakota"), ("TN", "Tennessee"), ("TX", "Texas"),
    ("UT", "Utah"), ("VT", "Vermont"), ("VA", "Virginia"), ("WA", "Washington"),
    ("WV", "West Virginia"), ("WI", "Wisconsin"), ("WY", "Wyoming"),
)
"""``(USPS code, name)`` of the 50 states."""

STREET_NAMES: tuple[str, ...] = (
    "Alderwick", "Brambleton", "Calloway", "Dorran", "Emberly", "Fennick", "Garrowby",
    "Hollister", "Ingleby", "Jessamine", "Kilbride", "Larchmere", "Merriday", "Nollen",
    "Oakenshaw", "Pemberly", "Quillon", "Redfern", "Saltmarsh", "Tamsworth", "Underhill",
    "Varley", "Whitlow", "Yardley", "Zephyr", "Ashgrove", "Birchall", "Coppice", "Dunmore",
    "Elsworth", "Foxmere", "Gillam", "Heronsgate", "Ivybridge", "Juniper", "Kestrel",
    "Lindqvist", "Marlowe", "Netherby", "Orchard", "Pennywhistle", "Quarrington", "Rookwood",
    "Sorrel", "Thornbury", "Umberleigh", "Vellacott", "Wickham", "Yewtree", "Amberlane",
    "Old Quarry", "Silver Birch", "Copper Kettle", "Blue Heron", "Stone Mill", "Fox Hollow",
    "Lantern Hill", "Wren Meadow", "Cedar Bluff", "Bell Tower",
)
"""Street names: invented words and a few two-word names (title case is part of the test)."""

CITY_STEMS: tuple[str, ...] = (
    "Amber", "Bracken", "Corvel", "Dunmar", "Elder", "Farrow", "Gilder", "Harrow", "Ivel",
    "Kessel", "Lark", "Marrow", "Nettle", "Orrin", "Pellam", "Rowan", "Sable", "Thistle",
    "Umber", "Vesper", "Wren", "Yarrow",
)
CITY_ENDINGS: tuple[str, ...] = (
    "ford", "haven", "wick", "field", "brook", "ton", "dale", "mere", "crest", "bury",
    "stead", "ridge", "vale", "moor",
)
CITY_LEADS: tuple[str, ...] = ("Port", "Lake", "New", "Fair", "Glen")
"""A city is ``Stem + ending`` ("Marrowdale"), sometimes after a lead word ("Port Marrowdale")."""


@dataclass(frozen=True)
class Template:
    """One layout of a messy address.

    ``layout`` is a ``str.format`` string over the pieces ``number``, ``street``, ``unit``,
    ``city``, ``state`` and ``zip``; the part in square brackets holds the unit and is dropped
    for addresses without one. The other fields say how the pieces are written; ``"any"`` draws
    a style per item.
    """

    id: str
    layout: str
    case: str = "any"
    """``natural`` (title words, capital codes), ``lower``, ``upper``, ``mixed`` (each piece
    its own case) or ``any``."""
    street_type: str = "any"
    """``abbr`` ("St"), ``dotted`` ("St."), ``full`` ("Street") or ``any``."""
    state: str = "any"
    """``code`` ("IL"), ``name`` ("Illinois") or ``any``."""
    messy_spacing: bool = False
    """Double spaces and stray spaces around punctuation."""


TEMPLATES: tuple[Template, ...] = (
    Template("run-on-lower", "{number} {street}[ {unit}] {city} {state} {zip}", case="lower"),
    Template("upper-commas", "{number} {street}[, {unit}], {city}, {state} {zip}",
             case="upper", street_type="abbr"),
    Template("zip-first", "{zip} {city} {state}, {number} {street}[ {unit}]"),  # held out
    Template("full-words", "{number} {street}[ {unit}], {city}, {state} {zip}",
             case="natural", street_type="full", state="name"),
    Template("two-lines", "{number} {street}[ {unit}]\n{city}, {state} {zip}"),
    Template("labelled-pipes",  # held out
             "street: {number} {street} | [unit: {unit} | ]city: {city} | state: {state} | "
             "zip: {zip}", case="lower"),
    Template("extra-spaces", "{number} {street}[, {unit}], {city}, {state} {zip}",
             case="mixed", messy_spacing=True),
    Template("unit-first", "[{unit}, ]{number} {street}, {city} {state} {zip}"),
    Template("one-per-line", "{number} {street}\n[{unit}\n]{city}\n{state}\n{zip}"),  # held out
    Template("key-equals",
             "address={number} {street}[; unit={unit}]; city={city}; state={state}; zip={zip}",
             case="lower"),
    Template("slashes", "{number} {street}[ / {unit}] / {city} / {state} / {zip}", case="upper"),
    Template("sentence",  # held out
             "please deliver to {number} {street}[ {unit}] in {city}, {state}, zip code {zip}",
             case="lower"),
    Template("state-name-upper", "{number} {street}[ {unit}] {city} {state} {zip}",
             case="upper", state="name"),
    Template("city-line-first", "{city}, {state} {zip}\n{number} {street}[ {unit}]"),
    Template("semicolons-spaced",  # held out
             "{number} {street};[ {unit};] {city}; {state}; {zip}", case="upper",
             messy_spacing=True),
    Template("labelled-lines",
             "Street: {number} {street}\n[Unit: {unit}\n]City: {city}\nState: {state}\n"
             "ZIP: {zip}", case="natural"),
    Template("tabs", "{number} {street}\t[{unit}\t]{city}\t{state}\t{zip}", case="mixed"),
    Template("unit-last", "{number} {street}, {city}, {state} {zip}[, {unit}]"),  # held out
)
"""Input layouts; positions 2, 5, 8, 11, 14, 17 (marked "held out") are eval-only."""
