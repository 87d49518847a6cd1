"""The page chrome around every HTML page of the sample site, shaped like www.war.gov in 2025.

Why: the real story pages weigh 130-180 KiB, and almost all of it is chrome, not the article: a
head full of stylesheet and script links and an inline share-menu stylesheet, an ASP.NET form with
a ~10 KB view state, a live-events widget script, the navigation mega-menu (printed twice: desktop
and mobile), a newsletter module, a dozen empty DNN panes, two footers and trailing scripts
(``../shared/reference/real/wargov-2025-11-*.puppeteer-dom.html``). Parsers, crawls and benchmarks
that only ever saw a 10 KiB page measured the wrong thing.

Everything here is written for the sample site (menu entries, CSS and script text are our own,
modelled on the structure of the real pages, not copied from them). The static parts are built
once per base URL (:func:`chrome`); only the noise (view state, cache-buster, hit counter) changes
per response, and that is added by the renderer.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from typing import Any

# Top-level menu -> groups -> (label, path or absolute URL). Paths are on the served site.
MENU: list[tuple[str, str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    ("News", "/News/", [
        ("Press Products", "/News/Press-Products/", [
            ("Today in DOW", "/News/Today-in-DOW/"), ("Live Events", "/News/Live-Events/"),
            ("Releases", "/News/Releases/"), ("Advisories", "/News/Advisories/"),
            ("Transcripts", "/News/Transcripts/"), ("Speeches", "/News/Speeches/"),
            ("Publications", "/News/Publications/"), ("Contracts", "/News/Contracts/")]),
        ("Newsroom", "/News/Newsroom/", [
            ("News Stories", "/News/News-Stories/"), ("Feature Stories", "/News/Feature-Stories/"),
            ("Stories from the Services", "/News/From-the-Services/"), ("Photo Essays", "/News/Photo-Essays/"),
            ("Week in Review", "/News/Week-in-Review/")]),
    ]),
    ("Multimedia", "/Multimedia/", [
        ("Multimedia", "/Multimedia/", [
            ("Photos", "/Multimedia/Photos/"), ("Photo Collections", "/Multimedia/Photo-Collections/"),
            ("Week In Photos", "/Multimedia/Photo-Collections/Week-In-Photos/"), ("Videos", "/Multimedia/Videos/"),
            ("Podcasts", "/Multimedia/Podcasts/"), ("Graphics", "/Multimedia/Graphics/")]),
        ("Interactive Experiences", "/Multimedia/Experience/", [
            ("Visual Stories", "/Multimedia/Experience/category/25144/"),
            ("Quizzes", "/Multimedia/Experience/category/22642/"), ("All Interactive", "/Multimedia/Experience/")]),
    ]),
    ("Spotlights", "/Spotlights/", [
        ("Topics", "/Spotlights/", [
            ("Support to the Southern Border", "/Spotlights/Support-to-the-Southern-Border/"),
            ("Value of Service", "/Spotlights/Value-of-Service/"), ("Space Strategy", "/Spotlights/Space-Strategy/"),
            ("Medal of Honor Monday", "/Spotlights/Medal-of-Honor-Monday/"),
            ("Stars Behind the Stripes", "/Spotlights/Stars-Behind-the-Stripes/"),
            ("Military Families", "/Spotlights/Military-Families/"), ("All Spotlights", "/Spotlights/")]),
    ]),
    ("About", "/About/", [
        ("Leadership", "/About/Leadership/", [
            ("Secretary of War", "/About/Secretary-of-War/"), ("Deputy Secretary of War", "/About/Deputy-Secretary/"),
            ("Chairman of the Joint Chiefs of Staff", "/About/Chairman-of-the-Joint-Chiefs-of-Staff/"),
            ("Vice Chairman of the Joint Chiefs of Staff", "/About/Vice-Chairman/"),
            ("Office of the Secretary", "/About/Office-of-the-Secretary/"), ("More Leaders", "/About/Biographies/")]),
        ("Components", "/About/Components/", [
            ("Army", "https://www.army.mil/"), ("Marine Corps", "https://www.marines.mil/"),
            ("Navy", "https://www.navy.mil/"), ("Air Force", "https://www.af.mil/"),
            ("Space Force", "https://www.spaceforce.mil/"), ("National Guard", "https://www.nationalguard.mil/"),
            ("Coast Guard", "https://www.uscg.mil/"), ("Combatant Commands", "/About/Combatant-Commands/"),
            ("Agencies and Field Activities", "/About/Agencies/")]),
        ("Our Story", "/About/Our-Story/", [
            ("History", "/About/History/"), ("Insignia", "/About/Insignia/"), ("Mission", "/About/Mission/"),
            ("Budget", "/About/Budget/"), ("Office Locator", "/About/Office-Locator/")]),
    ]),
    ("Resources", "/Resources/", [
        ("For the Media", "/Resources/For-the-Media/", [
            ("Press Operations", "/Resources/Press-Operations/"), ("Media Accreditation", "/Resources/Accreditation/"),
            ("Imagery Use", "https://www.dma.mil/Services/Visual-Information/References/Limitations/"),
            ("Mobile Apps", "/Resources/Mobile-Apps/")]),
        ("Help", "/Resources/Help/", [
            ("Help Center", "/contact/help-center/"), ("Contact", "/Contact/"), ("FOIA", "https://www.esd.whs.mil/FOID/"),
            ("Careers", "https://www.dodciviliancareers.com/"), ("Site Map", "/site-index/")]),
    ]),
]

FOOTER_COLUMNS = [
    ("Department of War", [("Home", "/"), ("News", "/News/"), ("Spotlights", "/Spotlights/"), ("About", "/About/")]),
    ("Helpful Links", [("Live Events", "/Live"), ("Today in DOW", "/News/Today-in-DOW/"),
                       ("Contracts", "/News/Contracts/"), ("For the Media", "/Resources/For-the-Media/"),
                       ("Contact", "/Contact")]),
    ("Resources", [("Resources", "/Resources/"), ("Help Center", "/contact/help-center"),
                   ("Military Websites", "/Resources/Military-Departments/"),
                   ("Agency Financial Report", "https://comptroller.defense.gov/")]),
    ("Popular", [("Value of Service", "/Spotlights/Value-of-Service/"),
                 ("Space Strategy", "/Spotlights/Space-Strategy/"),
                 ("National Defense Strategy", "/National-Defense-Strategy/")]),
]

UTILITY_LINKS = [
    ("Privacy &amp; Security", "/Legal-Administrative/Privacy-Security/"),
    ("Links Disclaimer", "/Legal-Administrative/Links-Disclaimer/"),
    ("Section 508", "https://dodcio.defense.gov/DoDSection508/"),
    ("Social Media Policy", "/resources/social-media-policy/"),
    ("Web Policy", "https://dodcio.defense.gov/DoD-Web-Policy/"), ("Plain Writing Act", "https://www.esd.whs.mil/DD/"),
    ("Inspector General", "https://www.dodig.mil/"), ("No FEAR Act", "https://prhome.defense.gov/NoFear/"),
    ("Imagery Use", "https://www.dma.mil/Services/Visual-Information/References/Limitations/"),
    ("FOIA", "https://www.esd.whs.mil/FOID/"), ("Open Government", "https://open.defense.gov/"),
    ("USA.gov", "https://www.usa.gov/"), ("Small Business", "https://business.defense.gov/"),
    ("Site Map", "/site-index/"),
]

SOCIAL = [("X", "https://x.com/DeptofWar", "fa-brands fa-x-twitter"),
          ("Facebook", "https://www.facebook.com/DepartmentofWar", "fa-brands fa-facebook-f"),
          ("Instagram", "https://www.instagram.com/deptofwar", "fa fa-instagram"),
          ("LinkedIn", "https://www.linkedin.com/company/deptofwar", "fa-brands fa-linkedin-in"),
          ("YouTube", "https://www.youtube.com/@deptofwar", "fa-brands fa-youtube")]

# Stylesheets and scripts the skin links from the head and the end of the form (paths only).
STYLESHEETS = [
    "/Resources/Shared/stylesheets/dnndefault/7.0.0/default.css", "/DesktopModules/ArticleCSViewArticle/module.css",
    "/Desktopmodules/SharedLibrary/ValidatedPlugins/slick-carousel/slick/slick.css",
    "/DesktopModules/ArticleCS/Resources/DGOV2Slideshow/dgov2slideshow.css",
    "/Desktopmodules/SharedLibrary/Plugins/Bootstrap/css/bootstrap.min.css", "/Portals/_default/skins/dgov2/skin.css",
    "/Portals/_default/Containers/DGOV2/container.css", "/Portals/1/portal.css",
    "/DesktopModules/MVC/DVIDSLiveEvents2/resources/css/livebadge.css",
    "/Portals/_default/skins/dgov2/resources/css/dnn.css",
    "/Desktopmodules/SharedLibrary/Plugins/SocialIcons/css/fa-social-icons.css",
    "/Desktopmodules/SharedLibrary/Plugins/Skin/SkipNav/css/skipnav.css",
    "/Desktopmodules/SharedLibrary/Plugins/MediaElement4.2.9/mediaelementplayer.css",
    "/Desktopmodules/SharedLibrary/Plugins/ColorBox/colorbox.css",
    "/desktopmodules/ArticleCS/styles/DefenseGOV2/style.css",
    "/Desktopmodules/SharedLibrary/ValidatedPlugins/font-awesome6/css/all.min.css",
]
HEAD_SCRIPTS = ["/Resources/libraries/jQuery/03_07_01/jquery.js",
                "/Resources/libraries/jQuery-Migrate/03_04_01/jquery-migrate.js",
                "/Resources/libraries/jQuery-UI/01_13_03/jquery-ui.min.js"]
FORM_SCRIPTS = [
    "/Desktopmodules/SharedLibrary/Plugins/MediaElement4.2.9/mediaelement-and-player.js",
    "/Desktopmodules/SharedLibrary/ValidatedPlugins/slick-carousel/slick/slick.min.js", "/js/dnn.js",
    "/js/dnn.modalpopup.js", "/Portals/_default/skins/dgov2/resources/js/skin.js",
    "/Portals/_default/skins/dgov2/resources/js/menu.js", "/js/dnncore.js",
    "/Desktopmodules/SharedLibrary/Plugins/Mobile-Detect/mobile-detect.min.js",
    "/Desktopmodules/SharedLibrary/ValidatedPlugins/moment/moment.js",
    "/Desktopmodules/SharedLibrary/ValidatedPlugins/vue/vue.min.js",
    "/DesktopModules/ArticleCS/Resources/ArticleCS/js/ArticleCS.js",
    "/Desktopmodules/SharedLibrary/Plugins/carouFredSel/jquery.carouFredSel-6.2.1.js",
    "/Desktopmodules/SharedLibrary/Plugins/TouchSwipe/jquery.touchSwipe.min.js",
    "/Desktopmodules/SharedLibrary/Plugins/ColorBox/jquery.colorbox.js",
    "/Desktopmodules/SharedLibrary/Plugins/BodyScrollLock/bodyScrollLock.js",
    "/DesktopModules/ArticleCS/Resources/DGOV2/js/dgov2_sharemore.js",
    "/DesktopModules/ArticleCS/Resources/DGOV2Slideshow/dgov2slideshow.js", "/js/dnn.servicesframework.js",
    "/Desktopmodules/SharedLibrary/Plugins/Skin/js/common.js",
    "/DesktopModules/MVC/DVIDSLiveEvents2/Resources/js/dvids-dle-api.js",
]

# The share services of the AddToAny menu a browser injects at the end of the page.
SHARE_SERVICES = [
    "Facebook", "X", "Email", "LinkedIn", "WhatsApp", "Reddit", "Pinterest", "Tumblr", "Telegram", "Print",
    "Copy Link", "Gmail", "Outlook.com", "Yahoo Mail", "AOL Mail", "Mastodon", "Threads", "Bluesky", "Flipboard",
    "Pocket", "Mix", "Line", "Viber", "Skype", "SMS", "Messenger", "VK", "Odnoklassniki", "Xing", "Evernote",
    "Diaspora", "Hacker News", "Instapaper", "Kakao", "Mendeley", "Mewe", "Mail.Ru", "Papaly", "Plurk", "Raindrop.io",
    "Sina Weibo", "Snapchat", "Trello", "Wykop", "Teams", "Threema", "Tencent QQ", "Qzone", "Balatarin", "BibSonomy",
    "Blogger", "Buffer", "Citeulike", "Douban", "Draugiem", "Folkd", "Google Classroom", "Known", "LiveJournal",
    "Micro.blog", "Myspace", "Naver", "Rediff MyPage", "Refind", "Sitejot", "Slashdot", "Svejo", "Typepad",
    "Wanelo", "WordPress", "Yummly",
]
CDF_PROVIDERS = ("DnnBodyProvider", "DnnPageHeaderProvider", "DnnFormBottomProvider")

# Noise stylesheet for the share menu: selectors x declarations, deterministic (a fixed seed).
_SHARE_PARTS = ["menu", "kit", "full", "modal", "overlay", "svg", "count", "button", "item", "label", "note",
                "thanks", "footer", "header", "services", "find", "link", "icon", "default", "floating", "vertical"]
_DECLS = ["display:none", "display:block", "display:inline-block", "position:absolute", "position:relative",
          "overflow:hidden", "border:0", "margin:0", "padding:0 12px", "line-height:24px", "font-size:14px",
          "color:#0166ff", "background:#fff", "border-radius:6px", "z-index:9999997", "text-align:center",
          "vertical-align:top", "white-space:nowrap", "box-sizing:border-box", "transition:opacity .14s"]


@lru_cache(maxsize=1)
def share_menu_css() -> str:
    """About 13 KB of share-menu CSS, the kind the real page injects in its head."""
    rng = random.Random(20251102)
    rules = []
    while sum(len(r) for r in rules) < 13_500:
        a, b = rng.sample(_SHARE_PARTS, 2)
        sel = f".a2a_{a} .a2a_{b}" + (f",.a2a_{b}:hover" if rng.random() < 0.3 else "")
        rules.append(sel + "{" + ";".join(rng.sample(_DECLS, rng.randint(2, 6))) + "}")
        if rng.random() < 0.08:
            rules.append(f"@media (max-width:{rng.choice((317, 437, 639, 768))}px){{.a2a_{a}{{width:100%}}}}")
    return "".join(rules)


@lru_cache(maxsize=1)
def live_events_config() -> str:
    """A JSON settings blob like the live-events widget's (about 22 KB), for its inline script."""
    rng = random.Random(20251027)
    settings: dict[str, Any] = {
        "eventFilterType": "man", "eventListMaxResults": "50", "upcomingEventMaxResultView": "5",
        "eventHashtags": "dgovlive", "eventSort": "asc", "autoplay": True, "showLiveNowList": True,
        "moduleTitle": "LIVE EVENTS", "liveNowListTitle": "LIVE TODAY",
        "liveNowDefaultText": "There are currently no events scheduled for today.",
        "upcomingEventsDefaultText": "There are currently no upcoming events scheduled.",
        "templateDisclaimer": "Having playback problems? Refresh the page or try another web browser.",
    }
    for k in range(780):
        key = f"{rng.choice(['show', 'toggle', 'selected', 'default'])}{rng.choice(_SHARE_PARTS).title()}{k}"
        settings[key] = rng.choice([True, False, rng.randint(0, 2_003_000_000), f"{rng.randint(1, 9)}px"])
    return json.dumps({"data": {"dvidsParams": settings, "isBackend": False}}, separators=(",", ":"))


