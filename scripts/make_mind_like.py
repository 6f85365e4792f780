"""Generate MIND-like data with MIND-small's or MIND-large's sizes and statistics, on demand.

    python scripts/make_mind_like.py --size=small --out=DIR [--seed=N] [--splits=train,dev]
        [--blank-categories]

Writes DIR/train, DIR/dev and DIR/test, each with news.tsv (8 columns) and behaviors.tsv
(5 columns) in the exact MIND format; test is unlabelled, as MINDlarge_test is (candidates
without -0/-1), and its hidden labels go to DIR/test_truth.txt in the format of the MIND
competition's truth file ("1 [0,1,0]"). DIR/stats.json holds the statistics of what was
written (they are printed too) and three dev AUCs (MIND's mean per-impression AUC): `oracle`,
the click model's own score without its noise; `interest`, its interest part alone (what the
text can carry); and `popularity`, ranking by clicks in train.

--size is `small` (MIND-small: about 65k news, 50k users, 156,965 train and 73,152 dev
impressions, no test), `large` (MIND-large: about 161k news, 1M users, 2,232,748 train,
376,471 dev and 2,370,727 test impressions), a fraction of large (`0.01`), or any of these
followed by overrides: `small,users=2000,train=5000` (keys: archive_news, news_per_day,
users, train, dev, test; alone, overrides apply to large).

The world is make_mind_sample.py's, at scale: its 45 subcategories, title and abstract
templates and click model. Users have a few favourite subcategories; histories (the 4 weeks
before the logs, 10/12-11/8) are clicks on archive news, mostly in those favourites;
impressions show the news of their day and the two days before, drawn by a Zipf-like
exposure; the clicked candidates are the top ones by BETA * log(affinity) + GAMMA * quality
+ Gumbel noise. The topic reaches a model only through the words of the title and abstract
(and the category columns unless --blank-categories). As in MIND, train covers 11/9-11/14,
dev 11/15 and test 11/16-11/22, so about half the dev candidates (that day's news) never
appear in train.

Distributions (chosen to match MIND's published statistics; see benchmarks/README.md):
history lengths log-normal, median 29, 2% empty, up to 500, mean about 30 once clipped at
the 50 that models read (about 39 unclipped); candidates per impression log-normal, median
25, mean about 37, 2 to 300; clicks 1 + Poisson(0.52 * candidates / 37), mean about 1.5;
titles 10-11 words on average (a fifth are short ones about an entity of the topic; where
the templates run out of new titles, a neutral prefix or suffix such as "Report: " keeps
them distinct), abstracts 1-3 paragraphs, about 40 words, 5% empty.

The output depends only on the seed and the size: numpy's default_rng, one independent stream
per part (news, users, each split), so a split's files are the same whichever other splits are
asked for. Generation is vectorised numpy in chunks of impressions, streamed to disk; only
numpy and the standard library are used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_mind_sample as sample  # noqa: E402  (a sibling script, not a package)

DEFAULT_SEED = 20191115
HISTORY_CAP = 50  # what models read; stats report lengths both raw and clipped at this

# Days are counted from 11/9/2019 (day 0): histories come from the 28 days before, train
# impressions from days 0-5, dev from day 6 and test from days 7-13, as in MIND.
ARCHIVE_DAYS = 28
SPLIT_DAYS = {"train": tuple(range(0, 6)), "dev": (6,), "test": tuple(range(7, 14))}
SPLITS = ("train", "dev", "test")
# Candidate weight by age in days: with as many news a day, the day's own news take half the
# draws, which makes about half the dev candidates news that train never showed.
RECENCY = (1.0, 0.6, 0.4)
# Exposure weight: log-normal (Zipf-like rank-frequency over the top decades), correlated with
# the click model's quality so that a popularity ranking is better than chance but weak.
EXPOSURE_SIGMA = 1.5
EXPOSURE_QUALITY_CORR = 0.5
ACTIVITY_SIGMA = 1.0  # users' impression rates: about 70% of MIND-large's users are in train
EMPTY_HISTORY_SHARE = 0.02
HISTORY_MEDIAN, HISTORY_SIGMA, HISTORY_MAX = 29, 0.8, 500
CANDIDATE_MEDIAN, CANDIDATE_SIGMA, CANDIDATE_RANGE = 25, 0.9, (2, 300)
CANDIDATE_MEAN = 37.0
EXTRA_CLICKS = 0.52  # mean clicks beyond the first, at the mean number of candidates
EMPTY_ABSTRACT_SHARE = 0.05
ABSTRACT_PARAGRAPHS = ((1, 2, 3), (0.5, 0.4, 0.1))
# Short titles about one of the topic's own entities (a team, a dish, a car), for the short
# end of MIND's title lengths; the entity keeps the topic in the words.
SHORT_TITLE_SHARE = 0.2
SHORT_TITLES = (
    "{X}: what to know", "{X}: what we know so far", "{X}: the latest", "{X}, explained",
    "{X} in photos", "{X}: 5 takeaways", "{X}: by the numbers", "{X}: what's next",
    "{X} news and notes", "Big week for {X}", "{X}: a closer look", "{X} takes center stage",
)  # fmt: skip
ENTITY_SLOTS = {
    "football_nfl": "team player coach", "basketball_nba": "team player",
    "baseball_mlb": "team pitcher hitter", "icehockey_nhl": "team player goalie",
    "soccer": "club player manager competition", "golf": "golfer event", "tennis": "player event",
    "football_ncaa": "school player", "markets": "stock index", "finance-companies": "company",
    "newspolitics": "pol", "newsworld": "country leader",
    "newsscienceandtechnology": "company planet gadget", "lifestyleroyals": "royal",
    "lifestylebuzz": "store", "lifestylehomeandgarden": "designer plant", "wellness": "habit",
    "medical": "disease", "fitness": "move", "nutrition": "food", "recipes": "dish",
    "restaurantsandnews": "chain", "foodnews": "brand product", "travelnews": "airline airport",
    "traveltripideas": "place", "autosnews": "maker car", "autosenthusiasts": "classic car",
    "autosresearch": "car", "tvnews": "show network", "tv-celebrity": "tvstar",
    "movienews": "movie director", "movies-celebrity": "actor", "musicnews": "artist award",
    "music-celebrity": "artist", "animals": "animal", "celebrity": "celeb",
}  # fmt: skip
# Topic-neutral framings, used only when a title was taken already: the templates alone
# cannot give MIND-large's 161k distinct titles.
TITLE_PREFIXES = ("Report: ", "Watch: ", "Update: ", "Opinion: ", "Analysis: ", "Exclusive: ")
TITLE_PREFIXES += ("Photos: ", "Video: ", "Breaking: ", "Live: ", "Explainer: ", "Poll: ")
TITLE_SUFFIXES = (" this week", " on {weekday}", ", report says", ", sources say", " again")
TITLE_SUFFIXES += (", officials say", " (photos)", " (video)", " this weekend", " today")
PLAIN_TITLE_TRIES, TITLE_TRIES = 4, 8
IMPRESSION_CHUNK = 100_000
USER_CHUNK = 100_000
NEWS_FILE, BEHAVIORS_FILE, TRUTH_FILE = "news.tsv", "behaviors.tsv", "test_truth.txt"


@dataclasses.dataclass(frozen=True)
class Size:
    """How much to generate: news in the archive and per log day, users, impressions."""

    archive_news: int
    news_per_day: int
    users: int
    train: int
    dev: int
    test: int

    def impressions(self, split: str) -> int:
        return int(getattr(self, split))

    def log_days(self) -> int:
        last = max(d for s in SPLITS if self.impressions(s) for d in SPLIT_DAYS[s])
        return max(last, SPLIT_DAYS["dev"][0]) + 1


SIZES = {
    "small": Size(25_000, 5_750, 50_000, 156_965, 73_152, 0),
    "large": Size(48_000, 8_080, 1_000_000, 2_232_748, 376_471, 2_370_727),
}


def parse_size(text: str) -> Size:
    """`small`, `large`, a fraction of large, then optional `key=value` overrides."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    base = SIZES["large"]
    if parts and "=" not in parts[0]:
        head = parts.pop(0)
        if head in SIZES:
            base = SIZES[head]
        else:
            try:
                fraction = float(head)
            except ValueError:
                message = f"--size: expected small, large or a fraction, got {head!r}"
                raise ValueError(message) from None
            if not fraction > 0:
                raise ValueError(f"--size: the fraction must be positive, got {head!r}")
            scaled = {
                f.name: max(1, round(getattr(base, f.name) * fraction)) if getattr(base, f.name)
                else 0 for f in dataclasses.fields(Size)
            }  # fmt: skip
            scaled["news_per_day"] = max(2, scaled["news_per_day"])
            base = Size(**scaled)
    fields = {f.name for f in dataclasses.fields(Size)}
    overrides = {}
    for part in parts:
        key, _, value = part.partition("=")
        if key not in fields or not value.isdigit():
            raise ValueError(f"--size: {part!r} is not key=count with a key in {sorted(fields)}")
        overrides[key] = int(value)
    size = dataclasses.replace(base, **overrides)
    if size.news_per_day < 2 or size.archive_news < 1 or size.users < 1 or size.train < 1:
        raise ValueError(f"--size: too small ({size}): need news_per_day >= 2 and >= 1 of the rest")
    return size


