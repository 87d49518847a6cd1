"""Deterministic synthetic stories for benchmarks: N of them, generated lazily from their index.

Only a story's kind and publication instant are computed for all N up front (integer hashing, no
text), which is what listings need to order them; its title, body and images are generated when a
page asks, from ``random.Random`` seeded with (seed, index), and kept in a small LRU cache.
"""

from __future__ import annotations

import random
from calendar import timegm
from collections import OrderedDict
from datetime import date, timedelta
from typing import Any

from samplesite.dates import ap_date

SYN_BASE_ID = 5_000_000
SYN_MEDIA_BASE = 2_100_000_000
MEDIA_PER_STORY = 4
START = date(2023, 1, 2)
SPAN_DAYS = 1083  # to mid-December 2025
_START_TS = timegm(START.timetuple()) + 5 * 3600  # US Eastern, fixed -5 h (see content.story_timestamp)
_MASK = (1 << 64) - 1
_KIND_TABLE = (["news-story"] * 40 + ["feature-story"] * 15 + ["release"] * 18 + ["transcript"] * 8
               + ["contract"] * 14 + ["speech"] * 3 + ["advisory"] * 2)
_CACHE_SIZE = 4096

FIRST = ["Jordan", "Maria", "James", "Aisha", "Daniel", "Keiko", "Marcus", "Elena", "Tyrone", "Sofia", "Ryan",
         "Priya", "Caleb", "Hannah", "Luis", "Grace", "Andre", "Mei", "Noah", "Renée", "Tomás", "Olivia"]
LAST = ["Alvarez", "Bennett", "Chen", "Dubois", "Ellis", "Fitzgerald", "Garcia", "Hughes", "Ibarra", "Johnson",
        "Kowalski", "Lindqvist", "Martinez", "Nguyen", "Okafor", "Patel", "Quinn", "Rossi", "Sato", "Thompson"]
REPORTERS = ["Jim Garamone", "David Vergun", "C. Todd Lopez", "Terri Moon Cronk", "Joseph Clark", "Matthew Olay",
             "Katie Lange"]
SERVICES = {  # name -> (VIRIN service code, ranks)
    "Army": ("A", ["Pvt.", "Spc.", "Sgt.", "Staff Sgt.", "Capt.", "Maj.", "Lt. Col.", "Col."]),
    "Navy": ("N", ["Seaman", "Petty Officer 2nd Class", "Petty Officer 1st Class", "Lt.", "Cmdr.", "Capt."]),
    "Air Force": ("F", ["Airman 1st Class", "Senior Airman", "Staff Sgt.", "Tech. Sgt.", "Capt.", "Maj.", "Col."]),
    "Marine Corps": ("M", ["Lance Cpl.", "Cpl.", "Sgt.", "Gunnery Sgt.", "Capt.", "Maj.", "Lt. Col."]),
    "Space Force": ("X", ["Spc. 4", "Sgt.", "Tech. Sgt.", "Capt.", "Maj.", "Lt. Col."]),
    "National Guard": ("Z", ["Sgt.", "Staff Sgt.", "Capt.", "Maj."]),
}
PLACES = ["Fort Bragg, N.C.", "Joint Base Lewis-McChord, Wash.", "Naval Station Norfolk, Va.", "Camp Pendleton, Calif.",
          "Ramstein Air Base, Germany", "Yokota Air Base, Japan", "Vandenberg Space Force Base, Calif.",
          "Fort Cavazos, Texas", "Joint Base Pearl Harbor-Hickam, Hawaii", "Grafenwöhr Training Area, Germany",
          "Camp Humphreys, South Korea", "Naval Air Station Pensacola, Fla."]
