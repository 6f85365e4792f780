"""Write a small synthetic movie-rating dataset in the exact MovieLens 100K format.

    python scripts/make_movielens_sample.py [--out DIR] [--seed N]

Writes u.data, u.item, u.user, u.genre, u.occupation, u.info and the first of GroupLens's five
cross-validation folds (u1.base, u1.test), laid out like the ml-100k release (Latin-1, no
header, ``|`` or tab separated), so the readers and the rating model can be exercised without
downloading MovieLens. The other folds (u2-u5, ua, ub) are left out to keep the sample small.

The ratings are learnable, and partly from text: rating = clip(round(mean + user bias +
movie bias + affinity + noise), 1, 5), where the affinity of a user for a movie is the mean,
over the movie's genres, of a user-genre preference that depends on the user's occupation,
age group and gender (all in u.user) plus an individual part. Titles are made of words typical
of their genres, so a title also hints at its genres. Users pick movies by popularity and by
affinity, as people do, and each rates at least 20.

The output depends only on the seed (numpy's default_rng); the same seed gives byte-identical
files. Only numpy and the standard library are used.
"""

from __future__ import annotations

import argparse
import urllib.parse
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "jaxrec" / "data" / "samples" / "movielens100k"
DEFAULT_SEED = 19980422

N_USERS = 300
N_MOVIES = 400
MIN_RATINGS = 20
EXTRA_RATINGS_MEAN = 30  # ratings per user = 20 + exponential(30): mean ~50, a long tail
N_FOLDS = 5
# Rating times fall between the first and the last timestamp of ml-100k.
FIRST_TIME, LAST_TIME = 874724710, 893286638

MEAN_RATING = 3.0
USER_BIAS_SD = 0.45
MOVIE_BIAS_SD = 0.45
AFFINITY_SCALE = 1.5
OWN_TASTE_SD = 0.35  # the individual part of a user's genre preferences
NOISE_SD = 0.8
CHOICE_AFFINITY = 0.7  # how much affinity, beside popularity, drives which movies get rated

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