# ---------------------------------------------------------------------------------------------
# News


class _Draws:
    """Uniform draws from a numpy generator, served one at a time to Python loops."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buffer: list[float] = []

    def uniform(self) -> float:
        if not self._buffer:
            self._buffer = self._rng.random(1 << 16).tolist()
        return self._buffer.pop()

    def below(self, n: int) -> int:
        return int(self.uniform() * n)

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[self.below(len(options))]


def _fill(template: str, topic: sample.Topic, chosen: dict[str, str], draws: _Draws) -> str:
    """make_mind_sample's slot filling: `chosen` keeps title and abstract on one story."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in chosen:
            base = name.rstrip("0123456789")
            pool = topic.slots.get(base) or sample.GLOBAL_SLOTS[base]
            taken = {v for k, v in chosen.items() if k.rstrip("0123456789") == base}
            chosen[name] = draws.pick([v for v in pool if v not in taken] if taken else pool)
        return chosen[name]

    return sample.SLOT.sub(value, template)


def _framed(template: str, draws: _Draws) -> str:
    """The template with a neutral prefix, suffix or both."""
    which = draws.below(4)  # prefix twice as often as suffix or both: prefixes are shorter
    if which != 2:
        template = draws.pick(TITLE_PREFIXES) + template
    if which >= 2:
        template += draws.pick(TITLE_SUFFIXES)
    return template