def _href(base: str, path: str) -> str:
    return path if path.startswith("http") else base + path


@lru_cache(maxsize=16)
def chrome(base: str) -> dict[str, Any]:
    """The static chrome data of a site served at ``base`` (links made absolute, as on war.gov)."""
    menu = [{"label": label, "url": _href(base, path),
             "groups": [{"label": g, "url": _href(base, gp),
                         "links": [{"label": t, "url": _href(base, p), "external": p.startswith("http")}
                                   for t, p in links]}
                        for g, gp, links in groups]}
            for label, path, groups in MENU]
    footer = [{"label": label, "links": [{"label": t, "url": _href(base, p), "external": p.startswith("http")}
                                         for t, p in links]}
              for label, links in FOOTER_COLUMNS]
    share = [{"label": name, "key": "".join(c for c in name.lower() if c.isalnum())} for name in SHARE_SERVICES]
    cdf = [("Css" if path.endswith(".css") else "Javascript", path, CDF_PROVIDERS[n % 3], 5 * (n % 21) + 5)
           for n, path in enumerate(STYLESHEETS + HEAD_SCRIPTS + FORM_SCRIPTS + STYLESHEETS[::2] + FORM_SCRIPTS[::3])]
    utility = [{"label": t, "url": _href(base, p), "external": p.startswith("http")} for t, p in UTILITY_LINKS]
    return {
        "menu": menu, "footer_columns": footer, "utility_links": utility,
        "social": [{"label": a, "url": u, "icon": i, "n": n} for n, (a, u, i) in enumerate(SOCIAL, 1)],
        "stylesheets": STYLESHEETS, "head_scripts": HEAD_SCRIPTS, "form_scripts": FORM_SCRIPTS,
        "share_services": share, "cdf": cdf,
        "share_css": share_menu_css(), "live_config": live_events_config(),
    }
