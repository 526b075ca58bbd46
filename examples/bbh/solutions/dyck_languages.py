def complete_dyck_sequence(prefix: str) -> str:
    """The closing brackets, innermost first, that complete a space-separated
    sequence of () [] {} <> brackets: "[ { ( ) <" -> "> } ]"."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    closers = set(pairs.values())
    stack: list[str] = []
    for token in prefix.split():
        if token in pairs:
            stack.append(token)
        elif token in closers:
            if not stack or pairs[stack[-1]] != token:
                raise ValueError(f"{token!r} does not close the innermost open bracket")
            stack.pop()
        else:
            raise ValueError(f"{token!r} is not a bracket")
    return " ".join(pairs[opener] for opener in reversed(stack))