def _title_template(topic: sample.Topic, draws: _Draws) -> str:
    entities = ENTITY_SLOTS.get(topic.subcategory, "").split()
    if entities and draws.uniform() < SHORT_TITLE_SHARE:
        return draws.pick(SHORT_TITLES).replace("X", draws.pick(entities))
    return draws.pick(topic.titles)


def _article(topic: sample.Topic, draws: _Draws, seen: set[str]) -> tuple[str, str]:
    """A title (new if the templates allow it in a few tries) and a 0-3 paragraph abstract."""
    for attempt in range(TITLE_TRIES):
        chosen: dict[str, str] = {}
        template = _title_template(topic, draws)
        framed = attempt >= PLAIN_TITLE_TRIES
        title = _fill(_framed(template, draws) if framed else template, topic, chosen, draws)
        if title not in seen:
            break
    seen.add(title)
    if draws.uniform() < EMPTY_ABSTRACT_SHARE:
        return title, ""
    u, count = draws.uniform(), ABSTRACT_PARAGRAPHS[0][-1]
    for paragraphs, share in zip(*ABSTRACT_PARAGRAPHS, strict=True):
        u -= share
        if u < 0:
            count = paragraphs
            break
    first = draws.pick(sample._related(topic.abstracts, chosen))
    rest = [t for t in topic.abstracts if t != first]
    paragraphs = [first]
    for _ in range(min(count, len(topic.abstracts)) - 1):
        paragraphs.append(rest.pop(draws.below(len(rest))))
    return title, " ".join(_fill(p, topic, chosen, draws) for p in paragraphs)


@dataclasses.dataclass
class News:
    """The catalogue; arrays are indexed by news number."""

    topic: np.ndarray
    day: np.ndarray
    quality: np.ndarray  # the click model's per-article appeal
    exposure: np.ndarray  # how often it is shown as a candidate and picked for histories
    ids: np.ndarray  # [news, width] uint8: "N" + digits, all of one width
    categories: list[bytes]  # b"category\tsubcategory"
    texts: list[bytes]  # b"title\tabstract\turl\t[]\t[]\n"
    title_words: np.ndarray
    abstract_words: np.ndarray
    write_rank: np.ndarray  # position in news.tsv, so the files are not ordered by day


