"""Write a synthetic shop dataset in jaxrec's generic interactions format (CSV), and its oracle.

    python scripts/make_ecommerce_sample.py [--out DIR] [--seed N] [--compare]

Writes users.csv (id, age_group, profile), items.csv (id, title, description), and train.csv and
test.csv with the columns user_id, item_id, rating, click, labels, so that one folder serves
the rating, click and multi-label tasks (see jaxrec/data/interactions.py), and oracle.json.

The signal is partly in the text, partly only in the log, as in a real shop:

- Every product belongs to a category and may have some of five attributes (gift-ready, on
  sale, eco-friendly, family size, premium); every shopper has one or two interests and may
  have some of five matching habits. Profiles and descriptions share the words of a category
  or an attribute ("cooking", "gift"), never an ID; but the text tells only part of it: each
  interest, habit and attribute is written down with probability STATED, and the others show
  only in what the shopper does or how the product is used.
- A shopper clicks and rates higher when the product's category is among their interests and
  when their habits meet its attributes; beside that, products have their own appeal and
  quality, shoppers their own propensity, and both a few latent tastes (LATENT_DIMS) that no
  text shows: the collaborative part. A label (gift, sale, eco, family, premium) is likely
  only when the shopper's habit and the product's attribute meet, written down or not.
- Activity and popularity are skewed: shoppers log 8 or more interactions (median about 24, a
  few over 100), picked by popularity (log-normal, more for appealing products) and by
  interest, so a few products are everywhere and many have a handful of rows. NEW_ITEMS of the
  products are new: all their rows are in test, where only their text can help. The rest of
  each shopper's rows are split 80/20 at random between train and test. No pair appears twice.

The generator knows every probability it drew from, so it writes oracle.json: the best figures
any model can expect on test.csv (each click and label predicted by its true probability, each
rating by its expectation E[clip(round(mean + noise), 1, 5)]), overall and on the new products,
with jaxrec's own metrics (jaxrec/pair_metrics.py). ``--compare`` prints beside them the
baselines jaxrec prints: each product's smoothed training rate (clicks, labels) and the damped
user and product biases (ratings).

The output depends only on the seed (numpy's default_rng); the same seed gives byte-identical
files. Besides the standard library it uses numpy and jaxrec.pair_metrics (numpy only).
Text is UTF-8, with a few accented words.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxrec import pair_metrics  # noqa: E402  (after the repo root is on the path)

DEFAULT_OUT = ROOT / "jaxrec" / "data" / "samples" / "ecommerce"
DEFAULT_SEED = 20240601

N_USERS = 300
N_ITEMS = 400
MIN_ROWS = 8
EXTRA_ROWS = (0.9, 25.0)  # rows per shopper = 8 + gamma(shape, scale): median ~24, mean ~30
TEST_SHARE = 0.2
NEW_ITEMS = 0.05  # share of products launched late: all their rows are in test
STATED = 0.75  # chance that an interest, habit or attribute is written in the text
LATENT_DIMS = 3
POPULARITY_SD = 1.1
POPULARITY_APPEAL = 0.8  # log-popularity per unit of click appeal
CHOICE_INTEREST = 1.2  # log-odds of picking a product in one's interests, beside popularity

# Click log-odds: base + interest + per habit met + appeal + propensity + latent taste.
CLICK = {"base": -1.4, "interest": 1.5, "habit": 0.5, "appeal_sd": 0.6, "user_sd": 0.5,
         "latent": 0.45}  # fmt: skip
# Rating: clip(round(base + interest + per habit met + quality + user bias + latent + noise)).
RATING = {"base": 3.15, "interest": 0.7, "habit": 0.25, "quality_sd": 0.4, "user_sd": 0.35,
          "latent": 0.25, "noise_sd": 0.75}  # fmt: skip

CATEGORIES = {
    # keyword (shared by profiles and descriptions), products, description templates
    "kitchen": (
        "cooking",
        "Chef Knife|Cast Iron Skillet|Dutch Oven|Crème Brûlée Torch|Pasta Maker|Spice Rack|"
        "Cutting Board|Stand Mixer|Espresso Grinder",
        "Made for everyday cooking, from quick breakfasts to slow Sunday roasts.|"
        'Serious cooking gear: a 12" size, balanced grip, and easy cleaning.',
    ),
    "outdoors": (
        "hiking",
        "Trail Backpack|Camping Stove|Trekking Poles|Rain Shell|Headlamp|Water Filter|Tent|"
        "Sleeping Bag|Trail Shoes",
        "Built for hiking and camping in any weather.|Light enough for long hiking days, "
        "tough enough for rocky trails.",
    ),
    "electronics": (
        "gaming",
        "Wireless Headset|Mechanical Keyboard|Gaming Mouse|4K Monitor|Controller|Smart Speaker|"
        "USB-C Dock|Webcam|Portable SSD",
        "Low latency and crisp sound for gaming marathons.|A gaming upgrade with "
        "plug-and-play setup, RGB lighting, and a two-year warranty.",
    ),
    "books": (
        "reading",
        "Mystery Novel|Poetry Collection|Cookbook Memoir|History of Rome|Graphic Novel|"
        "Sci-Fi Trilogy|Travel Journal|Short Stories|Biography",
        "A page-turner for quiet evenings of reading.|Critics' pick for reading clubs; "
        "hardcover, 320 pages.",
    ),
    "toys": (
        "playtime",
        "Building Blocks|Puzzle Set|Wooden Train|Plush Bear|Science Kit|Board Game|Kite|"
        "Art Easel|Marble Run",
        "Hours of playtime for curious minds, ages 4 and up.|Screen-free playtime that "
        "grows with your child.",
    ),
    "beauty": (
        "skincare",
        "Face Serum|Night Cream|Clay Mask|Lip Balm|Cleansing Oil|Sunscreen SPF 50|Toner|"
        "Eye Cream|Body Lotion",
        "A gentle step in any skincare routine, for all skin types.|Dermatologist-tested "
        "skincare with a light, fresh scent.",
    ),
}
ADJECTIVES = "Classic|Compact|Deluxe|Essential|Everyday|Pro|Modern|Vintage|Ultra|Smart|Mini|Max"

# Label -> (phrase in a product description, phrase in a shopper's profile).
LABELS = {
    "gift": ("Arrives gift-wrapped, ready to give as a gift.", "Often buys a gift for friends."),
    "sale": ("On sale this week at a discount.", "Rarely pays full price; waits for a sale."),
    "eco": ("Eco-friendly, made from recycled materials.", "Chooses eco-friendly products."),
    "family": ("Family bundle, with enough for the whole family.", "Shops for a big family."),
    "premium": ("Premium materials and a lifetime guarantee.", "Prefers premium brands."),
}
ATTRIBUTE_SHARE = 0.25  # chance a product has each attribute
HABIT_SHARE = 0.3  # chance a shopper has each habit
# P(label): when habit and attribute meet, when only the attribute is there, without it.
LABEL_P = (0.7, 0.1, 0.02)

CITIES = "Zürich|São Paulo|Montréal|Austin|Leeds|Osaka|Lyon|Denver|Kraków|Auckland|Porto|Oslo"
AGE_GROUPS = "18-24|25-34|35-44|45-54|55-64|65+"
OPENERS = ("Lives in {city}. Enjoys {a}", "Based in {city}; into {a}", "{city} local who loves {a}")
QUIET_OPENERS = ("Lives in {city}", "Based in {city}", "{city} local")  # no interest written


def pick(rng: np.random.Generator, options: str | list[str]) -> str:
    values = options.split("|") if isinstance(options, str) else options
    return values[int(rng.integers(len(values)))]


def stated(rng: np.random.Generator, names: list[str]) -> list[str]:
    """The part of `names` the text writes down."""
    return [name for name in names if rng.random() < STATED]


def make_items(rng: np.random.Generator) -> list[dict]:
    names = list(CATEGORIES)
    items = []
    titles: set[str] = set()
    for number in range(1, N_ITEMS + 1):
        category = names[(number - 1) % len(names)]
        _, products, descriptions = CATEGORIES[category]
        while True:
            title = f"{pick(rng, ADJECTIVES)} {pick(rng, products)}"
            if title not in titles:
                break
        titles.add(title)
        attributes = [label for label in LABELS if rng.random() < ATTRIBUTE_SHARE]
        written = stated(rng, attributes)
        description = " ".join([pick(rng, descriptions)] + [LABELS[a][0] for a in written])
        appeal = float(rng.normal(0.0, CLICK["appeal_sd"]))
        items.append(
            {
                "id": f"I{number:04d}",
                "title": title,
                "description": description,
                "category": category,
                "attributes": attributes,
                "appeal": appeal,
                "quality": float(rng.normal(0.0, RATING["quality_sd"])),
                "latent": rng.normal(0.0, 1.0, LATENT_DIMS),
                "log_popularity": float(
                    rng.normal(0.0, POPULARITY_SD) + POPULARITY_APPEAL * appeal
                ),
                "new": bool(rng.random() < NEW_ITEMS),
            }
        )
    order = rng.permutation(len(items))  # categories in no particular order in the file
    return [items[i] for i in order]


def make_users(rng: np.random.Generator) -> list[dict]:
    names = list(CATEGORIES)
    users = []
    for number in range(1, N_USERS + 1):
        k = 1 if rng.random() < 0.5 else 2
        interests = [names[i] for i in rng.choice(len(names), k, replace=False)]
        habits = [label for label in LABELS if rng.random() < HABIT_SHARE]
        written = stated(rng, interests)
        city = pick(rng, CITIES)
        if written:
            words = " and ".join(CATEGORIES[c][0] for c in written)
            opener = OPENERS[int(rng.integers(len(OPENERS)))].format(city=city, a=words)
        else:
            opener = QUIET_OPENERS[int(rng.integers(len(QUIET_OPENERS)))].format(city=city)
        profile = " ".join([opener + "."] + [LABELS[h][1] for h in stated(rng, habits)])
        users.append(
            {
                "id": f"U{number:03d}",
                "age_group": pick(rng, AGE_GROUPS),
                "profile": profile,
                "interests": interests,
                "habits": habits,
                "propensity": float(rng.normal(0.0, CLICK["user_sd"])),
                "bias": float(rng.normal(0.0, RATING["user_sd"])),
                "latent": rng.normal(0.0, 1.0, LATENT_DIMS),
            }
        )
    return users


def probabilities(user: dict, item: dict) -> dict:
    """What the generator draws one interaction from: P(click), the rating's mean before the
    noise, and P(label) for each label."""
    interest = float(item["category"] in user["interests"])
    met = sum(label in user["habits"] for label in item["attributes"])
    taste = float(user["latent"] @ item["latent"])
    logit = (
        CLICK["base"] + CLICK["interest"] * interest + CLICK["habit"] * met
        + item["appeal"] + user["propensity"] + CLICK["latent"] * taste
    )  # fmt: skip
    mean = (
        RATING["base"] + RATING["interest"] * interest + RATING["habit"] * met
        + item["quality"] + user["bias"] + RATING["latent"] * taste
    )  # fmt: skip
    labels = []
    for label in LABELS:
        if label not in item["attributes"]:
            labels.append(LABEL_P[2])
        else:
            labels.append(LABEL_P[0] if label in user["habits"] else LABEL_P[1])
    return {"click": 1.0 / (1.0 + math.exp(-logit)), "mean": mean, "labels": labels}


def make_rows(
    users: list[dict], items: list[dict], rng: np.random.Generator
) -> tuple[list[dict], list[dict]]:
    """Train and test interactions, each with the probabilities it was drawn from."""
    log_popularity = np.array([item["log_popularity"] for item in items])
    new = np.array([item["new"] for item in items])
    train, test = [], []
    for user in users:
        n = MIN_ROWS + int(rng.gamma(*EXTRA_ROWS))
        liked = np.array([item["category"] in user["interests"] for item in items])
        # Gumbel top-k: n distinct products, weights popularity * exp(interest).
        keys = log_popularity + CHOICE_INTEREST * liked + rng.gumbel(size=len(items))
        chosen = np.argsort(-keys)[:n]
        old = chosen[~new[chosen]]
        held_out = set(rng.choice(old, max(1, round(TEST_SHARE * len(old))), replace=False))
        for i in chosen:
            row = interaction(user, items[i], rng)
            (test if new[i] or i in held_out else train).append(row)
    # A log interleaves users: shuffle each part.
    train = [train[i] for i in rng.permutation(len(train))]
    test = [test[i] for i in rng.permutation(len(test))]
    return train, test


def interaction(user: dict, item: dict, rng: np.random.Generator) -> dict:
    p = probabilities(user, item)
    rating = int(np.clip(np.rint(p["mean"] + rng.normal(0.0, RATING["noise_sd"])), 1, 5))
    labels = [label for label, q in zip(LABELS, p["labels"], strict=True) if rng.random() < q]
    return {
        "user_id": user["id"],
        "item_id": item["id"],
        "rating": rating,
        "click": int(rng.random() < p["click"]),
        "labels": labels,
        "new": item["new"],
        **{f"p_{key}": value for key, value in p.items()},
    }


def expected_ratings(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[clip(round(mean + normal noise), 1, 5)] and its variance, exactly."""
    edges = (np.array([1.5, 2.5, 3.5, 4.5]) - means[:, None]) / (RATING["noise_sd"] * 2**0.5)
    cdf = 0.5 * (1.0 + np.frompyfunc(math.erf, 1, 1)(edges).astype(np.float64))
    p = np.diff(np.concatenate([np.zeros((len(means), 1)), cdf, np.ones_like(means)[:, None]], 1))
    values = np.arange(1.0, 6.0)
    expectation = p @ values
    return expectation, p @ values**2 - expectation**2


