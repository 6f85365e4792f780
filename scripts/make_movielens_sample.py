"""Write a synthetic movie-rating dataset in the exact MovieLens 100K format, and its oracle.

    python scripts/make_movielens_sample.py [--out DIR] [--seed N] [--all-splits] [--compare]

Writes u.data, u.item, u.user, u.genre, u.occupation, u.info and the first of GroupLens's five
cross-validation folds (u1.base, u1.test), laid out like the ml-100k release (Latin-1, no
header, ``|`` or tab separated), so the readers and the rating model can be exercised without
downloading MovieLens. ``--all-splits`` also writes u2-u5, ua and ub (to a folder other than the
bundled one), built as GroupLens's mku.sh builds them: u1-u5.test are the five consecutive
fifths of u.data (disjoint, 20% each), ua.test and ub.test hold each user's first and second ten
ratings in u.data's order; every file is sorted by user, then movie.

The data is shaped like ml-100k, so that what wins on it should win on the real set (the
figures in brackets are ml-100k's):

- Ratings: clip(round(mean + user bias + movie bias + p_u . q_m + noise), 1, 5). The tastes
  p_u, q_m live on six axes; four of them (light, thrill, dark, classic) are partly given by
  what the text shows (a user's occupation, age group and gender; a movie's genres, year and
  title words), the other two only a little, by the title words; the rest of each vector is the
  user's or the film's own, seen only through ratings. The movie bias is partly genre and age
  (the old films still watched are good ones). Like ml-100k's, the text says little beyond
  the biases: demographic x genre means cut a bias model's u1 RMSE by 0.003 [0.002].
- The noise is known: normal, with a sd per user (NOISE_SD * exp(normal(0, NOISE_SD_SPREAD))),
  and now and then (DISAPPOINTMENT) a film disappoints and the noise's mean drops by 2.5. The
  ratings come out about 6% 1s, 12% 2s, 28% 3s, 33% 4s, 20% 5s [6, 11, 27, 34, 21].
- Activity and popularity are skewed: each user rates at least 20 movies (quartiles 32, 70,
  152 [33, 65, 148], a few several hundred); movies are picked by popularity (log-normal,
  flattened at both ends, higher for better and for recent films) and by taste, so about 9% of
  the movies have one rating and a third fewer than 10 [8%, a third], and the rarely rated ones
  are rated lower (2.6 on average for fewer than 5 ratings [2.6]).
- u.data's order is ml-100k's: users join in ID order and each row is drawn from the ratings
  not yet written of the users who have joined, so u1.test holds about half of the users and
  about 40% of their ratings, which makes u1 harder than a random split, as on the real set.

The generator knows its noise, so it writes oracle.json: for every split, the RMSE of the best
prediction any model can make, each test rating's expectation under the generating model
(E[clip(round(mean + noise), 1, 5)], the noise integrated exactly), overall and on the test
rows whose movie has fewer than 5 ratings in the split's base. ``--compare`` prints beside it
the user+item bias baseline that jaxrec prints (damped alternating means) and a plain matrix
factorisation (biased ALS, 5 factors), fitted on the base file. On u1: bias 0.964, MF 0.926,
oracle 0.855 [bias 0.959, the same MF 0.925, best published 0.889].

The output depends only on the seed (numpy's default_rng); the same seed gives byte-identical
files. Only numpy and the standard library are used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import urllib.parse
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "jaxrec" / "data" / "samples" / "movielens100k"
DEFAULT_SEED = 19980422

N_USERS = 600
N_MOVIES = 1000
MIN_RATINGS = 20
# Ratings per user = 20 + gamma(0.6, 150): quartiles 33, 67, 142, mean 107, as in ml-100k.
EXTRA_RATINGS_SHAPE = 0.6
EXTRA_RATINGS_SCALE = 150.0
MAX_RATED_SHARE = 0.45  # ml-100k's most active user rated 44% of the movies
FOLDS = ("u1", "u2", "u3", "u4", "u5")
ALLBUT = {"ua": (1, 10), "ub": (11, 20)}  # a user's n-th to m-th ratings in u.data's order
FEW_RATINGS = 5  # oracle.json reports test rows whose movie has fewer base ratings apart
# u.data's order: the first users are there from the start, the others join one by one until
# this share of the file (ml-100k: about a third, and two thirds).
JOINED_AT_START = 0.32
LAST_JOIN = 0.65
# Rating times fall between the first and the last timestamp of ml-100k.
FIRST_TIME, LAST_TIME = 874724710, 893286638

MEAN_RATING = 3.0
USER_BIAS_SD = 0.36
HARSH_USER_SCALE = 0.3  # minus an exponential: some users are much harsher than the rest
MOVIE_BIAS_SD = 0.45
BAD_MOVIE_SCALE = 0.5  # minus an exponential: a longer tail of poor films than of great ones
NOISE_SD = 0.6  # a user's noise sd is this times exp(normal(0, NOISE_SD_SPREAD))
NOISE_SD_SPREAD = 0.3
# Now and then a film disappoints: with this probability the noise's mean is lower by this much.
DISAPPOINTMENT = (0.06, 2.5)
TASTE_SCALE = 0.26  # p_u . q_m is multiplied by this
USER_OWN_TASTE_SD = 0.65  # the part of a user's axes that the text does not show
MOVIE_OWN_TASTE_SD = 0.55
HIDDEN_TASTE_SD = 0.9  # the two axes no genre shows
WORD_TASTE_SD = 0.3  # each title word's own push on all six axes
POPULARITY_SD = 1.8
# Log-popularity flattens below and above these: even hits are not seen by everyone.
POPULARITY_RANGE = (-3.0, 4.5)
POPULARITY_QUALITY = 2.5  # log-popularity per unit of movie bias
POPULARITY_RECENT = 0.6  # films of the last three years are watched more
CHOICE_TASTE = 0.8  # how much a user's taste, beside popularity, drives what they rate

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# Roughly the share of ml-100k movies in each genre (the "unknown" movie is added apart).
GENRE_SHARE = {
    "Drama": 0.43, "Comedy": 0.30, "Action": 0.15, "Thriller": 0.15, "Romance": 0.15,
    "Adventure": 0.08, "Children's": 0.07, "Crime": 0.07, "Sci-Fi": 0.06, "Horror": 0.05,
    "War": 0.04, "Mystery": 0.04, "Musical": 0.03, "Documentary": 0.03, "Animation": 0.03,
    "Western": 0.02, "Film-Noir": 0.015, "Fantasy": 0.015,
}  # fmt: skip
GENRES_PER_MOVIE = ((1, 2, 3), (0.5, 0.35, 0.15))

# The taste axes; a movie's genres place it on the first four, its year on "classic".
AXES = ("light", "thrill", "dark", "classic", "hidden1", "hidden2")
GENRE_AXES = {
    "Action": {"thrill": 1.0, "light": 0.1},
    "Adventure": {"thrill": 0.7, "light": 0.4},
    "Animation": {"light": 1.0, "dark": -0.6},
    "Children's": {"light": 1.0, "dark": -0.8, "thrill": -0.3},
    "Comedy": {"light": 0.9, "dark": -0.3},
    "Crime": {"dark": 0.8, "thrill": 0.4},
    "Documentary": {"light": -0.8, "classic": 0.3},
    "Drama": {"light": -0.6, "thrill": -0.3},
    "Fantasy": {"light": 0.4, "thrill": 0.3},
    "Film-Noir": {"dark": 0.9, "classic": 0.8, "light": -0.6},
    "Horror": {"dark": 1.0, "thrill": 0.5},
    "Musical": {"light": 0.8, "thrill": -0.7, "classic": 0.4},
    "Mystery": {"dark": 0.6, "thrill": 0.3},
    "Romance": {"light": 0.4, "thrill": -0.7, "dark": -0.4},
    "Sci-Fi": {"thrill": 0.7, "dark": 0.2},
    "Thriller": {"thrill": 0.8, "dark": 0.5},
    "War": {"light": -0.8, "thrill": 0.4, "classic": 0.5},
    "Western": {"classic": 1.0, "thrill": 0.3},
}
# Genre and age effects on a movie's bias (ml-100k's noir, documentaries and war films are rated
# highest, horror and children's films lowest; the old films still shown are the good ones).
GENRE_BIAS = {
    "Film-Noir": 0.3, "Documentary": 0.2, "War": 0.2, "Drama": 0.1, "Mystery": 0.1,
    "Horror": -0.3, "Children's": -0.2, "Fantasy": -0.15, "Action": -0.05,
}  # fmt: skip
OLD_FILM_BIAS = ((1960, 0.3), (1980, 0.15))

# Title words by genre. A few carry Latin-1 letters, as ml-100k titles do.
TITLE_WORDS = {
    "Action": "Bullet|Fury|Strike Force|Vengeance|Hard Target|Blast|Showdown|Firestorm|Payback|"
    "Maximum|Impact|Lethal",
    "Adventure": "Quest|Lost Island|Treasure|Journey|Expedition|Jungle|Voyage|Temple|Safari|"
    "Horizon|Compass",
    "Animation": "Toon|Cartoon|Little Kingdom|Magic Forest|Tiny Heroes|Paper Moon|Doodle|Whiskers",
    "Children's": "Puppy|Kids|Secret Garden|Family Pet|Little Rascal|Playground|Teddy|Pony",
    "Comedy": "Crazy|Wedding|Mess|Dumb Luck|Party|Weekend|Trouble|Goofball|Roommates|Vacation|"
    "Bachelor|Oops",
    "Crime": "Heist|Mob|Gangster|Deal|Mean Streets|Caper|Racket|Hitman|Getaway|Jackpot|Snitch",
    "Documentary": "Story|Portrait|Inside|Voices|Chronicle|Witnesses|True Life|Archive|Notebook",
    "Drama": "Letters|Winter|Father|River|Promise|Silence|Homecoming|Café|Montréal|Daughter|"
    "Harvest|Small Town|Last Summer|Orchard|Widow",
    "Fantasy": "Dragon|Wizard|Sword|Enchanted|Sorcerer|Unicorn|Spellbound|Crown",
    "Film-Noir": "Shadow|Dark City|Night|Double Cross|Dame|Stranger|Smoke|Alley|Rain",
    "Horror": "Blood|Nightmare|Haunting|Scream|Dead|Curse|Zombie|Crypt|Possessed|Cellar",
    "Musical": "Song|Dance|Melody|Broadway|Rhythm|Encore|Chorus Line|Serenade|Tap",
    "Mystery": "Clue|Vanishing|Secret|Riddle|Witness|Enigma|Missing|Puzzle|Manor",
    "Romance": "Love|Kiss|Heart|Paris|Sweetheart|Affair|Honeymoon|Soirée|Amour|Valentine|Moonlight",
    "Sci-Fi": "Galaxy|Robot|Star|Alien|Planet|Cyber|Future|Orbit|Android|Warp|Nebula",
    "Thriller": "Fear|Deadline|Hunted|Edge|Conspiracy|Trap|Pursuit|Target|Panic|Ransom|Sniper",
    "War": "Battalion|Front Line|Soldier|Beachhead|Glory|Platoon|Bunker|Armistice|Convoy",
    "Western": "Outlaw|Sheriff|Rider|Gunfight|Frontier|Canyon|Ranch|Stagecoach|Rodeo|Saddle",
}
TITLE_PATTERNS = ("{a}", "The {a}", "{a} {b}", "The {a} of {b}", "{a} and the {b}", "{a} II")

# ml-100k's 21 occupations with their approximate shares of users.
OCCUPATIONS = {
    "student": 196, "other": 105, "educator": 95, "administrator": 79, "engineer": 67,
    "programmer": 66, "librarian": 51, "writer": 45, "executive": 32, "scientist": 31,
    "artist": 28, "technician": 27, "marketing": 26, "entertainment": 18, "healthcare": 16,
    "retired": 14, "lawyer": 12, "salesman": 12, "none": 9, "homemaker": 7, "doctor": 7,
}  # fmt: skip
AGE_RANGE = {"student": (13, 30), "retired": (55, 73)}  # others: 20-64
FEMALE_SHARE = {"homemaker": 0.85, "librarian": 0.6, "healthcare": 0.7, "engineer": 0.1}

# Where the text places a user on the taste axes.
_TECH = {"thrill": 0.7, "dark": 0.2, "light": -0.2}
_ARTS = {"light": -0.6, "classic": 0.6, "dark": 0.3}
_BUSINESS = {"dark": 0.5, "thrill": 0.3, "classic": -0.2}
_HEALTH = {"dark": -0.5, "light": 0.2}
USER_AXES = {
    "occupation": {
        "programmer": _TECH, "engineer": _TECH, "technician": _TECH, "scientist": _TECH,
        "artist": _ARTS, "writer": _ARTS, "librarian": _ARTS, "educator": _ARTS,
        "entertainment": _ARTS | {"light": 0.3},
        "administrator": _BUSINESS, "executive": _BUSINESS, "marketing": _BUSINESS,
        "salesman": _BUSINESS, "lawyer": _BUSINESS | {"dark": 0.8},
        "doctor": _HEALTH, "healthcare": _HEALTH,
        "student": {"light": 0.5, "dark": 0.4, "thrill": 0.3, "classic": -0.6},
        "retired": {"classic": 0.9, "dark": -0.5, "thrill": -0.4},
        "homemaker": {"light": 0.7, "dark": -0.7, "thrill": -0.3},
    },
    "age": {
        "young": {"light": 0.3, "thrill": 0.2, "classic": -0.5},
        "middle": {"thrill": 0.1},
        "old": {"classic": 0.6, "light": -0.2, "dark": -0.2},
    },
    "gender": {"F": {"thrill": -0.5, "light": 0.3, "dark": -0.2}, "M": {"thrill": 0.2}},
}  # fmt: skip

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclasses.dataclass(frozen=True)
class Sample:
    """A generated data set: the rows of u.data in file order and what made each rating."""

    users: list[dict]
    movies: list[dict]
    rows: np.ndarray  # [n, 4] int64: user ID, movie ID, rating, timestamp
    means: np.ndarray  # [n] float64: mean + biases + taste, before the noise and the rounding
    noise_sd: np.ndarray  # [n] float64: the sd of the normal part of each rating's noise


def age_group(age: int) -> str:
    return "young" if age < 25 else "middle" if age < 45 else "old"


def make_users(rng: np.random.Generator) -> list[dict]:
    names = list(OCCUPATIONS)
    shares = np.array(list(OCCUPATIONS.values()), dtype=float)
    users = []
    for user_id in range(1, N_USERS + 1):
        occupation = names[rng.choice(len(names), p=shares / shares.sum())]
        low, high = AGE_RANGE.get(occupation, (20, 64))
        age = int(rng.integers(low, high + 1))
        gender = "F" if rng.random() < FEMALE_SHARE.get(occupation, 0.28) else "M"
        zip_code = f"{int(rng.integers(1000, 99999)):05d}"
        users.append(
            {"id": user_id, "age": age, "gender": gender, "occupation": occupation, "zip": zip_code}
        )
    return users


def make_movies(rng: np.random.Generator) -> list[dict]:
    genre_names = list(GENRE_SHARE)
    shares = np.array(list(GENRE_SHARE.values()))
    words = {genre: text.split("|") for genre, text in TITLE_WORDS.items()}
    movies: list[dict] = []
    titles: set[str] = set()
    unknown_at = int(rng.integers(N_MOVIES // 4, N_MOVIES // 2))  # ml-100k's is movie 267
    for movie_id in range(1, N_MOVIES + 1):
        if movie_id == unknown_at:
            movies.append(
                {
                    "id": movie_id,
                    "title": "unknown",
                    "genres": ["unknown"],
                    "year": None,
                    "words": [],
                }
            )
            continue
        k = int(rng.choice(GENRES_PER_MOVIE[0], p=GENRES_PER_MOVIE[1]))
        picks = rng.choice(len(genre_names), k, replace=False, p=shares / shares.sum())
        genres = [genre_names[i] for i in picks]
        year = int(rng.integers(1990, 1999) if rng.random() < 0.6 else rng.integers(1930, 1990))
        while True:
            title, used = make_title(rng, words, genres)
            if title not in titles:
                break
        titles.add(title)
        movies.append(
            {"id": movie_id, "title": title, "genres": genres, "year": year, "words": used}
        )
    return movies


def make_title(
    rng: np.random.Generator, words: dict[str, list[str]], genres: list[str]
) -> tuple[str, list[str]]:
    """A title from words typical of the genres, and the words it used."""
    pattern = TITLE_PATTERNS[rng.integers(len(TITLE_PATTERNS))]
    a = str(rng.choice(words[genres[0]]))
    b = str(rng.choice(words[genres[int(rng.integers(len(genres)))]]))
    title = pattern.format(a=a, b=b)
    used = [a, b] if "{b}" in pattern else [a]
    # GroupLens moves a leading article to the end: "Usual Suspects, The".
    return (f"{title[4:]}, The" if title.startswith("The ") else title), used


def movie_row(movie: dict) -> str:
    flags = ["1" if g in movie["genres"] else "0" for g in GENRES]
    if movie["year"] is None:
        return "|".join([str(movie["id"]), "unknown", "", "", "", *flags])
    title = f"{movie['title']} ({movie['year']})"
    day = 1 + movie["id"] % 28
    month = MONTHS[movie["id"] % 12]
    query = urllib.parse.quote(title, safe="(),", encoding="latin-1")
    url = f"http://us.imdb.com/M/title-exact?{query}"
    date = f"{day:02d}-{month}-{movie['year']}"
    return "|".join([str(movie["id"]), title, date, "", url, *flags])


def axis_vector(table: dict[str, float]) -> np.ndarray:
    return np.array([table.get(axis, 0.0) for axis in AXES])


def user_factors(users: list[dict], rng: np.random.Generator) -> np.ndarray:
    """[users, axes]: what occupation, age group and gender imply, plus the user's own part."""
    own_sd = np.where(np.arange(len(AXES)) < 4, USER_OWN_TASTE_SD, HIDDEN_TASTE_SD)
    p = rng.normal(0.0, 1.0, (len(users), len(AXES))) * own_sd
    for row, user in enumerate(users):
        for table, key in (
            ("occupation", user["occupation"]),
            ("age", age_group(user["age"])),
            ("gender", user["gender"]),
        ):
            p[row] += axis_vector(USER_AXES[table].get(key, {}))
    return p