TOPICS = {
    "training": ("exercise", ["training", "readiness", "exercises"],
                 ["Soldiers move through a field during an exercise.", "Troops rehearse a river crossing."]),
    "technology": ("new system", ["technology", "innovation", "modernization"],
                   ["An engineer inspects a drone on a workbench.", "A service member tests a new radio."]),
    "partnerships": ("partnership", ["allies", "partnerships", "international"],
                     ["Officers from several nations shake hands.",
                      "Service members from two countries talk at a table."]),
    "families": ("family program", ["military families", "quality of life", "personnel"],
                 ["A family walks through new base housing.", "Children wave flags at a homecoming."]),
    "space": ("satellite program", ["space", "Space Force", "satellites"],
              ["A rocket rises from a launch pad.", "Guardians monitor screens in an operations floor."]),
    "readiness": ("maintenance effort", ["readiness", "logistics", "sustainment"],
                  ["Maintainers work on an aircraft engine.", "Sailors load supplies onto a ship."]),
}
VERBS = ["Expands", "Tests", "Launches", "Completes", "Strengthens", "Begins", "Marks Milestone in", "Reviews"]
THINGS = ["Night-Vision Upgrade", "Cold-Weather Training", "Allied Air Defense Drill", "Shipyard Apprentice Program",
          "Satellite Ground Network", "Spare Parts Pipeline", "Childcare Expansion", "Cyber Range",
          "Medical Evacuation Drill", "Drone Swarm Trial", "Fuel Logistics Exercise", "Housing Repairs"]
COUNTRIES = ["Japan", "Poland", "Australia", "the Philippines", "Norway", "Kenya", "Brazil", "Côte d'Ivoire",
             "South Korea", "Romania", "Türkiye", "India"]
BRANCH_HEADINGS = ["ARMY", "NAVY", "AIR FORCE", "MARINE CORPS", "SPACE FORCE", "DEFENSE LOGISTICS AGENCY"]
COMPANIES = ["Ridgeway Defense Systems", "Copperline Aerospace", "Harbor Point Shipbuilding", "Sentinel Analytics",
             "Lakeshore Textiles", "Ironwood Munitions", "Bluewater Logistics", "Summit Avionics"]


def _mix(seed: int, i: int) -> int:
    """splitmix64: a cheap, well-spread hash so kinds and dates need no RNG per story."""
    x = (i * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + 1) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class Synthetic:
    """``n`` generated stories with ids ``SYN_BASE_ID + i`` and up to 3 images each."""

    def __init__(self, n: int, seed: int = 1) -> None:
        self.n, self.seed = n, seed
        self.last_id = SYN_BASE_ID + n - 1
        self._cache: OrderedDict[int, tuple[dict[str, Any], dict[int, dict[str, Any]]]] = OrderedDict()
        self._keys: list[tuple[float, int, str]] | None = None

    def ids(self) -> range:
        return range(SYN_BASE_ID, SYN_BASE_ID + self.n)

    def _slot(self, i: int) -> tuple[str, int, int]:
        """(kind, day offset, seconds after midnight) of story ``i``: the only per-story work up front."""
        h = _mix(self.seed, i)
        day = (i * SPAN_DAYS) // max(1, self.n)
        return _KIND_TABLE[h % len(_KIND_TABLE)], day, 8 * 3600 + (h >> 8) % (10 * 3600)

    def order_keys(self) -> list[tuple[float, int, str]]:
        if self._keys is None:
            keys = []
            for i in range(self.n):
                kind, day, secs = self._slot(i)
                keys.append((float(_START_TS + day * 86400 + secs), SYN_BASE_ID + i, kind))
            self._keys = keys
        return self._keys

    def story(self, story_id: int) -> dict[str, Any] | None:
        i = story_id - SYN_BASE_ID
        return self._generate(i)[0] if 0 <= i < self.n else None

    def image(self, media_id: int) -> dict[str, Any] | None:
        i = (media_id - SYN_MEDIA_BASE) // MEDIA_PER_STORY
        if not 0 <= i < self.n:
            return None
        return self._generate(i)[1].get(media_id)

    def _generate(self, i: int) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit
        kind, day, secs = self._slot(i)
        rng = random.Random(self.seed * 1_000_003 + i)
        sid = SYN_BASE_ID + i
        pool = list(range(max(SYN_BASE_ID, sid - 300), sid))
        media = [SYN_MEDIA_BASE + i * MEDIA_PER_STORY + k for k in range(3)]
        clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        story, images = make_story(rng, sid, kind, (START + timedelta(days=day)).isoformat(), clock, pool, media)
        entry = (story, {img["media_id"]: img for img in images})
        self._cache[i] = entry
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return entry


