"""Distributed mode: crawl workers share a Redis frontier, one writer keeps the archive.

One machine covers war.gov; watching hundreds of sites of the same platform (AFPIMS) does not fit
on one. In this mode the crawling (downloads, parsing, following links) spreads over any number of
worker processes on any machines, while every write to the SQLite archive still goes through one
process, so the archive's guarantees (one transaction per response, one writer) are unchanged.

- ``keys``: the Redis key names of one site's crawl and the one atomic look at its progress.
- ``frontier``: the scrapy-redis scheduler, queue and duplicate filter the workers share; pages are
  deduplicated by identity (story or photo id), not URL, so a page is fetched once across workers.
- ``worker``: the ``SiteSpider`` on that frontier, whose pipeline pushes each response to Redis
  instead of writing SQLite, and the extension that tells when the whole crawl is done.
- ``results``: how a response travels from a worker to the writer.
- ``writer``: seeding the frontier from the archive, and draining the results into it.

``defwatch distributed`` (``defwatch/distributed_commands.py``) runs these; docs/DISTRIBUTED.md says
when a user needs it and how to start it.
"""