def movie_factors(movies: list[dict], rng: np.random.Generator) -> np.ndarray:
    """[movies, axes]: what genres, year and title words imply, plus the film's own part."""
    vocabulary = sorted({w for text in TITLE_WORDS.values() for w in text.split("|")})
    word_taste = dict(
        zip(vocabulary, rng.normal(0.0, WORD_TASTE_SD, (len(vocabulary), len(AXES))), strict=True)
    )
    own_sd = np.where(np.arange(len(AXES)) < 4, MOVIE_OWN_TASTE_SD, HIDDEN_TASTE_SD)
    q = rng.normal(0.0, 1.0, (len(movies), len(AXES))) * own_sd
    classic = AXES.index("classic")
    for row, movie in enumerate(movies):
        known = [g for g in movie["genres"] if g in GENRE_AXES]
        if known:
            q[row] += np.mean([axis_vector(GENRE_AXES[g]) for g in known], axis=0)
        if movie["year"] is not None:
            q[row, classic] += np.clip((1985 - movie["year"]) / 25, -0.5, 1.5)
        for word in movie["words"]:
            q[row] += word_taste[word] / len(movie["words"])
    return q


def movie_biases(movies: list[dict], rng: np.random.Generator) -> np.ndarray:
    own = rng.normal(0.0, MOVIE_BIAS_SD, len(movies))
    own -= BAD_MOVIE_SCALE * (rng.exponential(1.0, len(movies)) - 1.0)
    shown = np.zeros(len(movies))
    for row, movie in enumerate(movies):
        shown[row] = np.mean([GENRE_BIAS.get(g, 0.0) for g in movie["genres"]])
        for year, bias in OLD_FILM_BIAS:
            if movie["year"] is not None and movie["year"] < year:
                shown[row] += bias
                break
    return own + shown


