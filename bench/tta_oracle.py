"""What any revisit policy could reach in ``bench/time_to_alert.py``: the information bound and the oracle.

Why: the frontier's all-edits p95 is compared with uniform round robin. Whether a gap to a target is
the policy's or the knowledge's (and the budget's) needs two more figures at the same budget and the
same fixed costs (index checks, fresh stories, photo verification, the listing walk):

- the *bound*: the lowest all-edits p95 any fixed allocation of the old stories' revisits reaches when
  it ranks the stories by what it knows. Edits of an old story (its captions' included: a caption
  shows on its story) arrive at a rate r_i; revisited every I_i days, an edit is seen within q days
  with probability min(1, q / I_i). For a given q, the allocation that sees the most edit mass within
  q under sum(1 / I_i) <= B, every story at least every ``verify_days``, is a fractional knapsack: the
  highest-ranked stories every q days, the others every ``verify_days``. The bound is the least q at
  which the edits over q are at most 5% of all edits (fresh edits are seen within hours, and an edit
  less than q before the end cannot have waited longer). Stories the ranking cannot tell apart count
  at their group's mean rate (an arbitrary order among them). Ranked by the monitor's estimates (the
  archive's ``change_rate`` after a year of monthly checks, before the run) and by the true rates;
  both evaluated with the true rates. A static bound: what the monitor learns during the run is not in it.
- the *oracle*: simulated, like the baselines, at the same budget: the same index checks, removal
  confirmations, fresh stories every ``fresh_max_interval_hours``, listing walk (its requests spent,
  its pages not read: the oracle knows nothing from them), photo verification within their period;
  old stories revisited by that knapsack at the true rates. Perfect knowledge, simulated.
"""

from __future__ import annotations

import argparse
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ttamodel import DAY, FRESH_DAYS, Key, Site

from core.config import FrontierConfig
from monitor import frontier as policy
from monitor.listings import LISTING_PAGE_SIZE

TAIL_SHARE = 0.05  # the 95th percentile: at most this share of all edits waits longer
# The oracle aims at an expected tail of 4%, not 5%: the knapsack leaves the cold stories at verify_days,
# so a tail that is 5% in expectation is over it about half the time (a few hundred edits, Poisson), and the
# p95 then jumps from hours to the cold stories' days (at 20,000 stories: 79 h against a bound of 7 h).
ORACLE_TAIL_SHARE = 0.04


@dataclass(frozen=True)
class FixedCosts:
    """Requests a day every approach spends before revisiting old stories (the frontier's census terms)."""

    index: float  # feeds and first listing pages, and the new stories and photos they lead to
    fresh: float  # stories under fresh_days, every fresh_max_interval_hours
    photos: float  # photo pages verified within their period (on_story_verify_days)
    walk: float  # one listing page in listing_stride within enumerate_days (spans left out)
    budget: float

    @property
    def revisits(self) -> float:
        """What is left a day for the old stories (their own verification within verify_days included)."""
        return self.budget - self.index - self.fresh - self.photos - self.walk

    def describe(self) -> str:
        return (f"budget {self.budget:,.0f}/day - index {self.index:,.0f} - fresh stories {self.fresh:,.0f} - photo "
                f"verification {self.photos:,.0f} - listing walk {self.walk:,.0f} = {self.revisits:,.0f} "
                f"old-story revisits/day")


def fixed_costs(args: argparse.Namespace, config: FrontierConfig, index_cost: int) -> FixedCosts:
    new_pages = args.new_per_day * (1 + args.photos_per_story)
    return FixedCosts(
        index=24 * 60 / config.index_interval_minutes * index_cost + new_pages,
        fresh=args.new_per_day * FRESH_DAYS * 24 / config.fresh_max_interval_hours,
        photos=args.photos / policy.on_story_period(config),  # every photo page of the model is on a story
        walk=args.stories / LISTING_PAGE_SIZE / config.enumerate_days / config.listing_stride,  # past the first walk
        budget=config.requests_per_hour * 24)


