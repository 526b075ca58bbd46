"""Build the demo stream `stream.jsonl` from the BIG-Bench Hard files in `data/`.

Takes the first N examples of each of the five families (ids keep the example's index
in its file, e.g. `word_sorting-0007`), then shuffles them with a fixed seed so the
families interleave the way a real mixed stream would. Run again to regenerate:

    python examples/bbh/make_stream.py            # 40 per family -> stream.jsonl
    python examples/bbh/make_stream.py --per-family 10 --out small.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAMILIES = (
    "boolean_expressions",
    "dyck_languages",
    "multistep_arithmetic_two",
    "object_counting",
    "word_sorting",
)
SEED = 20240607


def build(per_family: int, seed: int = SEED, data_dir: Path = HERE / "data") -> list[dict]:
    rows: list[dict] = []
    for family in FAMILIES:
        examples = json.loads((data_dir / f"{family}.json").read_text(encoding="utf-8"))["examples"]
        for index, example in enumerate(examples[:per_family]):
            rows.append(
                {
                    "id": f"{family}-{index:04d}",
                    "task": example["input"],
                    "expected": example["target"],
                    "tags": [family],
                }
            )
    random.Random(seed).shuffle(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=40)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=HERE / "stream.jsonl")
    args = parser.parse_args()
    rows = build(args.per_family, args.seed)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    print(f"wrote {len(rows)} tasks to {args.out}")


if __name__ == "__main__":
    main()
