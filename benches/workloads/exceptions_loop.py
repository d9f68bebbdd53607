"""Exceptions raised and caught inside loops: EAFP lookups, parse-or-skip and custom errors.

Peregrine workload: SETUP/POP of exception blocks, raise, except matching and the unwinding path;
a JIT that falls back to the interpreter on every exception shows up badly here.
"""

import pyperf


class ValidationError(Exception):
    def __init__(self, field, value):
        super().__init__(f"{field}: bad value {value!r}")
        self.field = field


RECORDS = [{"age": str(i % 90), "height": "tall" if i % 5 == 0 else str(150 + i % 50)} for i in range(2_000)]
TOKENS = [str(i) if i % 3 else f"x{i}" for i in range(3_000)]


def parse_ints(tokens):
    """Parse what parses and count the rest, the try/except ValueError idiom."""
    total = failures = 0
    for token in tokens:
        try:
            total += int(token)
        except ValueError:
            failures += 1
    return total, failures


def validate(record):
    for field in ("age", "height"):
        if not record[field].isdigit():
            raise ValidationError(field, record[field])
    return int(record["age"]) + int(record["height"])


def validate_all(records):
    good, bad_fields = 0, {}
    for record in records:
        try:
            good += validate(record)
        except ValidationError as error:
            bad_fields[error.field] = bad_fields.get(error.field, 0) + 1
        finally:
            good += 1
    return good, bad_fields


def sparse_lookup(keys):
    """EAFP dictionary access where most keys are missing."""
    cache = {k: k * k for k in range(0, 3_000, 4)}
    found = 0
    for key in keys:
        try:
            found += cache[key]
        except KeyError:
            found -= 1
    return found


def run():
    result = parse_ints(TOKENS), validate_all(RECORDS), sparse_lookup(range(3_000))
    assert result == ((3_000_000, 1_000), (353_440, {"height": 400}), 2_245_499_750), result
    return result


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "try/except/raise inside loops"
    runner.bench_func("exceptions_loop", run)