# --- text ---------------------------------------------------------------------------------------
def make_story(rng: random.Random, sid: int, kind: str, day: str, clock: str, related_pool: list[int],
               media_ids: list[int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One plausible story of ``kind`` in the data file's shape, plus its images."""
    topic = rng.choice(list(TOPICS))
    service = rng.choice(list(SERVICES))
    title, subtitle, byline = _headline(rng, kind, service, day)
    if kind == "contract":
        body, images = _contract_body(rng), []
    else:
        images = [_image(rng, mid, day, topic, service) for mid in media_ids[: rng.choice([0, 1, 1, 2, 3])]]
        body = _body(rng, kind, topic, service, images)
    story = {
        "id": sid, "kind": kind, "title": title, "subtitle": subtitle,
        "slug": None if kind == "contract" else _slug(title),
        "published": day, "time": clock, "byline": byline,
        "dateline": f"{rng.choice(PLACES).upper()} —" if kind == "feature-story" and rng.random() < 0.3 else None,
        "tags": rng.sample(TOPICS[topic][1], rng.randint(1, 3)) + [service],
        "related": rng.sample(related_pool, min(len(related_pool), rng.randint(0, 3))),
        "body": body,
    }
    return story, images


def _slug(title: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in title.lower().replace("'", ""))
    return "-".join(p for p in out.split("-") if p)[:80].rstrip("-")


def _person(rng: random.Random, service: str) -> str:
    rank = rng.choice(SERVICES[service][1])
    label = service if service != "National Guard" else "Army"
    return f"{label} {rank} {rng.choice(FIRST)} {rng.choice(LAST)}"


def _headline(rng: random.Random, kind: str, service: str, day: str) -> tuple[str, str | None, str | None]:
    """(title, subtitle, byline) in the style of each kind."""
    reporter = f"By {rng.choice(REPORTERS)} , DOD News"
    if kind == "news-story":
        return f"{service} {rng.choice(VERBS)} {rng.choice(THINGS)}", None, reporter
    if kind == "feature-story":
        person = _person(rng, service)
        return f"Face of Defense: {person.split(' ', 1)[1]} Leads {rng.choice(THINGS)}", None, reporter
    if kind == "release":
        country = rng.choice(COUNTRIES)
        return rng.choice([f"Readout of Deputy Secretary's Meeting With Counterpart From {country}",
                           f"Department of War Announces {rng.choice(THINGS)}"]), None, None
    if kind == "transcript":
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        return "Deputy Pentagon Press Secretary Holds a Press Briefing", f"Deputy Pentagon Press Secretary {name}", None
    if kind == "speech":
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        return (f"Remarks at the {rng.choice(THINGS)} Symposium",
                f"As Delivered by Assistant Secretary of War {name}", None)
    if kind == "advisory":
        return f"Media Advisory: Secretary to Host Counterpart From {rng.choice(COUNTRIES)}", None, None
    return f"Contracts for {ap_date(day)}", None, None


def _sentences(rng: random.Random, topic: str, service: str) -> list[str]:
    noun = TOPICS[topic][0]
    place = rng.choice(PLACES)
    person = _person(rng, service)
    return [
        f"The {noun} at {place}, brought together more than {rng.randint(2, 40) * 25} service members.",
        f"Officials said the {noun} is expected to expand to {rng.randint(2, 9)} more installations next year.",
        f"\"We built this from what our people told us they needed,\" said {person}.",
        f"The effort draws on lessons from exercises with partners in {rng.choice(COUNTRIES)}.",
        f"Planners at {place}, spent {rng.randint(3, 18)} months preparing the {noun}.",
        f"{person} said the {noun} has already cut waiting times by {rng.randint(10, 60)} percent.",
        "Results will be shared with the other services and with allied militaries.",
        f"Funding for the {noun} comes from the fiscal {2023 + rng.randint(0, 3)} budget.",
    ]


def _paragraph(rng: random.Random, topic: str, service: str) -> dict[str, Any]:
    text = " ".join(rng.sample(_sentences(rng, topic, service), rng.randint(1, 3)))
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    if rng.random() < 0.15:
        text += f' More information is on the <a href="https://www.war.gov/News/">{service} news page</a>.'
    return {"type": "p", "html": text}


def _body(rng: random.Random, kind: str, topic: str, service: str, images: list[dict]) -> list[dict[str, Any]]:
    body = [_paragraph(rng, topic, service) for _ in range(rng.randint(2, 6))]
    if kind == "feature-story" and rng.random() < 0.5:
        body.insert(len(body) // 2, {"type": "h2", "text": rng.choice(["Looking Ahead", "Lessons Learned",
                                                                       "A Family Tradition", "On the Ground"])})
    for k, img in enumerate(images):
        body.insert(min(len(body), 1 + 2 * k), {"type": "image", "media_id": img["media_id"]})
    return body


