"""Values more than one layer needs, each written once.

A constant that the crawler, the configuration and the CLI each spelled out could drift apart (a
fourth crawl mode accepted by ``--mode`` but refused by the daemon's jobs); here it cannot.
"""

from __future__ import annotations

# What a crawl fetches: discover (feeds, first listing pages, new stories), revisit (archived pages
# that are due), sweep (every archived page), full (all of it), frontier (one slice of the daemon's
# budgeted frontier, monitor.frontier).
CRAWL_MODES = ("discover", "revisit", "sweep", "full", "frontier")

# The live site a crawl starts from when no --site / config site says otherwise.
DEFAULT_SITE = "https://www.war.gov"

# An honest User-Agent with a contact URL: what every request to the site says it is. The contact
# is the project's: whoever runs a daemon against the live site should put their own (it warns).
TEMPLATE_CONTACT = "https://github.com/defwatch/defwatch"
USER_AGENT = f"defwatch/0.1 (+{TEMPLATE_CONTACT}; archive and change monitor)"

# ArticleCS RSS ContentType values read by a discover crawl: news stories, releases, contracts, features.
DEFAULT_FEEDS = (1, 9, 400, 800)

# How requests reach the site: Scrapy's HTTP client, or a browser's TLS fingerprint (crawler.transport).
TRANSPORTS = ("scrapy", "impersonate")
DEFAULT_BROWSER = "chrome"  # the browser the impersonate transport presents (curl_cffi's names)

# Politeness towards the live site (the sample site on 127.0.0.1 relaxes them).
CONCURRENCY_PER_HOST = 2
DOWNLOAD_DELAY_SECONDS = 1.0
DOWNLOAD_TIMEOUT_SECONDS = 30
MAX_RESPONSE_BYTES = 20 * 1024 * 1024  # also caps decompressed bodies (gzip bombs)

# The kinds of story the site publishes, as the URL grammar (core.urls) and records name them.
STORY_KINDS = ("news-story", "feature-story", "release", "transcript", "speech", "advisory", "contract")

# How a mail connection is secured.
SECURITY_MODES = ("none", "starttls", "ssl")

# The change events readers subscribe to (operator events are in monitor.health).
SUBSCRIBER_EVENT_KINDS = (
    "story_new", "story_updated", "story_removed", "story_restored", "related_added", "related_removed",
    "image_new", "image_updated", "image_removed", "image_restored",
)
