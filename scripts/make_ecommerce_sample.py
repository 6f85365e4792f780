"""Write a small synthetic shop dataset in jaxrec's generic interactions format (CSV).

    python scripts/make_ecommerce_sample.py [--out DIR] [--seed N]

Writes users.csv (id, age_group, profile), items.csv (id, title, description), and train.csv and
test.csv with the columns user_id, item_id, rating, click, labels, so that one folder serves
the rating, click and multi-label tasks (see jaxrec/data/interactions.py).

All the signal is in the text. Every product belongs to a category and may have some of five
attributes (gift-ready, on sale, eco-friendly, family size, premium); every shopper has one or
two interests and may have some of five matching habits. Profiles and descriptions share the
words of a category or an attribute ("cooking", "gift"), never an ID. A shopper clicks and
rates higher when the product's category is among their interests; a label (gift, sale, eco,
family, premium) is likely only when the shopper's habit and the product's attribute meet.
The same pairs never appear twice, and test pairs are not in train.

The output depends only on the seed (numpy's default_rng); the same seed gives byte-identical
files. Only numpy and the standard library are used. Text is UTF-8, with a few accented words.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "jaxrec" / "data" / "samples" / "ecommerce"
DEFAULT_SEED = 20240601

N_USERS = 200
N_ITEMS = 300
TRAIN_PER_USER = (20, 40)  # inclusive range: mean 30, about 6,000 rows
TEST_PER_USER = (5, 10)  # mean 7.5, about 1,500 rows
IN_INTEREST_SHARE = 0.55  # share of a user's rows drawn from their interest categories

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
ADJECTIVES = "Classic|Compact|Deluxe|Essential|Everyday|Pro|Modern|Vintage|Ultra|Smart"

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


def pick(rng: np.random.Generator, options: str | list[str]) -> str:
    values = options.split("|") if isinstance(options, str) else options
    return values[int(rng.integers(len(values)))]


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
        description = " ".join([pick(rng, descriptions)] + [LABELS[a][0] for a in attributes])
        items.append(
            {
                "id": f"I{number:04d}",
                "title": title,
                "description": description,
                "category": category,
                "attributes": attributes,
                "quality": float(rng.normal(0.0, 0.4)),
                "appeal": float(rng.normal(0.0, 0.5)),
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
        words = " and ".join(CATEGORIES[c][0] for c in interests)
        opener = OPENERS[int(rng.integers(len(OPENERS)))].format(city=pick(rng, CITIES), a=words)
        profile = " ".join([opener + "."] + [LABELS[h][1] for h in habits])
        users.append(
            {
                "id": f"U{number:03d}",
                "age_group": pick(rng, AGE_GROUPS),
                "profile": profile,
                "interests": interests,
                "habits": habits,
                "bias": float(rng.normal(0.0, 0.4)),
            }
        )
    return users


def make_rows(
    users: list[dict], items: list[dict], rng: np.random.Generator
) -> tuple[list[list[str]], list[list[str]]]:
    """Train and test rows; each user's pairs are distinct and split between the two."""
    train, test = [], []
    for user in users:
        n_train = int(rng.integers(TRAIN_PER_USER[0], TRAIN_PER_USER[1] + 1))
        n_test = int(rng.integers(TEST_PER_USER[0], TEST_PER_USER[1] + 1))
        liked = np.array([item["category"] in user["interests"] for item in items])
        # Gumbel top-k: distinct items, about IN_INTEREST_SHARE of them from the interests.
        weight = np.where(
            liked, IN_INTEREST_SHARE / liked.sum(), (1 - IN_INTEREST_SHARE) / (~liked).sum()
        )
        keys = np.log(weight) + rng.gumbel(size=len(items))
        chosen = np.argsort(-keys)[: n_train + n_test]
        rows = [interaction(user, items[i], rng) for i in chosen]
        train += rows[:n_train]
        test += rows[n_train:]
    # A log interleaves users: shuffle each part.
    train = [train[i] for i in rng.permutation(len(train))]
    test = [test[i] for i in rng.permutation(len(test))]
    return train, test


def interaction(user: dict, item: dict, rng: np.random.Generator) -> list[str]:
    interest = float(item["category"] in user["interests"])
    shared = [label for label in item["attributes"] if label in user["habits"]]
    click_logit = -1.6 + 2.4 * interest + 0.6 * len(shared) + item["appeal"]
    click = int(rng.random() < 1.0 / (1.0 + np.exp(-click_logit)))
    latent = 2.9 + 1.1 * interest + 0.3 * len(shared) + item["quality"] + user["bias"]
    rating = int(np.clip(np.rint(latent + rng.normal(0.0, 0.7)), 1, 5))
    labels = []
    for label in LABELS:
        if label not in item["attributes"]:
            p = LABEL_P[2]
        else:
            p = LABEL_P[0] if label in user["habits"] else LABEL_P[1]
        if rng.random() < p:
            labels.append(label)
    return [user["id"], item["id"], str(rating), str(click), "|".join(labels)]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    items = make_items(rng)
    users = make_users(rng)
    train, test = make_rows(users, items, rng)

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
    write_csv(out / "train.csv", header, train)
    write_csv(out / "test.csv", header, test)
    print(
        f"wrote {len(users)} users, {len(items)} items, {len(train)} train and "
        f"{len(test)} test rows to {out}"
    )


if __name__ == "__main__":
    main()
