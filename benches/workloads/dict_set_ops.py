"""Dict, list and set heavy code: word counts, an inverted index, set algebra and a graph BFS.

Peregrine workload: subscripts, ``dict.get``/``setdefault``, comprehensions and set operations,
the container traffic of everyday data-munging scripts.
"""

import collections
import random

import pyperf

_rng = random.Random(4)
VOCABULARY = [f"w{i}" for i in range(400)]
DOCUMENTS = [[_rng.choice(VOCABULARY) for _ in range(60)] for _ in range(150)]
EDGES = [(_rng.randrange(800), _rng.randrange(800)) for _ in range(3_000)]


def word_counts(documents):
    counts = {}
    for words in documents:
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    return counts


def inverted_index(documents):
    index = {}
    for doc_id, words in enumerate(documents):
        for word in words:
            index.setdefault(word, set()).add(doc_id)
    return index


def common_documents(index, queries):
    hits = 0
    for a, b in queries:
        hits += len(index.get(a, set()) & index.get(b, set()))
        hits += len(index.get(a, set()) | index.get(b, set()))
    return hits


def bfs_distances(edges, source):
    graph = collections.defaultdict(list)
    for a, b in edges:
        graph[a].append(b)
        graph[b].append(a)
    distance = {source: 0}
    frontier = [source]
    while frontier:
        next_frontier = []
        for node in frontier:
            for neighbour in graph[node]:
                if neighbour not in distance:
                    distance[neighbour] = distance[node] + 1
                    next_frontier.append(neighbour)
        frontier = next_frontier
    return distance


def run():
    counts = word_counts(DOCUMENTS)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    index = inverted_index(DOCUMENTS)
    queries = [(VOCABULARY[i], VOCABULARY[(i * 7) % 400]) for i in range(400)]
    hits = common_documents(index, queries)
    distances = bfs_distances(EDGES, 0)
    histogram = {d: sum(1 for v in distances.values() if v == d) for d in set(distances.values())}
    assert top[0] == ("w338", 41) and hits == 16_706, (top, hits)
    assert histogram == {0: 1, 1: 9, 2: 80, 3: 380, 4: 317, 5: 13}, histogram
    return top, hits, histogram


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Word counts, inverted index, set algebra, BFS"
    runner.bench_func("dict_set_ops", run)
