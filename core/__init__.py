"""The shared vocabulary of defwatch: what every layer may import and what imports none of them.

Records the parsers return and the archive stores, the results of a fetch, the site's URL grammar,
the archive's clock and its one time stamp format, constants named once, and the configuration.
Layers from the bottom: ``core``; ``crawler`` (fetch, parse) and ``db`` (schema, store, queries;
``crawler`` may import ``db``, never the reverse); ``monitor`` (detect, compose, deliver,
schedule); the CLI (``defwatch``) on top. ``tests/test_layers.py`` holds the code to it.
"""