def _fixed_ids(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    """n distinct IDs, prefix and digits of one width (one more digit than n needs)."""
    digits = len(str(n)) + 1
    low = 10 ** (digits - 1)
    numbers = rng.choice(10**digits - low, size=n, replace=False) + low
    return [f"{prefix}{k}" for k in numbers.tolist()]


def _url_codes(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = np.frombuffer(sample.URL_ALPHABET.encode(), dtype=np.uint8)
    base = len(alphabet)
    numbers = rng.choice(base**5, size=n, replace=False)
    digits = (numbers[:, None] // base ** np.arange(4, -1, -1)) % base
    return ["AA" + row for row in np.char.decode(alphabet[digits].view("S5").ravel()).tolist()]


def make_news(size: Size, seed: int) -> News:
    rng = np.random.default_rng([seed, 1])
    day = np.concatenate(
        [
            np.sort(rng.integers(-ARCHIVE_DAYS, 0, size=size.archive_news)),
            np.repeat(np.arange(size.log_days()), size.news_per_day),
        ]
    ).astype(np.int16)
    n = len(day)
    topic = rng.choice(len(sample.TOPICS), size=n, p=sample.topic_prior()).astype(np.int16)
    quality = rng.standard_normal(n)
    corr = EXPOSURE_QUALITY_CORR
    exposure = np.exp(
        EXPOSURE_SIGMA * (corr * quality + np.sqrt(1 - corr**2) * rng.standard_normal(n))
    )
    ids = _fixed_ids(rng, "N", n)
    codes = _url_codes(rng, n)
    write_rank = rng.permutation(n)
    draws = _Draws(np.random.default_rng([seed, 2]))
    seen: set[str] = set()
    categories, texts, title_words, abstract_words = [], [], [], []
    for i, t in enumerate(topic.tolist()):
        top = sample.TOPICS[t]
        title, abstract = _article(top, draws, seen)
        url = f"https://assets.msn.com/labs/mind/{codes[i]}.html"
        categories.append(f"{top.category}\t{top.subcategory}".encode())
        texts.append(f"{title}\t{abstract}\t{url}\t[]\t[]\n".encode())
        title_words.append(len(title.split()))
        abstract_words.append(len(abstract.split()))
    id_matrix = np.frombuffer("".join(ids).encode(), dtype=np.uint8).reshape(n, -1)
    return News(
        topic, day, quality, exposure, id_matrix, categories, texts,
        np.asarray(title_words), np.asarray(abstract_words), write_rank,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Users


@dataclasses.dataclass
class Users:
    ids: list[bytes]
    affinity: np.ndarray  # [users, topics] float32, rows sum to 1: the latent interests
    activity_cdf: np.ndarray  # for drawing the user of an impression
    history_start: np.ndarray  # [users + 1] offsets into history_items
    history_items: np.ndarray  # news numbers, each user's oldest first
    history_text: bytes  # every user's history field, back to back
    history_text_start: np.ndarray  # [users + 1] byte offsets into history_text
    recent_history_keys: np.ndarray  # sorted user * news + item, for items candidates can be


def _affinity(rng: np.random.Generator, n: int) -> np.ndarray:
    """make_mind_sample's interests, vectorised: 2-4 favourites and spill-over to their kind."""
    prior = sample.topic_prior()
    cats = np.array([t.category for t in sample.TOPICS])
    same = (cats[:, None] == cats[None, :]).astype(float)
    k = rng.choice([2, 3, 4], size=n, p=[0.35, 0.4, 0.25])
    # The k largest of log(prior) + Gumbel noise: k topics drawn without replacement by prior.
    keys = np.log(prior) + rng.gumbel(size=(n, len(prior)))
    favourite = np.argsort(np.argsort(-keys, axis=1), axis=1) < k[:, None]
    strong = rng.exponential(size=(n, len(prior))) * favourite  # Dirichlet(1) once normalised
    strong /= strong.sum(axis=1, keepdims=True)
    spill = (strong / same.sum(axis=1)) @ same
    return (0.8 * strong + 0.15 * spill + 0.05 / len(prior)).astype(np.float32)


def _archive_sampler(news: News) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Archive news grouped by topic with cumulative exposure, for drawing within a topic."""
    archive = np.flatnonzero(news.day < 0)
    archive = archive[np.argsort(news.topic[archive], kind="stable")]
    cum = np.cumsum(news.exposure[archive])
    n_topics = len(sample.TOPICS)
    bounds = np.searchsorted(news.topic[archive], np.arange(n_topics + 1))
    lo, hi = bounds[:-1].copy(), bounds[1:].copy()
    empty = lo == hi  # a topic without archive news (tiny sizes) draws from the whole archive
    lo[empty], hi[empty] = 0, len(archive)
    return archive, cum, lo, hi


def _histories(
    rng: np.random.Generator, affinity: np.ndarray, news: News, sampler: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Past clicks of a block of users: (lengths, items oldest first), no item twice."""
    archive, cum, lo, hi = sampler
    n = len(affinity)
    length = np.rint(np.exp(np.log(HISTORY_MEDIAN) + HISTORY_SIGMA * rng.standard_normal(n)))
    length = np.clip(length, 1, HISTORY_MAX).astype(np.int64)
    length[rng.random(n) < EMPTY_HISTORY_SHARE] = 0
    draws = length + length // 2 + 2 * (length > 0)  # extra draws make up for repeats
    user = np.repeat(np.arange(n), draws)
    p = (1 - sample.HISTORY_NOISE) * affinity + sample.HISTORY_NOISE * sample.topic_prior()
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    # One search over every user's CDF laid end to end: user r's runs over (r, r + 1].
    flat = (cdf + np.arange(n)[:, None]).ravel()
    where = np.searchsorted(flat, user + rng.random(len(user)), side="right")
    topic = np.minimum(where - user * len(lo), len(lo) - 1)
    start = np.where(lo[topic] > 0, cum[lo[topic] - 1], 0.0)
    target = start + rng.random(len(user)) * (cum[hi[topic] - 1] - start)
    pick = np.clip(np.searchsorted(cum, target, side="right"), lo[topic], hi[topic] - 1)
    item = archive[pick]
    keep = _first_occurrences(user, item, len(news.day))
    keep &= _rank_in_group(keep, draws) < length[user]
    user, item = user[keep], item[keep]
    order = np.lexsort((item, news.day[item], user))
    return np.bincount(user, minlength=n), item[order]


def _first_occurrences(group: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    keep = np.zeros(len(item), dtype=bool)
    keep[np.unique(group.astype(np.int64) * n_items + item, return_index=True)[1]] = True
    return keep


def _rank_in_group(keep: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """For consecutive groups of `sizes` entries: how many kept entries precede each one."""
    kept = np.cumsum(keep) - keep
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    before = kept[np.minimum(starts, len(keep) - 1)] if len(keep) else starts
    return kept - np.repeat(before, sizes)


def _token_text(ids: np.ndarray, items: np.ndarray, tail: bytes = b"") -> np.ndarray:
    """[len(items), width] bytes: each item's ID, `tail`, then a space."""
    extra = np.frombuffer(tail + b" ", dtype=np.uint8)
    tokens = np.empty((len(items), ids.shape[1] + len(extra)), dtype=np.uint8)
    tokens[:, : ids.shape[1]] = ids[items]
    tokens[:, ids.shape[1] :] = extra
    return tokens


def make_users(size: Size, seed: int, news: News) -> Users:
    rng = np.random.default_rng([seed, 3])
    n = size.users
    ids = [u.encode() for u in _fixed_ids(rng, "U", n)]
    activity = rng.lognormal(-(ACTIVITY_SIGMA**2) / 2, ACTIVITY_SIGMA, size=n)
    sampler = _archive_sampler(news)
    affinity = np.empty((n, len(sample.TOPICS)), dtype=np.float32)
    lengths, items = [], []
    for block, s in enumerate(range(0, n, USER_CHUNK)):
        block_rng = np.random.default_rng([seed, 4, block])
        affinity[s : s + USER_CHUNK] = _affinity(block_rng, min(USER_CHUNK, n - s))
        length, item = _histories(block_rng, affinity[s : s + USER_CHUNK], news, sampler)
        lengths.append(length)
        items.append(item.astype(np.int32))
    length = np.concatenate(lengths)
    history_items = np.concatenate(items)
    start = np.concatenate([[0], np.cumsum(length)])
    width = news.ids.shape[1] + 1
    text_start = start * width - np.concatenate([[0], np.cumsum(length > 0)])
    text = _token_text(news.ids, history_items).ravel()
    # Drop each history's trailing space: keep every byte but the last of each non-empty one.
    last = (start[1:][length > 0]) * width - 1
    keep = np.ones(len(text), dtype=bool)
    keep[last] = False
    owner = np.repeat(np.arange(n), length)
    oldest_candidate_day = -(len(RECENCY) - 1)
    recent = news.day[history_items] >= oldest_candidate_day
    keys = np.sort(owner[recent].astype(np.int64) * len(news.day) + history_items[recent])
    return Users(
        ids, affinity, np.cumsum(activity), start, history_items,
        text[keep].tobytes(), text_start, keys,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Impressions


@dataclasses.dataclass
class Pools:
    """Candidate pools of a split's days, back to back, with per-day cumulative weights."""

    items: np.ndarray
    cum: np.ndarray  # day slot j's weights run over (j, j + 1]
    lo: np.ndarray
    hi: np.ndarray


def make_pools(news: News, days: tuple[int, ...]) -> Pools:
    items, cums, lo, hi = [], [], [], []
    for j, d in enumerate(days):
        lag = d - news.day.astype(np.int64)
        pool = np.flatnonzero((lag >= 0) & (lag < len(RECENCY)))
        weight = np.asarray(RECENCY)[lag[pool]] * news.exposure[pool]
        lo.append(sum(len(p) for p in items))
        items.append(pool)
        cums.append(j + np.cumsum(weight) / weight.sum())
        hi.append(lo[-1] + len(pool))
    return Pools(np.concatenate(items), np.concatenate(cums), np.array(lo), np.array(hi))


@dataclasses.dataclass
class Chunk:
    """A block of impressions; candidates are flat, grouped by impression in display order."""

    user: np.ndarray
    day: np.ndarray
    second: np.ndarray
    counts: np.ndarray
    news: np.ndarray
    labels: np.ndarray
    clicks: np.ndarray


def _candidates(
    rng: np.random.Generator, pools: Pools, slot: np.ndarray, user: np.ndarray, news: News,
    users: Users,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(impression, news) of each candidate: drawn by weight, no repeats, none in the history."""
    n = np.clip(
        np.rint(
            np.exp(np.log(CANDIDATE_MEDIAN) + CANDIDATE_SIGMA * rng.standard_normal(len(slot)))
        ),
        *CANDIDATE_RANGE,
    ).astype(np.int64)
    draws = n + (n + 3) // 4 + 2
    imp = np.repeat(np.arange(len(slot)), draws)
    x = slot[imp] + rng.random(len(imp))
    day_slot = slot[imp]
    idx = np.clip(
        np.searchsorted(pools.cum, x, side="right"), pools.lo[day_slot], pools.hi[day_slot] - 1
    )
    item = pools.items[idx]
    n_news = len(news.day)
    keep = _first_occurrences(imp, item, n_news)
    old = np.flatnonzero(keep & (news.day[item] < 0))
    if len(old) and len(users.recent_history_keys):
        keys = user[imp[old]].astype(np.int64) * n_news + item[old]
        where = np.minimum(
            np.searchsorted(users.recent_history_keys, keys), len(users.recent_history_keys) - 1
        )
        keep[old[users.recent_history_keys[where] == keys]] = False
    keep &= _rank_in_group(keep, draws) < n[imp]
    imp, item = imp[keep], item[keep]
    short = np.flatnonzero(np.bincount(imp, minlength=len(slot)) < 2)
    if len(short):  # tiny pools with one dominant article: top up from the pool, rarely
        imp, item = _top_up(rng, pools, slot, user, users, imp, item, short)
    return imp, item


def _top_up(
    rng: np.random.Generator, pools: Pools, slot: np.ndarray, user: np.ndarray, users: Users,
    imp: np.ndarray, item: np.ndarray, short: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    extra_imp, extra_item = [], []
    for i in short.tolist():
        have = set(item[imp == i].tolist())
        hist = users.history_items[users.history_start[user[i]] : users.history_start[user[i] + 1]]
        pool = pools.items[pools.lo[slot[i]] : pools.hi[slot[i]]]
        for c in rng.permutation(pool).tolist():
            if len(have) >= 2:
                break
            if c not in have and c not in hist:
                have.add(c)
                extra_imp.append(i)
                extra_item.append(c)
    imp = np.concatenate([imp, np.asarray(extra_imp, dtype=imp.dtype)])
    item = np.concatenate([item, np.asarray(extra_item, dtype=item.dtype)])
    order = np.argsort(imp, kind="stable")
    return imp[order], item[order]


def _utility(users: Users, news: News, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """The click model's score without its noise: interest plus the article's appeal."""
    return sample.BETA * _interest(users, news, user, item) + sample.GAMMA * news.quality[item]


def _interest(users: Users, news: News, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    return np.log(users.affinity[user, news.topic[item]].astype(np.float64))


def make_chunk(
    rng: np.random.Generator, count: int, days: tuple[int, ...], pools: Pools, news: News,
    users: Users,
) -> Chunk:  # fmt: skip
    cdf = users.activity_cdf
    user = np.minimum(np.searchsorted(cdf, rng.random(count) * cdf[-1], side="right"), len(cdf) - 1)
    slot = rng.integers(len(days), size=count)
    hours = np.cumsum(sample.HOURLY_ACTIVITY) / sum(sample.HOURLY_ACTIVITY)
    hour = np.minimum(np.searchsorted(hours, rng.random(count), side="right"), 23)
    second = hour * 3600 + rng.integers(3600, size=count)
    imp, item = _candidates(rng, pools, slot, user, news, users)
    counts = np.bincount(imp, minlength=count)
    scale = counts / CANDIDATE_MEAN
    clicks = np.minimum(1 + rng.poisson(EXTRA_CLICKS * scale), counts - 1)
    utility = _utility(users, news, user[imp], item) + rng.gumbel(size=len(item))
    order = np.lexsort((-utility, imp))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(item), dtype=np.int64)
    rank[order] = np.arange(len(item)) - starts[imp[order]]
    labels = rank < clicks[imp]
    return Chunk(user, np.asarray(days)[slot], second, counts, item, labels, clicks)


# ---------------------------------------------------------------------------------------------
# Writing


def _clock_texts() -> list[bytes]:
    """MIND's clock format for every second of a day: 9:05:07 AM (hours not zero-padded)."""
    out = []
    for second in range(86400):
        hour, rest = divmod(second, 3600)
        minute, sec = divmod(rest, 60)
        out.append(
            f"{hour % 12 or 12}:{minute:02d}:{sec:02d} {'AM' if hour < 12 else 'PM'}".encode()
        )
    return out


def _date_text(day: int) -> bytes:
    d = sample.FIRST_DAY + timedelta(days=day)
    return f"{d.month}/{d.day}/{d.year}".encode()


def _slices(counts: np.ndarray, width: int) -> tuple[list[int], list[int]]:
    """Byte ranges of consecutive groups of `counts` tokens of `width` bytes, last byte cut."""
    ends = np.cumsum(counts) * width
    return (ends - counts * width).tolist(), (ends - (counts > 0)).tolist()


def behavior_lines(
    chunk: Chunk, first_id: int, news: News, users: Users, labelled: bool, clocks: list[bytes]
) -> bytes:
    """The chunk's behaviors.tsv lines, numbered from `first_id`."""
    tokens = _token_text(news.ids, chunk.news, b"-0" if labelled else b"")
    if labelled:
        tokens[:, -2] += chunk.labels.astype(np.uint8)
    text = tokens.tobytes()
    starts, ends = _slices(chunk.counts, tokens.shape[1])
    dates = {d: _date_text(d) for d in np.unique(chunk.day).tolist()}
    day = [dates[d] for d in chunk.day.tolist()]
    clock = [clocks[s] for s in chunk.second.tolist()]
    user_id = [users.ids[u] for u in chunk.user.tolist()]
    hs = users.history_text_start[chunk.user].tolist()
    he = users.history_text_start[chunk.user + 1].tolist()
    history = users.history_text
    return b"".join(
        [
            b"%d\t%b\t%b %b\t%b\t%b\n"
            % (
                first_id + i,
                user_id[i],
                day[i],
                clock[i],
                history[hs[i] : he[i]],
                text[starts[i] : ends[i]],
            )
            for i in range(len(day))
        ]
    )


def truth_lines(chunk: Chunk, first_id: int) -> bytes:
    """The MIND competition's truth file lines: `1 [0,1,0]`."""
    tokens = np.empty((len(chunk.labels), 2), dtype=np.uint8)
    tokens[:, 0] = ord("0") + chunk.labels
    tokens[:, 1] = ord(",")
    text = tokens.tobytes()
    starts, ends = _slices(chunk.counts, 2)
    return b"".join(
        [b"%d [%b]\n" % (first_id + i, text[starts[i] : ends[i]]) for i in range(len(starts))]
    )


def write_news(path: Path, news: News, used: np.ndarray, blank_categories: bool) -> None:
    used = used[np.argsort(news.write_rank[used], kind="stable")]
    ids = news.ids.view(f"S{news.ids.shape[1]}").ravel()
    with open(path, "wb") as f:
        for i in used.tolist():
            category = b"\t" if blank_categories else news.categories[i]
            f.write(b"%b\t%b\t%b" % (ids[i], category, news.texts[i]))


# ---------------------------------------------------------------------------------------------
# Statistics


def impression_aucs(counts: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each impression (candidates flat, grouped by impression); ties count half.

    The mean of these is MIND's AUC. An impression without both a click and a skip gets NaN.
    """
    imp = np.repeat(np.arange(len(counts)), counts)
    order = np.lexsort((scores, imp))
    s, i = scores[order], imp[order]
    new = np.ones(len(s), dtype=bool)
    new[1:] = (s[1:] != s[:-1]) | (i[1:] != i[:-1])
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:], [len(s)]]) - 1
    group = np.cumsum(new) - 1
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = (first[group] + last[group]) / 2 - starts[i] + 1  # 1-based mid-ranks
    y = labels[order].astype(np.float64)
    pos = np.bincount(i, weights=y, minlength=len(counts))
    neg = counts - pos
    rank_sum = np.bincount(i, weights=rank * y, minlength=len(counts))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def _spread(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99]).tolist()
    return {
        "mean": float(np.mean(values)), "p50": p50, "p90": p90, "p99": p99,
        "max": float(np.max(values)),
    }  # fmt: skip


class SplitStats:
    """What a split's files hold, accumulated chunk by chunk."""

    def __init__(self, n_news: int, n_users: int) -> None:
        self.history: list[np.ndarray] = []
        self.candidates: list[np.ndarray] = []
        self.clicks: list[np.ndarray] = []
        self.users = np.zeros(n_users, dtype=bool)
        self.news = np.zeros(n_news, dtype=bool)
        self.candidate_news = np.zeros(n_news, dtype=bool)
        self.clicks_per_news = np.zeros(n_news, dtype=np.int64)
        self.auc: dict[str, float] = {}
        self.unseen = 0

    def add(self, chunk: Chunk, users: Users) -> None:
        lengths = np.diff(users.history_start)[chunk.user]
        self.history.append(lengths.astype(np.int32))
        self.candidates.append(chunk.counts.astype(np.int32))
        self.clicks.append(chunk.clicks.astype(np.int32))
        self.users[chunk.user] = True
        self.candidate_news[chunk.news] = True
        self.clicks_per_news += np.bincount(chunk.news[chunk.labels], minlength=len(self.news))

    def finish(self, users: Users) -> None:
        seen = np.flatnonzero(self.users)
        self.news[users.history_items[_expand(users.history_start, seen)]] = True
        self.news |= self.candidate_news

    def summary(self, labelled: bool) -> dict:
        history = np.concatenate(self.history)
        candidates = np.concatenate(self.candidates)
        clicks = np.concatenate(self.clicks)
        out = {
            "impressions": len(candidates),
            "users": int(self.users.sum()),
            "news": int(self.news.sum()),
            "history_length": {
                **_spread(history),
                f"mean_clipped_{HISTORY_CAP}": float(np.minimum(history, HISTORY_CAP).mean()),
                "empty_share": float((history == 0).mean()),
                f"over_{HISTORY_CAP}_share": float((history > HISTORY_CAP).mean()),
            },
            "candidates": _spread(candidates),
        }
        if labelled:
            # Zipf-like popularity: the share of clicks that the top 1% of the split's news get.
            top = np.sort(self.clicks_per_news)[::-1][: max(1, int(self.news.sum()) // 100)]
            out["clicks_per_impression"] = float(clicks.mean())
            out["click_rate"] = float(clicks.sum() / candidates.sum())
            out["top1pct_news_click_share"] = float(top.sum() / max(1, clicks.sum()))
        return out


def _expand(start: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices of the entries of `rows`, for groups laid out by `start` offsets."""
    lengths = start[rows + 1] - start[rows]
    offsets = np.repeat(start[rows] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(lengths.sum()) + offsets


# ---------------------------------------------------------------------------------------------
# Driver


def make_split(
    name: str, size: Size, seed: int, news: News, users: Users, out: Path | None,
    train: SplitStats | None, blank_categories: bool, clocks: list[bytes],
) -> SplitStats:  # fmt: skip
    """Generates one split chunk by chunk; writes it to out/name unless out is None."""
    days = SPLIT_DAYS[name]
    pools = make_pools(news, days)
    stats = SplitStats(len(news.day), size.users)
    labelled = name != "test"
    total = size.impressions(name)
    started = time.perf_counter()
    aucs: dict[str, list[np.ndarray]] = {"oracle": [], "interest": [], "popularity": []}
    with contextlib.ExitStack() as files:
        behaviors = truth = None
        if out is not None:
            (out / name).mkdir(parents=True, exist_ok=True)
            behaviors = files.enter_context(open(out / name / BEHAVIORS_FILE, "wb"))
            if not labelled:
                truth = files.enter_context(open(out / TRUTH_FILE, "wb"))
        for c, first in enumerate(range(0, total, IMPRESSION_CHUNK)):
            rng = np.random.default_rng([seed, 10 + SPLITS.index(name), c])
            count = min(IMPRESSION_CHUNK, total - first)
            chunk = make_chunk(rng, count, days, pools, news, users)
            stats.add(chunk, users)
            if behaviors is not None:
                behaviors.write(behavior_lines(chunk, first + 1, news, users, labelled, clocks))
            if truth is not None:
                truth.write(truth_lines(chunk, first + 1))
            if train is not None:
                stats.unseen += int((~train.news[chunk.news]).sum())
                user = np.repeat(chunk.user, chunk.counts)
                scores = {
                    "oracle": _utility(users, news, user, chunk.news),
                    "interest": _interest(users, news, user, chunk.news),
                    "popularity": train.clicks_per_news[chunk.news].astype(np.float64),
                }
                for key, score in scores.items():
                    aucs[key].append(impression_aucs(chunk.counts, chunk.labels, score))
            done = first + count
            if done == total or (c + 1) % 10 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  {name}: {done:,}/{total:,} impressions ({rate:,.0f}/s)", flush=True)
    stats.finish(users)
    stats.auc = {k: float(np.nanmean(np.concatenate(v))) for k, v in aucs.items() if v}
    if out is not None:
        write_news(out / name / NEWS_FILE, news, np.flatnonzero(stats.news), blank_categories)
    return stats


def generate(
    out: Path, size: Size, seed: int = DEFAULT_SEED, splits: tuple[str, ...] | None = None,
    blank_categories: bool = False,
) -> dict:  # fmt: skip
    """Writes the asked splits (all the size has) under `out` and out/stats.json.

    Returns the statistics written to stats.json.
    """
    if splits is None:
        splits = tuple(s for s in SPLITS if size.impressions(s))
    for name in splits:
        if not size.impressions(name):
            raise ValueError(f"--splits: this size has no {name} impressions (give {name}=N)")
    started = time.perf_counter()
    news = make_news(size, seed)
    print(f"news: {len(news.day):,} in {time.perf_counter() - started:.1f}s", flush=True)
    users = make_users(size, seed, news)
    print(f"users: {size.users:,} in {time.perf_counter() - started:.1f}s", flush=True)
    clocks = _clock_texts()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, SplitStats] = {}
    # Train is always generated: dev's unseen share and popularity ranking are relative to it.
    for name in ("train", *(s for s in SPLITS if s in splits and s != "train")):
        results[name] = make_split(
            name, size, seed, news, users, out if name in splits else None,
            results.get("train") if name == "dev" else None, blank_categories, clocks,
        )  # fmt: skip
    stats = summarise(size, seed, splits, blank_categories, news, results)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(f"wrote {out} in {time.perf_counter() - started:.1f}s", flush=True)
    return stats


def summarise(
    size: Size, seed: int, splits: tuple[str, ...], blank_categories: bool, news: News,
    results: dict[str, SplitStats],
) -> dict:  # fmt: skip
    written = np.zeros(len(news.day), dtype=bool)
    for name in splits:
        written |= results[name].news
    used = np.flatnonzero(written)
    titles = [news.texts[i].split(b"\t", 1)[0] for i in used.tolist()]
    abstract_words = news.abstract_words[used]
    stats: dict = {
        "size": dataclasses.asdict(size),
        "seed": seed,
        "splits": list(splits),
        "blank_categories": blank_categories,
        "news": {
            "total": len(used),
            "title_words": _spread(news.title_words[used]),
            "abstract_words": _spread(abstract_words),
            "empty_abstract_share": float((abstract_words == 0).mean()),
            "distinct_title_share": len(set(titles)) / max(1, len(titles)),
        },
        "users_total": int(np.any([results[s].users for s in splits], axis=0).sum()),
    }
    for name in splits:
        stats[name] = results[name].summary(labelled=name != "test")
    if "dev" in results:
        dev, train = results["dev"], results["train"]
        stats["dev"]["unseen_candidate_share"] = dev.unseen / int(
            np.concatenate(dev.candidates).sum()
        )
        unseen_news = dev.candidate_news & ~train.news
        stats["dev"]["unseen_candidate_news_share"] = float(
            unseen_news.sum() / dev.candidate_news.sum()
        )
        stats["dev"]["auc"] = dev.auc
    return stats


def print_stats(stats: dict, prefix: str = "") -> None:
    for key, value in stats.items():
        if isinstance(value, dict):
            print_stats(value, f"{prefix}{key}.")
        elif isinstance(value, float):
            print(f"{prefix}{key}: {value:.4g}")
        else:
            print(f"{prefix}{key}: {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="small, large, a fraction, overrides")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--splits", default=None, help="comma-separated: train,dev,test")
    parser.add_argument(
        "--blank-categories", action="store_true", help="empty category/subcategory columns"
    )
    args = parser.parse_args(argv)
    try:
        size = parse_size(args.size)
    except ValueError as err:
        parser.error(str(err))
    splits = None
    if args.splits is not None:
        splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
        unknown = [s for s in splits if s not in SPLITS]
        if unknown or not splits:
            parser.error(f"--splits: expected names from {','.join(SPLITS)}, got {args.splits!r}")
        splits = tuple(s for s in SPLITS if s in splits)
    try:
        stats = generate(args.out, size, args.seed, splits, args.blank_categories)
    except ValueError as err:
        parser.error(str(err))
    print_stats(stats)


if __name__ == "__main__":
    main()