# Title words by genre. A few carry Latin-1 letters, as ml-100k titles do.
TITLE_WORDS = {
    "Action": "Bullet|Fury|Strike Force|Vengeance|Hard Target|Blast|Showdown|Firestorm|Payback",
    "Adventure": "Quest|Lost Island|Treasure|Journey|Expedition|Jungle|Voyage|Temple|Safari",
    "Animation": "Toon|Cartoon|Little Kingdom|Magic Forest|Tiny Heroes|Paper Moon|Doodle",
    "Children's": "Puppy|Kids|Secret Garden|Family Pet|Little Rascal|Playground|Teddy",
    "Comedy": "Crazy|Wedding|Mess|Dumb Luck|Party|Weekend|Trouble|Goofball|Roommates",
    "Crime": "Heist|Mob|Gangster|Deal|Mean Streets|Caper|Racket|Hitman|Getaway",
    "Documentary": "Story|Portrait|Inside|Voices|Chronicle|Witnesses|True Life|Archive",
    "Drama": "Letters|Winter|Father|River|Promise|Silence|Homecoming|Café|Montréal",
    "Fantasy": "Dragon|Wizard|Sword|Enchanted|Sorcerer|Unicorn|Spellbound",
    "Film-Noir": "Shadow|Dark City|Night|Double Cross|Dame|Stranger|Smoke|Alley",
    "Horror": "Blood|Nightmare|Haunting|Scream|Dead|Curse|Zombie|Crypt|Possessed",
    "Musical": "Song|Dance|Melody|Broadway|Rhythm|Encore|Chorus Line|Serenade",
    "Mystery": "Clue|Vanishing|Secret|Riddle|Witness|Enigma|Missing|Puzzle",
    "Romance": "Love|Kiss|Heart|Paris|Sweetheart|Affair|Honeymoon|Soirée|Amour",
    "Sci-Fi": "Galaxy|Robot|Star|Alien|Planet|Cyber|Future|Orbit|Android|Warp",
    "Thriller": "Fear|Deadline|Hunted|Edge|Conspiracy|Trap|Pursuit|Target|Panic",
    "War": "Battalion|Front Line|Soldier|Beachhead|Glory|Platoon|Bunker|Armistice",
    "Western": "Outlaw|Sheriff|Rider|Gunfight|Frontier|Canyon|Ranch|Stagecoach|Rodeo",
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

_TECH = {"Sci-Fi": 1.0, "Action": 0.5, "Thriller": 0.4, "Romance": -0.5, "Musical": -0.6}
_ARTS = {"Drama": 0.6, "Film-Noir": 0.8, "Documentary": 0.8, "Action": -0.5, "Horror": -0.4}
_BUSINESS = {"Crime": 0.6, "Mystery": 0.5, "Thriller": 0.4, "Sci-Fi": -0.3, "Animation": -0.3}
_HEALTH = {"Drama": 0.4, "Mystery": 0.5, "Horror": -0.6}
GENRE_TASTE = {
    "occupation": {
        "programmer": _TECH, "engineer": _TECH, "technician": _TECH, "scientist": _TECH,
        "artist": _ARTS, "writer": _ARTS, "librarian": _ARTS, "educator": _ARTS,
        "entertainment": _ARTS | {"Musical": 0.6},
        "administrator": _BUSINESS, "executive": _BUSINESS, "marketing": _BUSINESS,
        "salesman": _BUSINESS, "lawyer": _BUSINESS | {"Crime": 0.9},
        "doctor": _HEALTH, "healthcare": _HEALTH,
        "student": {"Comedy": 0.6, "Horror": 0.5, "Action": 0.4, "Animation": 0.3,
                    "Documentary": -0.5, "Western": -0.5},
        "retired": {"Western": 0.8, "War": 0.7, "Musical": 0.4, "Horror": -0.7, "Sci-Fi": -0.4},
        "homemaker": {"Children's": 0.8, "Romance": 0.6, "Musical": 0.5, "Horror": -0.5},
    },
    "age": {
        "young": {"Comedy": 0.4, "Horror": 0.4, "Animation": 0.3, "War": -0.3, "Film-Noir": -0.4},
        "middle": {"Action": 0.2, "Thriller": 0.2},
        "old": {"War": 0.4, "Western": 0.4, "Film-Noir": 0.3, "Horror": -0.4, "Animation": -0.3},
    },
    "gender": {
        "F": {"Romance": 0.5, "Musical": 0.3, "Children's": 0.2, "War": -0.3, "Action": -0.2},
        "M": {"Action": 0.2, "War": 0.2, "Sci-Fi": 0.2, "Romance": -0.2},
    },
}  # fmt: skip

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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


def user_tastes(users: list[dict], rng: np.random.Generator) -> np.ndarray:
    """[users, genres] preference: occupation + age group + gender + an individual part."""
    taste = rng.normal(0.0, OWN_TASTE_SD, (len(users), len(GENRES)))
    taste[:, 0] = 0.0  # nobody prefers "unknown"
    for row, user in enumerate(users):
        for table, key in (
            ("occupation", user["occupation"]),
            ("age", age_group(user["age"])),
            ("gender", user["gender"]),
        ):
            for genre, value in GENRE_TASTE[table].get(key, {}).items():
                taste[row, GENRES.index(genre)] += value
    return taste


def make_movies(rng: np.random.Generator) -> list[dict]:
    genre_names = list(GENRE_SHARE)
    shares = np.array(list(GENRE_SHARE.values()))
    words = {genre: text.split("|") for genre, text in TITLE_WORDS.items()}
    movies: list[dict] = []
    titles: set[str] = set()
    unknown_at = int(rng.integers(N_MOVIES // 2, N_MOVIES))  # ml-100k has such a row mid-file
    for movie_id in range(1, N_MOVIES + 1):
        if movie_id == unknown_at:
            movies.append({"id": movie_id, "title": "unknown", "genres": ["unknown"], "year": None})
            continue
        k = int(rng.choice(GENRES_PER_MOVIE[0], p=GENRES_PER_MOVIE[1]))
        picks = rng.choice(len(genre_names), k, replace=False, p=shares / shares.sum())
        genres = [genre_names[i] for i in picks]
        year = int(rng.integers(1990, 1999) if rng.random() < 0.6 else rng.integers(1930, 1990))
        while True:
            title = make_title(rng, words, genres)
            if title not in titles:
                break
        titles.add(title)
        movies.append({"id": movie_id, "title": title, "genres": genres, "year": year})
    return movies


def make_title(rng: np.random.Generator, words: dict[str, list[str]], genres: list[str]) -> str:
    pattern = TITLE_PATTERNS[rng.integers(len(TITLE_PATTERNS))]
    a = rng.choice(words[genres[0]])
    b = rng.choice(words[genres[int(rng.integers(len(genres)))]])
    title = pattern.format(a=a, b=b)
    # GroupLens moves a leading article to the end: "Usual Suspects, The".
    return f"{title[4:]}, The" if title.startswith("The ") else title


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


def make_ratings(
    users: list[dict], movies: list[dict], rng: np.random.Generator
) -> list[tuple[int, int, int, int]]:
    """(user, movie, rating, timestamp) rows: who rates what, and how."""
    taste = user_tastes(users, rng)
    genre_matrix = np.zeros((len(movies), len(GENRES)))
    for row, movie in enumerate(movies):
        for genre in movie["genres"]:
            genre_matrix[row, GENRES.index(genre)] = 1.0 / len(movie["genres"])
    affinity = AFFINITY_SCALE * taste @ genre_matrix.T  # [users, movies]
    user_bias = rng.normal(0.0, USER_BIAS_SD, len(users))
    movie_bias = rng.normal(0.0, MOVIE_BIAS_SD, len(movies))
    log_popularity = rng.normal(0.0, 1.0, len(movies)) + 1.5 * movie_bias  # good films spread

    counts = MIN_RATINGS + rng.exponential(EXTRA_RATINGS_MEAN, len(users)).astype(int)
    chosen = np.zeros((len(users), len(movies)), dtype=bool)
    for u, n in enumerate(np.minimum(counts, len(movies))):
        # Gumbel top-k: n movies without replacement, with weights popularity * exp(affinity).
        keys = log_popularity + CHOICE_AFFINITY * affinity[u] + rng.gumbel(size=len(movies))
        chosen[u, np.argsort(-keys)[:n]] = True
    for m in np.flatnonzero(~chosen.any(axis=0)):  # every ml-100k movie has a rating
        chosen[rng.integers(len(users)), m] = True

    users_idx, movies_idx = np.nonzero(chosen)
    noise = rng.normal(0.0, NOISE_SD, len(users_idx))
    latent = MEAN_RATING + user_bias[users_idx] + movie_bias[movies_idx] + noise
    latent += affinity[users_idx, movies_idx]
    ratings = np.clip(np.rint(latent), 1, 5).astype(int)
    # Each user rates within a few weeks, somewhere in the seven months ml-100k covers.
    starts = rng.integers(FIRST_TIME, LAST_TIME - 40 * 86400, len(users))
    times = starts[users_idx] + rng.integers(0, 40 * 86400, len(users_idx))
    return [
        (users[u]["id"], movies[m]["id"], int(r), int(t))
        for u, m, r, t in zip(users_idx, movies_idx, ratings, times, strict=True)
    ]


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(line + "\n" for line in lines).encode("latin-1"))


def rating_lines(rows: list[tuple[int, int, int, int]]) -> list[str]:
    return ["\t".join(map(str, row)) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    users = make_users(rng)
    movies = make_movies(rng)
    ratings = make_ratings(users, movies, rng)
    shuffled = [ratings[i] for i in rng.permutation(len(ratings))]  # u.data is in no order
    fold = np.arange(len(shuffled)) % N_FOLDS  # fold k of the shuffled rows is u{k+1}.test

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / "u.data", rating_lines(shuffled))
    write_lines(out / "u.item", [movie_row(m) for m in movies])
    user_fields = ("id", "age", "gender", "occupation", "zip")
    write_lines(out / "u.user", ["|".join(str(u[f]) for f in user_fields) for u in users])
    # ml-100k's u.genre ends with an empty line.
    write_lines(out / "u.genre", [f"{g}|{i}" for i, g in enumerate(GENRES)] + [""])
    write_lines(out / "u.occupation", sorted(OCCUPATIONS))
    counts = [f"{len(users)} users", f"{len(movies)} items", f"{len(ratings)} ratings"]
    write_lines(out / "u.info", counts)
    # The fold files are sorted by user, then movie, as GroupLens ships them.
    base = sorted(row for row, k in zip(shuffled, fold, strict=True) if k != 0)
    test = sorted(row for row, k in zip(shuffled, fold, strict=True) if k == 0)
    write_lines(out / "u1.base", rating_lines(base))
    write_lines(out / "u1.test", rating_lines(test))
    print(f"wrote {len(users)} users, {len(movies)} movies, {len(ratings)} ratings to {out}")


if __name__ == "__main__":
    main()
