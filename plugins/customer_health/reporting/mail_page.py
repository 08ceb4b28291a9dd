"""A team's published page made fit for e-mail.

Outlook shows no inline SVG and Gmail only some of it, so each chart's <svg> (named by
its `data-chart` attribute, charts.py) becomes an <img src="cid:..."> whose PNG, drawn
from the same data, travels in the message as a multipart/related part with that
Content-ID. The web pages keep their SVG. An SVG the e-mail cannot redraw (no data for
it) becomes its text alternative. The page's Content-Security-Policy is replaced by
one that also lets `cid:` images load. Links relative to the reports folder lead nowhere
from a mailbox: the page's navigation bar (all teams, glossary, CSV, which is attached)
is left out and other such links read as plain text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.utils import make_msgid
from typing import Any

from customer_health.reporting import charts, csp

_SVG = re.compile(r"<svg\b[^>]*>.*?</svg\s*>", re.IGNORECASE | re.DOTALL)
_CHART_NAME = re.compile(r'\bdata-chart="([^"]+)"')
_ARIA_LABEL = re.compile(r'\baria-label="([^"]*)"')
_CSP_META = re.compile(r"<meta\s+http-equiv=[\"']?content-security-policy[^>]*>",
                       re.IGNORECASE)
#: a link relative to the reports folder (no scheme, not a fragment): dead in a mailbox
_RELATIVE_LINK = re.compile(
    r'<a\b[^>]*\shref="(?![a-z][a-z0-9+.-]*:|#)[^"]*"[^>]*>(.*?)</a\s*>',
    re.IGNORECASE | re.DOTALL)
#: the page's navigation (all teams, glossary, CSV): only its links to sibling files
_NAV = re.compile(r'<nav class="links">.*?</nav\s*>\s*', re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class MailPage:
    """The page's HTML for e-mail and the PNGs it references, by Content-ID (no <>)."""

    html: str
    images: tuple[tuple[str, charts.ChartImage], ...]


def mail_page(page: str, chart_data: dict[str, Any], domain: str) -> MailPage:
    """`page` (a published team page) with PNG charts referenced by cid: instead of SVG."""
    images: list[tuple[str, charts.ChartImage]] = []

    def to_image(match: re.Match[str]) -> str:
        svg = match.group(0)
        opening = svg[: svg.index(">")]
        name = _CHART_NAME.search(opening)
        if name is None or name.group(1) not in chart_data:
            label = _ARIA_LABEL.search(opening)  # already escaped inside the attribute
            return f'<p class="note">{label.group(1) if label else ""}</p>'
        image = charts.chart_png(name.group(1), chart_data[name.group(1)])
        cid = make_msgid(idstring=f"chart-{image.name}", domain=domain)[1:-1]
        images.append((cid, image))
        return (f'<img src="cid:{html.escape(cid)}" alt="{html.escape(image.label)}" '
                f'width="{image.width}" height="{image.height}" style="display:block;'
                f'width:100%;max-width:{image.width}px;height:auto;border:0">')

    body = _SVG.sub(to_image, page)
    body = _RELATIVE_LINK.sub(r"\1", _NAV.sub("", body))
    body = csp.with_policy(_CSP_META.sub("", body, count=1), csp.MAIL_POLICY)
    return MailPage(html=body, images=tuple(images))
