"""Deterministic synthetic stories for benchmarks: N of them, generated lazily from their index.

Only a story's kind and publication instant are computed for all N up front (integer hashing, no
text), which is what listings need to order them; its title, body and images are generated when a
page asks, from ``random.Random`` seeded with (seed, index), and kept in a small LRU cache.

Text is written so that full-text search behaves as on real news text: besides templated sentences
(people, places, figures), every paragraph has sentences drawn from a Zipf-like vocabulary
(:class:`Vocabulary`): a few hundred English and defense words and phrases at the top of the
distribution, then 50,000 pseudo-words generated from a fixed seed. A word's weight is
``1 / (rank + 1.5)``, so "the" is about 4 % of the drawn words, the defense words match a few to
tens of percent of the stories, and most pseudo-words only a few dozen stories in 100,000 (the
rare words an analyst searches for). Non-contract stories have 0-6 images, 3.5 on average, so the
whole mix (contracts have none) averages about 3 images per story.
"""

from __future__ import annotations

import random
from calendar import timegm
from collections import OrderedDict
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from typing import Any

from samplesite.dates import ap_date

SYN_BASE_ID = 5_000_000
SYN_MEDIA_BASE = 2_100_000_000
MEDIA_PER_STORY = 8  # media ids reserved per story (at most MAX_IMAGES used)
MAX_IMAGES = 6
# Images per non-contract story, 0..6: mean 3.52, so with 14 % contracts (none) about 3.0 per story.
IMAGE_COUNT_WEIGHTS = (1, 2, 3, 4, 4, 4, 3)
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
PARAGRAPHS = {"news-story": (3, 7), "feature-story": (4, 8), "release": (2, 5), "transcript": (6, 12),
              "speech": (5, 10), "advisory": (1, 3)}  # paragraphs per story, by kind
BRANCH_HEADINGS = ["ARMY", "NAVY", "AIR FORCE", "MARINE CORPS", "SPACE FORCE", "DEFENSE LOGISTICS AGENCY"]
COMPANIES = ["Ridgeway Defense Systems", "Copperline Aerospace", "Harbor Point Shipbuilding", "Sentinel Analytics",
             "Lakeshore Textiles", "Ironwood Munitions", "Bluewater Logistics", "Summit Avionics"]


# --- vocabulary ----------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return text.split()


# Most frequent first, roughly in the order of news English: function words, then the words and
# set phrases of defense news. Pseudo-words follow them in the Zipf ranking (see Vocabulary).
FUNCTION_WORDS = _words("""
the of and to in a for on that is said with by as at from was be are will it has have its an this were
their which not but also who more or been they we our than after about other new two over one all would
can had them during into three year some most when there could his her first these such through while
those each under between before both since out up how because many any what only may like where now
""")
TOPIC_WORDS = _words("""
defense department military secretary forces army navy air force service members officials training
support security mission operations program people work team week years states united including
capabilities readiness partners allies exercise joint national guard soldiers sailors airmen marines
troops command commander units personnel families base equipment systems technology space time
leaders help ability part made well continue across world country region today future effort efforts
combat deployment deployed international nations global strategy policy plan plans report review budget
fiscal funding million billion percent month months days office public development research industry
acquisition production munitions missile missiles aircraft ships vessels submarine fleet squadron brigade
battalion division wing cyber intelligence surveillance logistics maintenance sustainment medical health
care housing childcare quality recruiting retention warfighters deterrence threat threats regional europe
africa pacific korea japan ukraine russia china nato pentagon staff general admiral officer officers
installation installations modernization contract contracts test testing prototype innovation nuclear
energy fuel infrastructure construction shipyard depot supply chain parts inventory audit oversight safety
veterans ceremony honor award medal history anniversary memorial flight pilots drone drones satellite
satellites launch rocket orbit weapons artillery vehicles radar sensors network networks data software
digital artificial hypersonic integrated coalition interoperability rapid response crisis disaster relief
humanitarian assistance academy cadets students school schools spouses children employment civilian
civilians workforce hiring skills career careers education resilience wellness mental suicide prevention
sexual assault harassment accountability transparency communication communications commercial small
businesses manufacturing industrial investment investments resources priorities priority challenges
opportunities lessons learned experience experiences operational tactical strategic critical key major
senior deputy assistant chief director agency agencies organization organizations headquarters center
centers facility facilities site sites area areas field fields environment conditions weather cold heat
""")
SET_PHRASES = """
secretary of defense|service members|department of defense|air force base|joint chiefs of staff|
national defense strategy|armed forces|quality of life|supply chain|indo-pacific region|
chief of naval operations|artificial intelligence|missile defense|space force|national guard|
military families|defense industrial base|combatant commands|ballistic missile|the united states
""".replace("\n", "").split("|")
PSEUDO_WORDS = 50_000
VOCABULARY_SEED = 20_230_102
ZIPF_SLOTS_BITS = 20  # draws go through a table of 2**20 slots, each word holding its share of them
_ONSETS = _words("b br c ch cl d dr f fl g gr h j k l m n p pr r s sh st t tr v w z") + [""] * 5
_VOWELS = _words("a e i o u a e i o a e ai ea ou io")
_CODAS = _words("n r l s t m d k nd nt st rk ss ll ng") + [""] * 14
_ENDINGS = ("", "", "", "", "er", "on", "an", "en", "ia", "ine", "ard", "ell", "ist", "ex", "ium", "ovo")