def story_rates(site: Site) -> dict[int, float]:
    """True changes a day of each old story: its own edits and related links, and its photos' captions."""
    return {sid: site.true_rate(("story", sid)) + sum(site.true_rate(("photo", m)) for m in page.photos)
            for (page_type, sid), page in site.pages.items() if page_type == "story" and sid <= site.args.stories}


# -- the bound --------------------------------------------------------------------------------------------


def ranked_rates(true: dict[int, float], known: dict[int, float]) -> list[float]:
    """True rates in the order of ``known`` (highest first); ties replaced by their group's mean."""
    order = sorted(true, key=lambda sid: -known[sid])
    ranked: list[float] = []
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and known[order[end]] == known[order[start]]:
            end += 1
        group = [true[sid] for sid in order[start:end]]
        ranked += [sum(group) / len(group)] * len(group)
        start = end
    return ranked


def covered(ranked: Sequence[float], prefix: Sequence[float], q: float, revisits: float, verify_days: float) -> float:
    """Share of the edit mass seen within ``q`` days by the knapsack at ``q`` (the top stories every q days)."""
    pages, total = len(ranked), prefix[-1]
    base = max(verify_days, pages / max(revisits, 1e-9))  # every story at least this often, if the budget allows
    if q >= base:
        return 1.0
    top = (revisits - pages / base) / (1 / q - 1 / base)
    whole = max(0, min(pages, int(top)))
    mass = prefix[whole] + (ranked[whole] * (top - whole) if whole < pages else 0.0)
    return (mass + (total - mass) * q / base) / total


def least_p95(ranked: Sequence[float], revisits: float, verify_days: float, days: float, old_share: float,
              tail_share: float = TAIL_SHARE) -> float:
    """The least q (days) at which old edits seen later than q are at most ``tail_share`` of all edits."""
    prefix = [0.0]
    for rate in ranked:
        prefix.append(prefix[-1] + rate)

    def enough(q: float) -> bool:
        late = 1 - covered(ranked, prefix, q, revisits, verify_days)
        return old_share * max(0.0, 1 - q / days) * late <= tail_share

    low, high = 0.0, max(verify_days, days)
    for _ in range(50):  # enough(q) only ever turns true as q grows: more time, the same requests
        low, high = (low, (low + high) / 2) if enough((low + high) / 2) else ((low + high) / 2, high)
    return high


def knapsack_intervals(true: dict[int, float], q: float, revisits: float, verify_days: float) -> dict[int, float]:
    """Revisit interval (days) of each old story at the knapsack for ``q``: the highest rates every q days."""
    order = sorted(true, key=lambda sid: -true[sid])
    base = max(verify_days, len(order) / max(revisits, 1e-9))
    top = int((revisits - len(order) / base) / (1 / q - 1 / base)) if q < base else len(order)
    return {sid: (q if rank < top else base) for rank, sid in enumerate(order)}


# -- the oracle, simulated --------------------------------------------------------------------------------


