def evaluate_boolean_expression(expression: str) -> str:
    """Evaluate a boolean expression of True, False, not, and, or, parentheses
    ("not ( True ) and False") with Python's precedence; returns "True" or "False"."""
    tokens = expression.replace("(", " ( ").replace(")", " ) ").split()
    allowed = {"True", "False", "not", "and", "or", "(", ")"}
    for token in tokens:
        if token not in allowed:
            raise ValueError(f"unexpected token {token!r}")
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal position
        token = peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'a value'} at token {position}")
        position += 1
        return token

    def parse_or() -> bool:
        value = parse_and()
        while peek() == "or":
            take("or")
            right = parse_and()
            value = value or right
        return value

    def parse_and() -> bool:
        value = parse_not()
        while peek() == "and":
            take("and")
            right = parse_not()
            value = value and right
        return value

    def parse_not() -> bool:
        if peek() == "not":
            take("not")
            return not parse_not()
        return parse_atom()

    def parse_atom() -> bool:
        token = take()
        if token == "(":
            value = parse_or()
            take(")")
            return value
        if token in ("True", "False"):
            return token == "True"
        raise ValueError(f"unexpected {token!r} at token {position - 1}")

    result = parse_or()
    if position != len(tokens):
        raise ValueError(f"unexpected {tokens[position]!r} after the expression")
    return str(result)
