def count_objects(items: str, category: str) -> int:
    """How many items of `category` (musical instruments, fruits, vegetables, animals,
    objects) an English list holds: ("a flute, two pianos, and a cat", "musical
    instruments") -> 3."""
    kinds = {
        "musical instruments": "accordion clarinet drum flute piano trombone trumpet violin"
        " guitar saxophone cello harp",
        "fruits": "apple banana blackberry grape nectarine orange peach plum raspberry"
        " strawberry pear lemon mango cherry",
        "vegetables": "cabbage carrot cauliflower garlic onion potato yam broccoli celery lettuce",
        "animals": "bear cat chicken cow dog donkey duck fish frog goat mouse pig rabbit"
        " snail snake horse sheep",
        "objects": "bed car chair couch fridge lamp microwave oven stove table toaster",
    }
    # The category's words in any order and number: "instrument musical" still names one.
    by_words = {frozenset(w.rstrip("s") for w in name.split()): name for name in kinds}
    wanted = by_words.get(frozenset(w.rstrip("s") for w in category.lower().split()))
    if wanted is None:
        raise ValueError(f"unknown category {category!r}: use one of {', '.join(kinds)}")
    members = set(kinds[wanted].split())
    numbers = {
        "a": 1,
        "an": 1,
        "one": 1,
        "two": 2,
        "three": 3,
        "four": 4,
        "five": 5,
        "six": 6,
        "seven": 7,
        "eight": 8,
        "nine": 9,
        "ten": 10,
        "eleven": 11,
        "twelve": 12,
        "thirteen": 13,
        "fourteen": 14,
        "fifteen": 15,
        "sixteen": 16,
        "seventeen": 17,
        "eighteen": 18,
        "nineteen": 19,
        "twenty": 20,
    }
    irregular = {"mice": "mouse", "fish": "fish", "geese": "goose"}

    def singular(word: str) -> str:
        if word in irregular:
            return irregular[word]
        for suffix, replacement in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("oes", "o")):
            if word.endswith(suffix):
                return word[: -len(suffix)] + replacement
        if word.endswith("s") and not word.endswith("ss"):
            return word[:-1]
        return word

    total = 0
    text = items.replace(" and ", ", ").replace(",,", ",")
    for entry in text.split(","):
        words = entry.strip().lower().split()
        if words and words[0] == "and":
            words = words[1:]
        if not words:
            continue
        first = words[0]
        if first.isdigit():
            quantity = int(first)
        elif first in numbers:
            quantity = numbers[first]
        else:
            raise ValueError(f"cannot read the quantity of {entry.strip()!r}")
        noun_words = [singular(w) for w in words[1:]]
        if "of" in noun_words:  # "head of broccoli", "stalks of celery": the thing is after "of"
            noun_words = noun_words[noun_words.index("of") + 1 :]
        phrase = " ".join(noun_words)
        if (
            phrase in members
            or (noun_words and noun_words[-1] in members)
            or (noun_words and noun_words[0] in members)
        ):
            total += quantity
    return total
