"""Next-best content: a selector slot that ranks its candidates by the recipient's
engagement with their topics, and says why in the manifest.

Opt-in per selector slot (`Slot.ranking = "engagement"`); every other step keeps the plain
selection and its query count. Ranking never widens the choice: `Selection` first keeps
the candidates that pass every rule (approved, valid now, market / channel / audience /
locale / purpose, not seen, companions and exclusions, the slot's tags) and only then
orders *those*, by

1. the **engagement score** of the candidate's topics — for each stage and specialty the
   candidate version is tagged with, the recipient's engaged events on content of that
   topic, weighted `WEIGHTS` (downloaded 3, clicked 2, opened 1);
2. on a tie, today's order: tagged for the recipient's specialty, untagged, other
   specialties; then the newest approval (then code, number: deterministic).

**The topic profile** of a recipient comes from their enrollment in this journey only (the
pseudonym, never personal data): each opened / clicked / downloaded event at a step counts
once for every topic of the content that step carried — its fixed modules, and the modules
of its selector kinds that the enrollment has been served (`seen_module_ids`; a module of
a kind several steps select is counted at each of them: the enrollment does not record
where it was served). A module's topics are the stages (`stage:<audience>:<code>`),
specialties (`specialty:<code>`) and kind (`kind:<kind>`) of its locked versions. Safety
information, footers, reference lists and disclaimers travel with everything and are not
topics of interest (`NOT_TOPICAL`). The kind is counted but never scored: all candidates
of a selector share its kind, so it cannot tell them apart.

**Reads**: the journey's topic catalogue once per step context (two queries, only when a
slot ranks), and the profile with one query per ranked assembly — or one per chunk of a
batch (`prefetch`), whatever the chunk's size.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.db import connection

from content.models import LOCKED_STATES, ModuleKind

from ..models import EventType, SelectorRanking, pseudonymous_id
from . import queries

ENGAGED = (EventType.DOWNLOADED, EventType.CLICKED, EventType.OPENED)  # strongest first
WEIGHTS = {EventType.DOWNLOADED: 3, EventType.CLICKED: 2, EventType.OPENED: 1}
VERBS = {EventType.DOWNLOADED: "downloaded", EventType.CLICKED: "clicked",
         EventType.OPENED: "opened"}
NOT_TOPICAL = (ModuleKind.ISI, ModuleKind.FOOTER, ModuleKind.REFERENCE_LIST,
               ModuleKind.DISCLAIMER)
SCORED = ("stage:", "specialty:")  # topic prefixes that rank candidates
DEFAULT_ORDER = "specialty, then newest approval"

Profile = Mapping[str, Mapping[str, int]]  # topic -> event type -> events


@dataclass(frozen=True)
class Catalogue:
    """What the journey's touchpoints carry, by topic."""

    step_modules: Mapping[int, frozenset]  # step id -> its bound module ids
    step_kinds: Mapping[int, frozenset]  # step id -> its selector kinds
    module_kind: Mapping[int, str]
    module_topics: Mapping[int, frozenset]  # module id -> topics of its locked versions
    version_topics: Mapping[int, frozenset]  # locked version id -> its topics
    labels: Mapping[str, str]  # topic -> words

    def served_at(self, step_id: int, seen: set[int]) -> set[int]:
        """The modules the step carried for someone who has been served `seen`."""
        kinds = self.step_kinds.get(step_id, frozenset())
        served = set(self.step_modules.get(step_id, ()))
        if kinds:
            served |= {m for m in seen if self.module_kind.get(m) in kinds}
        return served

    def profile(self, events: Iterable[tuple[int, str, int]], seen: Iterable) -> Profile:
        """Counts per topic and event type: each event counts once per topic its step's
        content had."""
        seen_ids = {int(m) for m in seen if isinstance(m, int) or str(m).isdigit()}
        counts: dict[str, Counter] = defaultdict(Counter)
        for step_id, event_type, number in events:
            topics = set()
            for module_id in self.served_at(step_id, seen_ids):
                topics |= self.module_topics.get(module_id, frozenset())
            for topic in topics:
                counts[topic][event_type] += number
        return {topic: dict(c) for topic, c in counts.items()}


