"""``defwatch doctor``: which transport the site lets in, with the advice to act on.

Exit status: 0 the configured transport gets content on every page; 3 the site blocks it (the
same status a blocked crawl ends with); 1 it gets errors (network, TLS, timeouts, pages missing);
2 it cannot run here (the impersonate extra is not installed) or bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.config import Config, ConfigError
from defwatch.cli import config_from

EXIT_BY_VERDICT = {"content": 0, "blocked": 3, "error": 1, "unavailable": 2}


def register_doctor(commands: Any) -> None:
    p = commands.add_parser(
        "doctor", help="Try every transport on the site: content, a block page (which), or an error.",
        description="Fetch robots.txt, a feed, a listing, a story and a photo page with each transport "
                    "(scrapy, impersonate) and say which one the site lets in.\n\nexample:\n"
                    "  defwatch doctor --site https://www.war.gov --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="config file (default: $DEFWATCH_CONFIG or ./defwatch.toml)")
    p.add_argument("--site", metavar="URL", help="the site to try (default: the configured site)")
    p.add_argument("--json", action="store_true",
                   help="print {site, configured, transports: [{transport, verdict, probes, advice}], "
                        "recommendation, exit_status}")
    p.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from crawler.doctor import examine
    from crawler.run import crawl_politeness, transport_values
    from crawler.transport import TRANSPORTS

    config = config_from(args)
    transports: dict[str, dict[str, Any] | str] = {}
    for name in TRANSPORTS:
        try:
            transports[name] = crawl_politeness(config) | transport_values(config, name)
        except ConfigError as exc:  # the extra is not installed: reported, not tried
            transports[name] = str(exc).split(": ", 1)[-1]
    reports = examine(config.site, transports)
    result = summarise(config, [r.as_json() for r in reports])
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print(result)
    return result["exit_status"]


def summarise(config: Config, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The reports with each transport's advice, the recommendation and the exit status."""
    configured = config.crawl.transport
    by_name = {r["transport"]: r for r in reports}
    for report in reports:
        report["advice"] = advice(report, config)
    mine = by_name[configured]["verdict"]
    working = [r["transport"] for r in reports if r["verdict"] == "content"]
    if mine == "content":
        recommendation = f'keep transport = "{configured}": the site answers it with content'
    elif working:
        recommendation = f'set [crawl] transport = "{working[0]}" in defwatch.toml: the site answers it with content'
    elif any(r["verdict"] == "blocked" for r in reports):
        recommendation = ("the site refuses every transport from here: do not retry in a loop; wait, raise "
                          "crawl.download_delay, set crawl.contact, and quote the block's Reference number "
                          "to the site's operators")
    else:
        recommendation = "no transport reached the site: check the network, DNS, a proxy or the --site URL"
    if not config.crawl.contact:
        recommendation += ("; set [crawl] contact to your email address, sent as the From header, so the "
                           "site's operators can reach you")
    return {"site": config.site, "configured": configured, "transports": reports,
            "recommendation": recommendation, "exit_status": EXIT_BY_VERDICT[mine]}


def advice(report: dict[str, Any], config: Config) -> str:
    """What to do about one transport's answers, in one line."""
    probes = report["probes"]
    if report["verdict"] == "unavailable":
        return report["problem"]
    if report["verdict"] == "content":
        return "the site lets this transport in"
    blocks = _distinct_blocks([p["block"] for p in probes if p["result"] == "block"])
    if any("rate limit" in b for b in blocks):
        return f"rate-limited ({', '.join(blocks)}): raise crawl.download_delay (now {config.crawl.download_delay}s)"
    if blocks and report["transport"] == "scrapy":
        return (f"refused: {', '.join(blocks)}; a bot wall that refuses plain clients by their TLS handshake: "
                f'try transport = "impersonate"')
    if blocks:
        return f"refused: {', '.join(blocks)}"
    missing = [p["probe"] for p in probes if p["result"] == "missing"]
    if missing:
        return f"{', '.join(missing)} answered 404/410: is {config.site} the war.gov site?"
    errors = [f"{p['probe']}: {p['detail']}" for p in probes if p["result"] == "error"][:2]
    return "no usable answer (" + "; ".join(errors) + "): check the network, DNS, TLS and the site URL"


def _distinct_blocks(names: list[str | None]) -> list[str]:
    """Each kind of block page once, with the first reference it gave (one is enough to quote)."""
    seen: dict[str, str] = {}
    for name in names:
        if name:
            seen.setdefault(name.split(" (Reference")[0], name)
    return list(seen.values())


def _print(result: dict[str, Any]) -> None:
    print(f"defwatch doctor: {result['site']} (configured transport: {result['configured']})")
    for report in result["transports"]:
        print(f"\n{report['transport']:<12} {report['verdict']}")
        for probe in report["probes"]:
            status = probe["status"] if probe["status"] is not None else "-"
            what = probe["block"] or probe["detail"] or ""
            print(f"  {probe['probe']:<8} {status!s:>4}  {probe['result']:<10} {what[:70]:<70}  {probe['url'] or ''}")
        print(f"  advice: {report['advice']}")
    print(f"\nrecommendation: {result['recommendation']}")


REGISTRY = [register_doctor]