def generate(seed: int = DEFAULT_SEED) -> Sample:
    """The whole data set for `seed`: who rates what, how, and in which order u.data lists it."""
    rng = np.random.default_rng(seed)
    users = make_users(rng)
    movies = make_movies(rng)
    taste = TASTE_SCALE * user_factors(users, rng) @ movie_factors(movies, rng).T
    user_bias = rng.normal(0.0, USER_BIAS_SD, len(users))
    user_bias -= HARSH_USER_SCALE * (rng.exponential(1.0, len(users)) - 1.0)
    movie_bias = movie_biases(movies, rng)
    recent = np.array([m["year"] is not None and m["year"] >= 1995 for m in movies])
    log_popularity = (
        rng.normal(0.0, POPULARITY_SD, len(movies))
        + POPULARITY_QUALITY * movie_bias
        + POPULARITY_RECENT * recent
    )
    low, high = POPULARITY_RANGE
    log_popularity = low + np.logaddexp(0.0, log_popularity - low)
    log_popularity = high - np.logaddexp(0.0, high - log_popularity)

    extra = rng.gamma(EXTRA_RATINGS_SHAPE, EXTRA_RATINGS_SCALE, len(users))
    counts = np.minimum(MIN_RATINGS + extra.astype(int), int(MAX_RATED_SHARE * len(movies)))
    chosen = np.zeros((len(users), len(movies)), dtype=bool)
    for u, n in enumerate(counts):
        # Gumbel top-k: n movies without replacement, weights popularity * exp(c * taste).
        keys = log_popularity + CHOICE_TASTE * taste[u] + rng.gumbel(size=len(movies))
        chosen[u, np.argsort(-keys)[:n]] = True
    for m in np.flatnonzero(~chosen.any(axis=0)):  # every ml-100k movie has a rating
        chosen[rng.integers(len(users)), m] = True

    users_idx, movies_idx = np.nonzero(chosen)
    means = MEAN_RATING + user_bias[users_idx] + movie_bias[movies_idx]
    means += taste[users_idx, movies_idx]
    noise_sd = NOISE_SD * np.exp(rng.normal(0.0, NOISE_SD_SPREAD, len(users)))[users_idx]
    noise = noise_sd * rng.normal(0.0, 1.0, len(means))
    noise -= DISAPPOINTMENT[1] * (rng.random(len(means)) < DISAPPOINTMENT[0])
    ratings = np.clip(np.rint(means + noise), 1, 5)
    # Most users rate within an hour, some over months (ml-100k: median 50 minutes).
    span = np.exp(rng.uniform(np.log(600), np.log(150 * 86400), len(users))).astype(np.int64)
    starts = rng.integers(FIRST_TIME, LAST_TIME - span)
    times = starts[users_idx] + (rng.random(len(users_idx)) * span[users_idx]).astype(np.int64)
    rows = np.stack(
        [users_idx + 1, movies_idx + 1, ratings.astype(np.int64), times], axis=1
    ).astype(np.int64)
    order = file_order(users_idx, len(users), rng)
    return Sample(users, movies, rows[order], means[order], noise_sd[order])