def _contract_body(rng: random.Random) -> list[dict[str, Any]]:
    body = []
    for heading in rng.sample(BRANCH_HEADINGS, rng.randint(1, 3)):
        body.append({"type": "p", "html": heading if rng.random() < 0.6 else f"<strong>{heading}</strong>"})
        for _ in range(rng.randint(1, 2)):
            amount = rng.randint(75, 9000) * 100_000 + rng.randint(0, 99_999)
            body.append({"type": "p", "html": (
                f"{rng.choice(COMPANIES)} Inc., {rng.choice(PLACES).split(',')[0]}, was awarded a ${amount:,} "
                f"firm-fixed-price contract for {rng.choice(THINGS).lower()} support. Work is expected to be "
                f"completed by {rng.choice(['March', 'June', 'September', 'December'])} {rng.randint(2026, 2030)}.")})
    return body


def _image(rng: random.Random, media_id: int, day: str, topic: str, service: str) -> dict[str, Any]:
    code = SERVICES[service][0] if rng.random() < 0.85 else "D"
    shot = date.fromisoformat(day) - timedelta(days=rng.randint(0, 6))
    originator = "D0439" if code == "D" else (chr(65 + rng.randint(0, 25)) + chr(65 + rng.randint(0, 25))
                                              + f"{rng.randint(100, 999)}")
    seq = f"{rng.randint(1, 9)}{rng.randint(0, 999):03d}" if rng.random() < 0.5 else f"{rng.randint(1, 999):03d}"
    suffix = rng.choice("MCAEFPY") if rng.random() < 0.25 else ""
    alt = rng.choice(TOPICS[topic][2])
    place = rng.choice(PLACES)
    mb = rng.random() < 0.7
    return {
        "media_id": media_id,
        "virin": f"{shot:%y%m%d}-{code}-{originator}-{seq}{suffix}",
        "ext": "JPG",
        "alt": alt,
        "title": rng.choice(["Ready to Go", "On the Line", "Team Effort", "Final Check", "New Capability"]),
        "caption": f"{alt[:-1]} at {place}, {ap_date(shot)}.",
        "credit": _person(rng, service) if rng.random() < 0.7 else f"{rng.choice(FIRST)} {rng.choice(LAST)}, {service}",
        "size": f"{rng.uniform(1, 6):.2f} MB" if mb else f"{rng.uniform(150, 999):.2f} KB",
        "uploaded": day,
    }