def read_catalogue(journey_id: int, brand_id: int) -> Catalogue:
    """The journey's slots and the topics of every module they can carry (two queries)."""
    step_modules: dict[int, set] = defaultdict(set)
    step_kinds: dict[int, set] = defaultdict(set)
    with connection.cursor() as cursor:
        cursor.execute(queries.journey_slots_sql(), [journey_id])
        for step_id, module_id, kind in cursor.fetchall():
            if module_id is not None:
                step_modules[step_id].add(module_id)
            elif kind:
                step_kinds[step_id].add(kind)
        bound = sorted({m for ms in step_modules.values() for m in ms})
        kinds = sorted({k for ks in step_kinds.values() for k in ks})
        states, skipped = sorted(LOCKED_STATES), list(NOT_TOPICAL)
        params = [*states, *skipped, *bound, brand_id, *kinds]
        cursor.execute(queries.topics_sql(len(bound), len(kinds), len(states), len(skipped)),
                       params * 3)
        rows = cursor.fetchall()
    module_kind: dict[int, str] = {}
    module_topics: dict[int, set] = defaultdict(set)
    version_topics: dict[int, set] = defaultdict(set)
    labels: dict[str, str] = {}
    for version_id, module_id, field_name, value, label in rows:
        if field_name == "kind":
            module_kind[module_id] = value
            topic, words = f"kind:{value}", ModuleKind(value).label.lower()
        elif field_name == "stages":
            topic, words = f"stage:{value}", f"{label.lower()}-stage"
        else:
            topic, words = f"specialty:{value.lower()}", label
        labels[topic] = words
        module_topics[module_id].add(topic)
        version_topics[version_id].add(topic)
    return Catalogue(
        step_modules={k: frozenset(v) for k, v in step_modules.items()},
        step_kinds={k: frozenset(v) for k, v in step_kinds.items()},
        module_kind=module_kind,
        module_topics={k: frozenset(v) for k, v in module_topics.items()},
        version_topics={k: frozenset(v) for k, v in version_topics.items()},
        labels=labels)


def read_profiles(catalogue: Catalogue, journey_id: int,
                  pseudonyms: Sequence[str]) -> dict[str, Profile]:
    """The topic profile of each pseudonym enrolled in the journey (one query)."""
    pseudonyms = sorted(set(pseudonyms))
    if not pseudonyms:
        return {}
    engaged = [str(e) for e in ENGAGED]
    with connection.cursor() as cursor:
        cursor.execute(queries.profiles_sql(len(pseudonyms), len(engaged)),
                       [*engaged, journey_id, *pseudonyms])
        rows = cursor.fetchall()
    events: dict[str, list] = defaultdict(list)
    seen: dict[str, list] = {}
    for pseudonym, seen_ids, step_id, event_type, number in rows:
        if pseudonym not in seen:
            value = json.loads(seen_ids) if isinstance(seen_ids, str | bytes) else seen_ids
            seen[pseudonym] = value if isinstance(value, list) else []
        if step_id is not None:
            events[pseudonym].append((step_id, event_type, number))
    return {p: catalogue.profile(events[p], seen[p]) for p in seen}


def pseudonym_of(recipient: Mapping) -> str | None:
    recipient_id = recipient.get("id") if isinstance(recipient, Mapping) else None
    if recipient_id is None or str(recipient_id) == "":
        return None
    return pseudonymous_id(str(recipient_id))


class Ranker:
    """The ranking reads of one step context: the catalogue (read here), and the profile
    per recipient — from the chunk a batch prefetched, else one query."""

    def __init__(self, *, journey_id: int, brand_id: int):
        self.journey_id = journey_id
        self.catalogue = read_catalogue(journey_id, brand_id)
        self._batch: dict[str, Profile] = {}
        self._batch_keys: frozenset = frozenset()

    def prefetch(self, recipients: Iterable[Mapping]) -> None:
        """Read the profiles of a batch chunk in one query (replacing the last chunk's)."""
        pseudonyms = {p for r in recipients if (p := pseudonym_of(r))}
        self._batch = read_profiles(self.catalogue, self.journey_id, sorted(pseudonyms))
        self._batch_keys = frozenset(pseudonyms)

    def profile_of(self, recipient: Mapping) -> Profile:
        pseudonym = pseudonym_of(recipient)
        if pseudonym is None:
            return {}
        if pseudonym in self._batch_keys:
            return self._batch.get(pseudonym, {})
        return read_profiles(self.catalogue, self.journey_id, [pseudonym]).get(pseudonym, {})


def ranker_for(slots, *, journey_id: int, brand_id: int) -> Ranker | None:
    """A ranker when a selector slot ranks by engagement; None (and no query) otherwise."""
    if any(s.module_id is None and s.ranking == SelectorRanking.ENGAGEMENT for s in slots):
        return Ranker(journey_id=journey_id, brand_id=brand_id)
    return None


