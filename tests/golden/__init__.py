"""Golden histories: recorded by one version of nbconductor, replayed by every later one.

``workflows`` holds the definitions, ``record`` writes ``histories/<version>/*.json``
(by hand), and tests/test_golden_histories.py replays every committed file.
"""
