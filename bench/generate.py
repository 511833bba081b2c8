"""Generate an N-row course-level CSV with a realistic mix.

About 1.5 rows per enrollment (one row per credit type earned), several credit types, 10% of
enrollments incomplete (one row, no credit), and learners of whom a share already have an
account (ids L0000000… below `existing`, see bench/run.py) and the rest are new.

    python bench/generate.py 100000 /tmp/records.csv [--existing-share 0.3] [--seed 1]
"""

import argparse
import csv
import random
from pathlib import Path

HEADER = [
    "external_user_id",
    "external_email",
    "first_name",
    "last_name",
    "enrollment_start",
    "enrollment_end",
    "complete",
    "date_completed",
    "credit_type",
    "credits",
    "credit_expiration",
    "attended",
    "participant_category",
    "dob_month",
    "dob_day",
    "licensing_state",
    "license_id",
]
# What the bench course offers (bench/run.py creates it): type -> credits a learner may earn.
CREDITS = {
    "ama_pra_1": ["2.00", "1.75", "1.50", "1.00"],
    "ancc": ["2.00"],
    "abim_moc": ["2.00", "1.50", "1.00"],
    "acpe": ["1.50"],
}
FIRST = ["Maria", "James", "Aisha", "Noor", "Sam", "Lee", "Olga", "Ravi", "Ana", "Tom", "Mei", "José", "Zoë"]
LAST = ["Garcia", "Chen", "Okafor", "Haddad", "Patel", "Kim", "Novak", "Iyer", "Silva", "Berg", "Müller"]
STATES = ["CA", "NY", "TX", "FL", "WA", "IL", "MA", "OH"]


def learner_id(n: int) -> str:
    return f"L{n:07d}"


def learner_email(n: int) -> str:
    return f"learner{n:07d}@example.org"


def generate(path: Path, rows: int, *, existing: int = 0, existing_share: float = 0.3, seed: int = 1) -> int:
    """Write the file; return the number of enrollments in it."""
    rng = random.Random(seed)
    written = enrollments = 0
    next_new = existing  # new learners are numbered after the existing ones
    existing_pool = list(range(existing))
    rng.shuffle(existing_pool)
    types = list(CREDITS)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        while written < rows:
            if existing_pool and rng.random() < existing_share:
                n = existing_pool.pop()
            else:
                n = next_new
                next_new += 1
            enrollments += 1
            day = rng.randrange(1, 28)
            month = rng.randrange(1, 10)
            start = f"2025-{month:02d}-{day:02d}"
            base = [
                learner_id(n),
                learner_email(n),
                rng.choice(FIRST),
                rng.choice(LAST),
                start,
                f"2025-{month + 2:02d}-{day:02d}",
            ]
            tail = [
                "1",
                rng.choice(["physician", "physician", "other"]),
                f"{rng.randrange(1, 13):02d}",
                f"{rng.randrange(1, 29):02d}",
                rng.choice(STATES),
                f"{rng.randrange(0, 10**7):07d}",
            ]
            if rng.random() < 0.10:
                out.writerow(base + ["0", "", "", "", ""] + tail)
                written += 1
                continue
            completed = f"2025-{month + 1:02d}-{day:02d}"
            count = min(1 if rng.random() < 0.5 else 2, rows - written)
            for credit_type in rng.sample(types, count):
                credits = rng.choice(CREDITS[credit_type])
                out.writerow(base + ["1", completed, credit_type, credits, "2028-12-31"] + tail)
                written += 1
    return enrollments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--existing", type=int, default=0, help="learners L0000000.. that already have accounts")
    parser.add_argument("--existing-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    enrollments = generate(
        args.path, args.rows, existing=args.existing, existing_share=args.existing_share, seed=args.seed
    )
    print(f"{args.rows} rows, {enrollments} enrollments -> {args.path}")


if __name__ == "__main__":
    main()