def run_oracle(args: argparse.Namespace, config: FrontierConfig, index_cost: int,
               old_share: float) -> tuple[Any, float]:
    """The oracle approach over its own copy of the site; returns it and the q its knapsack aimed at."""
    from time_to_alert import Approach, Ledger, index_check, run_fetch_list

    site = Site(args)
    approach = Approach("oracle", site, config.requests_per_hour / 3600)
    costs = fixed_costs(args, config, index_cost)
    true = story_rates(site)
    fresh_s = config.fresh_max_interval_hours * 3600
    fresh = {sid for sid in true if -site.pages[("story", sid)].published < FRESH_DAYS * DAY}
    old = {sid: rate for sid, rate in true.items() if sid not in fresh}
    q = least_p95(sorted(old.values(), reverse=True), costs.revisits, config.verify_days, args.days, old_share,
                  ORACLE_TAIL_SHARE)
    chosen = knapsack_intervals(old, q, costs.revisits, config.verify_days)
    intervals = {sid: days * DAY for sid, days in chosen.items()}
    due: list[tuple[float, int]] = [(intervals[sid] * ((sid * 0.6180339887) % 1), sid) for sid in old]  # spread phases
    due += [(fresh_s * ((sid * 0.6180339887) % 1), sid) for sid in fresh]
    heapq.heapify(due)
    photos: list[Key] = [k for k in site.pages if k[0] == "photo"]
    budget = policy.Budget.from_config(config)
    slice_s, end_s, lookback = config.slice_minutes * 60, args.days * DAY, budget.lookback.total_seconds()
    slices_per_day = DAY / slice_s
    spent, credit = Ledger(), {"photos": 0.0, "walk": 0.0}
    photo_cursor, last_index, next_index, t = 0, 0.0, 0.0, 0.0
    while t < end_s:
        left = budget.allowance(spent.used(t - lookback, t))
        approach.runs += 1
        before, found, clock = approach.requests, [], t
        if left and t >= next_index:
            clock, published = index_check(approach, clock, last_index, t, index_cost, found)
            for story, keys, fetched in published:
                photos += keys[1:]
                fresh.add(story)
                heapq.heappush(due, (fetched + fresh_s, story))
            last_index, next_index = t, t + config.index_interval_minutes * 60
        left -= approach.requests - before
        confirm = [k for k, (state, _) in approach.removal_state.items() if state == "missing"][:max(0, left)]
        clock = run_fetch_list(approach, clock, confirm, found)
        left -= len(confirm)
        walk = min(max(0, left), _quota(credit, "walk", costs.walk / slices_per_day))
        approach.requests += walk  # the walk's requests: their answers unused (the oracle needs none)
        clock += walk / approach.rate
        left -= walk
        count = min(max(0, left), _quota(credit, "photos", costs.photos / slices_per_day))
        batch = [photos[(photo_cursor + i) % len(photos)] for i in range(count)]
        photo_cursor = (photo_cursor + count) % len(photos)
        clock = run_fetch_list(approach, clock, batch, found)
        left -= count
        stories = [heapq.heappop(due)[1] for _ in range(min(max(0, left), len(due)))]  # most overdue first
        clock = run_fetch_list(approach, clock, [("story", sid) for sid in stories], found)
        for sid in stories:
            age = clock - site.pages[("story", sid)].published
            interval = fresh_s if age < FRESH_DAYS * DAY else intervals.get(sid, config.verify_days * DAY)
            heapq.heappush(due, (clock + interval, sid))
        approach.end_run(clock, found)
        spent.add(t, clock, approach.requests - before)
        t = max(t + slice_s, clock)
    site.advance(end_s)
    return approach, q


def _quota(credit: dict[str, float], name: str, per_slice: float) -> int:
    """This slice's whole requests of a steady ``per_slice`` share, the fraction carried to the next."""
    credit[name] += per_slice
    whole = int(credit[name])
    credit[name] -= whole
    return whole


def bound_lines(site: Site, known: dict[int, float], costs: FixedCosts, config: FrontierConfig,
                days: float, old_share: float) -> Iterable[str]:
    """The bound's lines: the budget's arithmetic and the least p95 by each ranking."""
    true = story_rates(site)
    known = {sid: known.get(sid) or 0.0 for sid in true}  # a story without an estimate: ranked last
    monitor = least_p95(ranked_rates(true, known), costs.revisits, config.verify_days, days, old_share)
    perfect = least_p95(sorted(true.values(), reverse=True), costs.revisits, config.verify_days, days, old_share)
    even = least_p95(ranked_rates(true, dict.fromkeys(true, 0.0)), costs.revisits, config.verify_days, days,
                     old_share)
    yield f"bound: {costs.describe()}; old and related edits {old_share:.1%} of all edits"
    yield (f"bound: least all-edits p95 of any fixed revisit allocation at that budget: with the monitor's knowledge "
           f"(a year of monthly checks) {monitor * 24:.1f} h, with perfect knowledge {perfect * 24:.1f} h, "
           f"knowing nothing (every story alike) {even * 24:.1f} h")