def prefetch(ctx, recipients: Sequence[Mapping]) -> None:
    """Before a batch chunk: its recipients' profiles in one query, when the context's
    selection ranks (nothing otherwise)."""
    ranker = getattr(getattr(ctx, "selection", None), "ranker", None)
    if ranker is not None:
        ranker.prefetch(recipients)


# --- Choosing and explaining ---------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """Why a ranked slot got its module: the reason in words and the counts behind it."""

    reason: str
    score: int
    topics: dict  # the chosen version's scored topics -> event type -> events
    candidates: int  # eligible candidates ranked
    tied: int = 0  # other candidates with the same score

    def as_dict(self) -> dict:
        return {"by": SelectorRanking.ENGAGEMENT.value, "reason": self.reason,
                "score": self.score, "topics": self.topics, "candidates": self.candidates,
                "tied": self.tied, "weights": {str(k): w for k, w in WEIGHTS.items()}}


def topic_scores(profile: Profile) -> dict[str, int]:
    """The weighted events of each scored topic of the profile."""
    return {topic: sum(WEIGHTS.get(event, 0) * number for event, number in events.items())
            for topic, events in profile.items() if topic.startswith(SCORED)}


def score(topics: Iterable[str], weights: dict[str, int]) -> int:
    """A candidate's score: the weights (`topic_scores`) of its topics, summed."""
    return sum(weights.get(topic, 0) for topic in topics)


def choose(eligible: list, profile: Profile, catalogue: Catalogue):
    """`eligible`: (version, specialty rank) in today's order (newest approval first).
    Returns (the best version, its Ranking), or (None, None) when none is eligible."""
    if not eligible:
        return None, None
    weights = topic_scores(profile)
    topics_of = catalogue.version_topics
    scored = [(score(topics_of.get(v.id, ()), weights) if weights else 0, rank, -i, v)
              for i, (v, rank) in enumerate(eligible)]
    best = max(scored, key=lambda s: s[:3])
    top, _, _, chosen = best
    tied = sum(1 for s in scored if s[0] == top) - 1
    topics = {t: dict(sorted(profile[t].items()))
              for t in sorted(catalogue.version_topics.get(chosen.id, ()))
              if t.startswith(SCORED) and profile.get(t)}
    return chosen, Ranking(reason=explain(top, topics, catalogue, len(eligible), tied, profile),
                           score=top, topics=topics, candidates=len(eligible), tied=tied)


def times(number: int) -> str:
    return {1: "once", 2: "twice"}.get(number, f"{number} times")


def explain(top: int, topics: dict, catalogue: Catalogue, candidates: int, tied: int,
            profile: Profile) -> str:
    """The reason in words, e.g. "Chosen because: clicked trial-stage content twice."."""
    some = f"{candidates} eligible candidate{'s' if candidates != 1 else ''}"
    if top == 0:
        if not any(profile.values()):
            return (f"No engagement recorded for this recipient in this journey yet: chosen "
                    f"among {some} by {DEFAULT_ORDER}.")
        return (f"No engagement with the topics of the {some} yet: chosen by "
                f"{DEFAULT_ORDER}.")
    weights = topic_scores(profile)
    weighted = sorted(topics, key=lambda t: (-weights.get(t, 0), t))
    phrases = [f"{VERBS[event]} {catalogue.labels.get(topic, topic)} content "
               f"{times(topics[topic][event])}"
               for topic in weighted for event in ENGAGED if topics[topic].get(event)]
    reason = "Chosen because: " + ", ".join(phrases) + f" (score {top} among {some})."
    if tied:
        reason += (f" {tied} other candidate{'s' if tied != 1 else ''} scored the same: "
                   f"among them by {DEFAULT_ORDER}.")
    return reason


class RankedPicks(list):
    """The picks of a selection in which a slot ranked by engagement, with why: the
    Ranking per slot index (read by `annotate`)."""

    def __init__(self, picks, rankings: dict):
        super().__init__(picks)
        self.rankings = rankings


def annotate(manifest: dict, picks) -> dict:
    """The manifest with each ranked slot's module entry carrying its `ranking` (the
    combination's shared entries are copied, never changed)."""
    if type(picks) is not RankedPicks:  # every other assembly: nothing to add
        return manifest
    rankings = picks.rankings
    used = [i for i, (_, v) in enumerate(picks) if v is not None]
    modules = list(manifest.get("modules", []))
    for position, index in enumerate(used):
        if index in rankings and position < len(modules):
            modules[position] = {**modules[position], "ranking": rankings[index].as_dict()}
    manifest["modules"] = modules
    return manifest