def targets(rows: list[dict]) -> dict[str, np.ndarray]:
    return {
        "rating": np.array([r["rating"] for r in rows], dtype=np.float64),
        "click": np.array([r["click"] for r in rows], dtype=np.float64),
        "labels": np.array([[name in r["labels"] for name in LABELS] for r in rows], np.float64),
    }


def task_metrics(truth: dict[str, np.ndarray], prediction: dict[str, np.ndarray]) -> dict:
    """jaxrec's metrics for each task."""
    return {
        "rating": pair_metrics.rating_metrics(truth["rating"], prediction["rating"]),
        "click": pair_metrics.click_metrics(truth["click"], prediction["click"]),
        "multilabel": pair_metrics.multilabel_metrics(truth["labels"], prediction["labels"]),
    }


def oracle_predictions(rows: list[dict]) -> dict[str, np.ndarray]:
    return {
        "rating": expected_ratings(np.array([r["p_mean"] for r in rows]))[0],
        "click": np.array([r["p_click"] for r in rows]),
        "labels": np.array([r["p_labels"] for r in rows]),
    }


def baseline_predictions(train: list[dict], test: list[dict]) -> dict[str, np.ndarray]:
    """jaxrec's baselines (jaxrec/tasks/pair.py): damped user and product biases for ratings,
    each product's training rate smoothed toward the mean (5 pseudo-rows) for clicks and labels."""
    users = {u: k for k, u in enumerate(sorted({r["user_id"] for r in train + test}))}
    items = {i: k for k, i in enumerate(sorted({r["item_id"] for r in train + test}))}
    tu = np.array([users[r["user_id"]] for r in train])
    ti = np.array([items[r["item_id"]] for r in train])
    eu = np.array([users[r["user_id"]] for r in test])
    ei = np.array([items[r["item_id"]] for r in test])
    y = targets(train)
    mu, damp = y["rating"].mean(), 10.0
    bu, bi = np.zeros(len(users)), np.zeros(len(items))
    for _ in range(10):
        bi = np.bincount(ti, y["rating"] - mu - bu[tu], len(items)) / (
            np.bincount(ti, None, len(items)) + damp
        )
        bu = np.bincount(tu, y["rating"] - mu - bi[ti], len(users)) / (
            np.bincount(tu, None, len(users)) + damp
        )
    seen = np.bincount(ti, None, len(items))
    out = {"rating": np.clip(mu + bu[eu] + bi[ei], 1.0, 5.0)}
    for task in ("click", "labels"):
        column = y[task].reshape(len(train), -1)
        counts = np.zeros((len(items), column.shape[1]))
        np.add.at(counts, ti, column)
        rates = (counts + 5.0 * column.mean(axis=0)) / (seen[:, None] + 5.0)
        out[task] = rates[ei].reshape((len(test),) + y[task].shape[1:])
    return out