def file_order(user_of_row: np.ndarray, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """The order of u.data: users join in ID order, each row is a random pending rating of one
    who has joined. Returns row indices, first row first."""
    n = len(user_of_row)
    first_late = int(JOINED_AT_START * n_users)
    joins = np.zeros(n_users, dtype=np.int64)
    joins[first_late:] = (np.linspace(0.0, LAST_JOIN, n_users - first_late + 1)[1:] * n).astype(
        np.int64
    )
    by_user = np.argsort(user_of_row, kind="stable")
    bounds = np.searchsorted(user_of_row[by_user], np.arange(n_users + 1))
    draws = rng.random(n)
    pending: list[int] = []
    order = np.empty(n, dtype=np.int64)
    joined = 0
    for position in range(n):
        while joined < n_users and (joins[joined] <= position or not pending):
            pending.extend(by_user[bounds[joined] : bounds[joined + 1]].tolist())
            joined += 1
        k = int(draws[position] * len(pending))
        pending[k], pending[-1] = pending[-1], pending[k]
        order[position] = pending.pop()
    return order


def split_masks(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each split's test rows as a mask over u.data's rows, as GroupLens's mku.sh cuts them."""
    n = len(rows)
    masks = {}
    for k, name in enumerate(FOLDS):
        mask = np.zeros(n, dtype=bool)
        mask[k * n // len(FOLDS) : (k + 1) * n // len(FOLDS)] = True
        masks[name] = mask
    # allbut.pl: a row's rank among its user's rows, counted in file order from 1.
    by_user = np.argsort(rows[:, 0], kind="stable")
    starts = np.searchsorted(rows[by_user, 0], rows[by_user, 0])
    rank = np.empty(n, dtype=np.int64)
    rank[by_user] = np.arange(n) - starts + 1
    for name, (first, last) in ALLBUT.items():
        masks[name] = (rank >= first) & (rank <= last)
    return masks


def sorted_rows(rows: np.ndarray) -> np.ndarray:
    """By user, then movie, as GroupLens's fold files are."""
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def rating_distribution(means: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """[n, 5] P(clip(round(mean + noise), 1, 5) = 1..5) under the generating noise: normal
    with sd `sd`, its mean lowered by DISAPPOINTMENT[1] with probability DISAPPOINTMENT[0]."""
    share, shift = DISAPPOINTMENT
    edges = np.array([1.5, 2.5, 3.5, 4.5])[None, :]
    erf = np.frompyfunc(math.erf, 1, 1)
    cdf = 0.0
    for weight, center in ((1.0 - share, means), (share, means - shift)):
        z = (edges - center[:, None]) / (sd[:, None] * math.sqrt(2.0))
        cdf = cdf + weight * 0.5 * (1.0 + erf(z).astype(np.float64))
    cdf = np.concatenate([np.zeros((len(means), 1)), cdf, np.ones((len(means), 1))], axis=1)
    return np.diff(cdf, axis=1)


def oracle_predictions(means: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each rating's expectation under the generating model, and its variance."""
    p = rating_distribution(means, sd)
    values = np.arange(1.0, 6.0)
    expectation = p @ values
    return expectation, p @ values**2 - expectation**2


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((prediction - target) ** 2))) if len(target) else float("nan")


def few_ratings(rows: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Mask over the test rows: the movie has fewer than FEW_RATINGS ratings in the base."""
    base_counts = np.bincount(rows[~test, 1], minlength=rows[:, 1].max() + 1)
    return base_counts[rows[test, 1]] < FEW_RATINGS


def oracle_report(sample: Sample) -> dict:
    """What oracle.json holds: per split, the oracle's RMSE on its test rows."""
    expectation, variance = oracle_predictions(sample.means, sample.noise_sd)
    target = sample.rows[:, 2].astype(np.float64)
    splits = {}
    for name, test in split_masks(sample.rows).items():
        few = few_ratings(sample.rows, test)
        splits[name] = {
            "n_test": int(test.sum()),
            "rmse": round(rmse(expectation[test], target[test]), 4),
            "expected_rmse": round(float(np.sqrt(variance[test].mean())), 4),
            "n_few_ratings": int(few.sum()),
            "rmse_few_ratings": round(rmse(expectation[test][few], target[test][few]), 4),
        }
    return {
        "about": (
            "The best RMSE any model can expect on each split's test rows: every rating "
            "predicted by its expectation under the model that generated it, "
            "E[clip(round(mean + noise), 1, 5)] with the noise integrated exactly. rmse is on "
            "the ratings drawn, expected_rmse its expectation over the noise; *_few_ratings: "
            f"test rows whose movie has fewer than {FEW_RATINGS} ratings in the split's base. "
            "Splits other than u1 are written by make_movielens_sample.py --all-splits."
        ),
        "noise": {
            "normal_sd": f"{NOISE_SD} * exp(normal(0, {NOISE_SD_SPREAD})), one per user",
            "disappointment": {"probability": DISAPPOINTMENT[0], "mean_shift": -DISAPPOINTMENT[1]},
        },
        "splits": splits,
    }


# -- What simple models reach, for --compare and the tests. -------------------------------------


def bias_baseline(base: np.ndarray, test: np.ndarray, damp: float = 10.0) -> np.ndarray:
    """jaxrec's baseline (jaxrec/tasks/pair.py): the mean plus damped user and movie biases
    fitted by alternating means, clipped to 1-5; rows are u.data's (user, movie, rating)."""
    users, movies, y = base[:, 0], base[:, 1], base[:, 2].astype(np.float64)
    n_users, n_movies = (
        max(users.max(), test[:, 0].max()) + 1,
        max(movies.max(), test[:, 1].max()) + 1,
    )
    mu = y.mean()
    bu, bi = np.zeros(n_users), np.zeros(n_movies)
    for _ in range(10):
        bi = np.bincount(movies, y - mu - bu[users], n_movies) / (
            np.bincount(movies, None, n_movies) + damp
        )
        bu = np.bincount(users, y - mu - bi[movies], n_users) / (
            np.bincount(users, None, n_users) + damp
        )
    return np.clip(mu + bu[test[:, 0]] + bi[test[:, 1]], 1.0, 5.0)


def _ridge_per_owner(owner: np.ndarray, x: np.ndarray, y: np.ndarray, n: int, reg: np.ndarray):
    """For every owner o, argmin_w sum over its rows (y - x.w)^2 + sum reg * w^2."""
    d = x.shape[1]
    gram = np.zeros((n, d * d))
    np.add.at(gram, owner, (x[:, :, None] * x[:, None, :]).reshape(len(x), d * d))
    rhs = np.zeros((n, d))
    np.add.at(rhs, owner, x * y[:, None])
    return np.linalg.solve(gram.reshape(n, d, d) + np.diag(reg), rhs[..., None])[..., 0]


def matrix_factorization(
    base: np.ndarray,
    test: np.ndarray,
    rank: int = 5,
    l2: float = 10.0,
    l2_bias: float = 5.0,
    iterations: int = 15,
    seed: int = 0,
) -> np.ndarray:
    """Biased matrix factorisation fitted by alternating least squares with L2, clipped to 1-5.

    These settings score RMSE 0.925 on ml-100k's u1 (the bias baseline: 0.959).
    """
    users, movies, y = base[:, 0], base[:, 1], base[:, 2].astype(np.float64)
    n_users, n_movies = (
        max(users.max(), test[:, 0].max()) + 1,
        max(movies.max(), test[:, 1].max()) + 1,
    )
    rng = np.random.default_rng(seed)
    mu = y.mean()
    p, q = rng.normal(0, 0.1, (n_users, rank)), rng.normal(0, 0.1, (n_movies, rank))
    bu, bi = np.zeros(n_users), np.zeros(n_movies)
    reg = np.r_[np.full(rank, l2), l2_bias]
    ones = np.ones((len(y), 1))
    for _ in range(iterations):
        w = _ridge_per_owner(users, np.hstack([q[movies], ones]), y - mu - bi[movies], n_users, reg)
        p, bu = w[:, :rank], w[:, rank]
        w = _ridge_per_owner(movies, np.hstack([p[users], ones]), y - mu - bu[users], n_movies, reg)
        q, bi = w[:, :rank], w[:, rank]
    u, m = test[:, 0], test[:, 1]
    return np.clip(mu + bu[u] + bi[m] + np.sum(p[u] * q[m], axis=1), 1.0, 5.0)


def compare(sample: Sample, names: list[str]) -> list[dict]:
    """RMSE of the bias baseline, the matrix factorisation and the oracle on each split."""
    expectation, _ = oracle_predictions(sample.means, sample.noise_sd)
    masks = split_masks(sample.rows)
    table = []
    for name in names:
        test = masks[name]
        base_rows, test_rows = sample.rows[~test], sample.rows[test]
        target = test_rows[:, 2].astype(np.float64)
        few = few_ratings(sample.rows, test)
        predictions = {
            "bias": bias_baseline(base_rows, test_rows),
            "mf": matrix_factorization(base_rows, test_rows),
            "oracle": expectation[test],
        }
        row = {"split": name, "n_test": len(target), "n_few": int(few.sum())}
        for model, prediction in predictions.items():
            row[model] = rmse(prediction, target)
            row[f"{model}_few"] = rmse(prediction[few], target[few])
        table.append(row)
    return table


# -- Files. -------------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(line + "\n" for line in lines).encode("latin-1"))


def rating_lines(rows: np.ndarray) -> list[str]:
    return ["\t".join(map(str, row)) for row in rows.tolist()]


def write_sample(sample: Sample, out: Path, splits: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / "u.data", rating_lines(sample.rows))
    write_lines(out / "u.item", [movie_row(m) for m in sample.movies])
    user_fields = ("id", "age", "gender", "occupation", "zip")
    write_lines(out / "u.user", ["|".join(str(u[f]) for f in user_fields) for u in sample.users])
    # ml-100k's u.genre ends with an empty line.
    write_lines(out / "u.genre", [f"{g}|{i}" for i, g in enumerate(GENRES)] + [""])
    write_lines(out / "u.occupation", sorted(OCCUPATIONS))
    counts = [f"{len(sample.users)} users", f"{len(sample.movies)} items"]
    write_lines(out / "u.info", [*counts, f"{len(sample.rows)} ratings"])
    masks = split_masks(sample.rows)
    for name in splits:
        write_lines(out / f"{name}.base", rating_lines(sorted_rows(sample.rows[~masks[name]])))
        write_lines(out / f"{name}.test", rating_lines(sorted_rows(sample.rows[masks[name]])))
    report = json.dumps(oracle_report(sample), indent=2, ensure_ascii=False)
    (out / "oracle.json").write_text(report + "\n", encoding="utf-8")


def print_comparison(table: list[dict]) -> None:
    print(f"{'split':6}{'test rows':>10}{'bias':>8}{'MF':>8}{'oracle':>8}   "
          f"movies with <{FEW_RATINGS} base ratings: rows, bias, MF, oracle")  # fmt: skip
    for r in table:
        print(
            f"{r['split']:6}{r['n_test']:>10}{r['bias']:>8.4f}{r['mf']:>8.4f}{r['oracle']:>8.4f}"
            f"   {r['n_few']:>5} {r['bias_few']:.4f} {r['mf_few']:.4f} {r['oracle_few']:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--all-splits", action="store_true", help="also write u2-u5, ua and ub (not in the bundle)"
    )
    parser.add_argument(
        "--compare", action="store_true", help="print bias baseline, MF and oracle RMSE"
    )
    args = parser.parse_args()
    if args.all_splits and args.out.resolve() == DEFAULT_OUT:
        sys.exit("--all-splits: give --out another folder; the bundled sample holds u1 only")
    splits = [*FOLDS, *ALLBUT] if args.all_splits else ["u1"]

    sample = generate(args.seed)
    write_sample(sample, args.out, splits)
    print(
        f"wrote {len(sample.users)} users, {len(sample.movies)} movies, {len(sample.rows)} "
        f"ratings and splits {', '.join(splits)} to {args.out}"
    )
    if args.compare:
        print_comparison(compare(sample, splits))


if __name__ == "__main__":
    main()