def _pseudo_word(rng: random.Random) -> str:
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                   for _ in range(rng.choice((1, 2, 2, 2, 3, 3))))
    word += rng.choice(_ENDINGS)
    return word if len(word) >= 4 else word + rng.choice(("ton", "vale", "ar", "ex", "ium"))


class Vocabulary:
    """Words by rank with Zipf-like weights ``1 / (rank + 1.5)``; built once per process (about 0.2 s).

    Ranks: function words, then defense words and set phrases (interleaved), then ``PSEUDO_WORDS``
    pseudo-words from ``random.Random(VOCABULARY_SEED)``: the same vocabulary in every process.
    A draw picks one of ``2 ** ZIPF_SLOTS_BITS`` slots (each word has at least one), which is
    several times faster than ``random.choices`` with cumulative weights.
    """

    def __init__(self) -> None:
        topical = list(TOPIC_WORDS)
        for k, phrase in enumerate(SET_PHRASES):  # a set phrase every ~12 ranks among the defense words
            topical.insert(min(len(topical), 6 + 12 * k), phrase.strip())
        words = list(dict.fromkeys(FUNCTION_WORDS + topical))
        known, target = set(words), len(words) + PSEUDO_WORDS
        rng = random.Random(VOCABULARY_SEED)
        while len(words) < target:
            word = _pseudo_word(rng)
            if word not in known:
                known.add(word)
                words.append(word)
        self.words = words
        cum = list(accumulate(1.0 / (rank + 1.5) for rank in range(1, len(words) + 1)))
        slots, scale = 1 << ZIPF_SLOTS_BITS, (1 << ZIPF_SLOTS_BITS) / cum[-1]
        table: list[str] = []
        for word, upto in zip(words, cum, strict=True):
            table.extend([word] * max(1, round(upto * scale) - len(table)))
        self.table = table[:slots]
        self.first_content_slot = next(i for i, w in enumerate(self.table) if w == words[len(FUNCTION_WORDS)])

    def draw(self, rng: random.Random, k: int) -> list[str]:
        table, bits = self.table, rng.getrandbits
        return [table[bits(ZIPF_SLOTS_BITS)] for _ in range(k)]

    def content_word(self, rng: random.Random) -> str:
        """One word drawn like the others, but never a function word or a set phrase (for titles)."""
        while True:
            word = self.table[rng.randrange(self.first_content_slot, len(self.table))]
            if " " not in word:
                return word


@cache
def vocabulary() -> Vocabulary:
    return Vocabulary()


def _mix(seed: int, i: int) -> int:
    """splitmix64: a cheap, well-spread hash so kinds and dates need no RNG per story."""
    x = (i * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + 1) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class Synthetic:
    """``n`` generated stories with ids ``SYN_BASE_ID + i`` and up to ``MAX_IMAGES`` images each."""

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
        media = [SYN_MEDIA_BASE + i * MEDIA_PER_STORY + k for k in range(MAX_IMAGES)]
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
        count = rng.choices(range(MAX_IMAGES + 1), IMAGE_COUNT_WEIGHTS)[0]
        images = [_image(rng, mid, day, topic, service) for mid in media_ids[:count]]
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
        return f"{service} {rng.choice(VERBS)} {_topical(rng)}{rng.choice(THINGS)}", None, reporter
    if kind == "feature-story":
        person = _person(rng, service)
        return f"Face of Defense: {person.split(' ', 1)[1]} Leads {rng.choice(THINGS)}", None, reporter
    if kind == "release":
        country = rng.choice(COUNTRIES)
        return rng.choice([f"Readout of Deputy Secretary's Meeting With Counterpart From {country}",
                           f"Department of War Announces {_topical(rng)}{rng.choice(THINGS)}"]), None, None
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


def _topical(rng: random.Random) -> str:
    """Half the time a capitalised word from the vocabulary and a space, for a headline's variety."""
    return f"{vocabulary().content_word(rng).title()} " if rng.random() < 0.5 else ""


def _zipf_sentence(rng: random.Random, low: int = 8, high: int = 22) -> str:
    """A sentence of words drawn from the Zipf-like vocabulary (see Vocabulary)."""
    words = vocabulary().draw(rng, rng.randint(low, high))
    if len(words) > 6 and rng.random() < 0.4:
        words[rng.randint(2, len(words) - 3)] += ","
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


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
    sentences = rng.sample(_sentences(rng, topic, service), rng.randint(1, 2))
    sentences += [_zipf_sentence(rng) for _ in range(rng.randint(1, 3))]
    rng.shuffle(sentences)
    text = " ".join(sentences)
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    if rng.random() < 0.15:
        text += f' More information is on the <a href="https://www.war.gov/News/">{service} news page</a>.'
    return {"type": "p", "html": text}


def _body(rng: random.Random, kind: str, topic: str, service: str, images: list[dict]) -> list[dict[str, Any]]:
    body = [_paragraph(rng, topic, service) for _ in range(rng.randint(*PARAGRAPHS.get(kind, (2, 6))))]
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
        "caption": f"{alt[:-1]} at {place}, {ap_date(shot)}." + (f" {_zipf_sentence(rng, 6, 14)}"
                                                                  if rng.random() < 0.5 else ""),
        "credit": _person(rng, service) if rng.random() < 0.7 else f"{rng.choice(FIRST)} {rng.choice(LAST)}, {service}",
        "size": f"{rng.uniform(1, 6):.2f} MB" if mb else f"{rng.uniform(150, 999):.2f} KB",
        "uploaded": day,
    }