def subset(arrays: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[mask] for key, value in arrays.items()}


def oracle_report(test: list[dict]) -> dict:
    """What oracle.json holds: the oracle's metrics on test.csv, overall and on new products."""
    truth, oracle = targets(test), oracle_predictions(test)
    new = np.array([r["new"] for r in test])
    _, variance = expected_ratings(np.array([r["p_mean"] for r in test]))
    report = {
        "about": (
            "The best figures any model can expect on test.csv: each click and label predicted "
            "by the probability it was drawn with, each rating by its expectation "
            "E[clip(round(mean + noise), 1, 5)], scored with jaxrec's metrics "
            "(jaxrec/pair_metrics.py; F1 at the 0.5 threshold). new_items: the test rows of "
            "products with no training row. expected_rmse: the rating RMSE's expectation over "
            "the noise."
        ),
        "n_test": len(test),
        "n_new_items": int(new.sum()),
    }
    for part, mask in (("all", np.ones(len(test), bool)), ("new_items", new)):
        metrics = task_metrics(subset(truth, mask), subset(oracle, mask))
        report[part] = {
            task: {name: round(value, 4) for name, value in values.items()}
            for task, values in metrics.items()
        }
    report["all"]["rating"]["expected_rmse"] = round(float(np.sqrt(variance.mean())), 4)
    return report


