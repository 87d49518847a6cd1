"""``python -m defwatch``: the same CLI, used by the daemon to start crawl child processes."""

from defwatch.cli import main

raise SystemExit(main())
