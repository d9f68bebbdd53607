"""Generator pipelines: chained generators, ``yield from`` and generator expressions over a log.

Peregrine workload: generator frames suspended and resumed at every item (the way lazy ETL and
log-processing code is written), which exercises the JIT's handling of generator re-entry.
"""

import pyperf

LOG = [f"2024-01-{1 + i % 28:02d} {('GET', 'POST', 'PUT')[i % 3]} /api/v{i % 2}/items/{i % 97} {200 + (i % 5) * 100}"
       for i in range(2_500)]


def read_lines(lines):
    # An explicit loop rather than ``yield from``: one generator resume per line is the point.
    for line in lines:
        yield line


def parse(lines):
    for line in lines:
        date, method, path, status = line.split()
        yield date, method, path, int(status)


def only_errors(records):
    for record in records:
        if record[3] >= 400:
            yield record


def by_chunks(records, size):
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def flatten(chunks):
    for chunk in chunks:
        yield from chunk


def run():
    errors = sum(1 for _ in flatten(by_chunks(only_errors(parse(read_lines(LOG))), 16)))
    posts = sum(record[3] for record in parse(LOG) if record[1] == "POST")
    paths = len({path for _, _, path, _ in parse(read_lines(LOG))})
    assert (errors, posts, paths) == (1_500, 333_300, 194), (errors, posts, paths)
    return errors, posts, paths


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Chained generators, yield from, generator expressions"
    runner.bench_func("generator_pipeline", run)