def compare(train: list[dict], test: list[dict]) -> None:
    """Print the baselines jaxrec prints beside the oracle, overall and on new products."""
    truth = targets(test)
    predictions = {
        "baseline": baseline_predictions(train, test),
        "oracle": oracle_predictions(test),
    }
    new = np.array([r["new"] for r in test])
    print(f"{'':9}{'':9}{'rating RMSE':>12}{'click AUC':>11}{'label mAP':>11}")
    for part, mask in (("all", np.ones(len(test), bool)), ("new", new)):
        for name, prediction in predictions.items():
            m = task_metrics(subset(truth, mask), subset(prediction, mask))
            print(
                f"{part:9}{name:9}{m['rating']['rmse']:>12.4f}{m['click']['auc']:>11.4f}"
                f"{m['multilabel']['map']:>11.4f}"
            )


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def interaction_rows(rows: list[dict]) -> list[list[str]]:
    return [
        [r["user_id"], r["item_id"], str(r["rating"]), str(r["click"]), "|".join(r["labels"])]
        for r in rows
    ]


def generate(seed: int = DEFAULT_SEED) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """Users, items, train rows and test rows for `seed`."""
    rng = np.random.default_rng(seed)
    items = make_items(rng)
    users = make_users(rng)
    train, test = make_rows(users, items, rng)
    return users, items, train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--compare", action="store_true", help="print baselines and the oracle")
    args = parser.parse_args()
    users, items, train, test = generate(args.seed)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_csv(
        out / "users.csv",
        ["id", "age_group", "profile"],
        [[u["id"], u["age_group"], u["profile"]] for u in users],
    )
    write_csv(
        out / "items.csv",
        ["id", "title", "description"],
        [[i["id"], i["title"], i["description"]] for i in items],
    )
    header = ["user_id", "item_id", "rating", "click", "labels"]
    write_csv(out / "train.csv", header, interaction_rows(train))
    write_csv(out / "test.csv", header, interaction_rows(test))
    report = json.dumps(oracle_report(test), indent=2, ensure_ascii=False)
    (out / "oracle.json").write_text(report + "\n", encoding="utf-8")
    print(
        f"wrote {len(users)} users, {len(items)} items, {len(train)} train and "
        f"{len(test)} test rows to {out}"
    )
    if args.compare:
        compare(train, test)


if __name__ == "__main__":
    main()
