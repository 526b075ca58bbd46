def evaluate_arithmetic(expression: str) -> int:
    """The int value of an expression of integers (signed: "-4"), +, -, * and
    parentheses, with the usual precedence: "((-1 + 2) * 3 - -4)" -> 7."""
    text = expression.replace(" ", "")
    position = 0

    def peek() -> str:
        return text[position] if position < len(text) else ""

    def parse_sum() -> int:
        nonlocal position
        value = parse_product()
        while peek() in ("+", "-"):
            operator = peek()
            position += 1
            right = parse_product()
            value = value + right if operator == "+" else value - right
        return value

    def parse_product() -> int:
        nonlocal position
        value = parse_factor()
        while peek() == "*":
            position += 1
            value *= parse_factor()
        return value

    def parse_factor() -> int:
        nonlocal position
        char = peek()
        if char == "-":
            position += 1
            return -parse_factor()
        if char == "+":
            position += 1
            return parse_factor()
        if char == "(":
            position += 1
            value = parse_sum()
            if peek() != ")":
                raise ValueError(f"missing ')' at {position}")
            position += 1
            return value
        start = position
        while peek().isdigit():
            position += 1
        if start == position:
            raise ValueError(f"expected a number at {position}, got {char!r}")
        return int(text[start:position])

    value = parse_sum()
    if position != len(text):
        raise ValueError(f"unexpected {text[position]!r} at {position}")
    return value
