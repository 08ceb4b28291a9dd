"""Content-Security-Policy of every published HTML page.

Our own pages (templates/base.html) run no script at all. The dbt docs page is dbt's
own single-file app: one inline script (its bundle, with the manifest and catalog
inlined). It gets a policy that allows exactly that script, by its sha256 hash, and
nothing else (no eval, no network): a script that got into the page any other way (or
inlined data that broke out of the script, which changes its hash) does not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

#: The policy of our own pages (templates/base.html writes it into each page).
REPORT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 "base-uri 'none'; form-action 'none'")
#: The e-mailed pages' policy: the same, with the message's own parts as images
#: (charts as PNG, `<img src="cid:...">`; reporting/mail_page.py).
MAIL_POLICY = REPORT_POLICY.replace("img-src data:", "img-src cid: data:")

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_CSP_META = re.compile(r"<meta\s+http-equiv=[\"']?content-security-policy", re.IGNORECASE)


class CspError(ValueError):
    """A page cannot be given a policy (the message says why)."""


def inline_script_hashes(page: str) -> list[str]:
    """The CSP source expression ('sha256-…') of each inline script, in page order."""
    hashes = []
    for attributes, body in _SCRIPT.findall(page):
        if re.search(r"\bsrc\s*=", attributes, re.IGNORECASE):
            raise CspError("the page loads an external script; it would be refused")
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes.append(f"'sha256-{digest}'")
    return hashes


def dbt_docs_policy(page: str) -> str:
    """The policy for dbt's static docs page: its own inline scripts by hash, inline
    styles, images and fonts from data: URIs; no eval, no network, no frames, no forms.
    (Its AngularJS falls back to its CSP-safe mode without eval: checked in Chromium by
    tests/test_nightly_safe_html.py, overview, model page and lineage graph.)"""
    scripts = " ".join(dict.fromkeys(inline_script_hashes(page)))
    return (f"default-src 'none'; script-src {scripts}; "
            "style-src 'unsafe-inline'; img-src data:; font-src data:; "
            "base-uri 'none'; form-action 'none'")


def page_policy(page: str) -> str | None:
    """The policy a page's Content-Security-Policy meta element sets (entities decoded),
    or None when its head carries none."""
    head_end = re.search(r"</head\s*>|<body\b", page, re.IGNORECASE)
    found = _CSP_META.search(page, 0, head_end.start() if head_end else len(page))
    if found is None:
        return None
    content = re.compile(r"[^>]*?\scontent=\"([^\"]*)\"", re.IGNORECASE).match(page, found.end())
    return html.unescape(content.group(1)) if content else ""


def has_policy(page: str) -> bool:
    """Whether the page's head carries a Content-Security-Policy meta element."""
    return page_policy(page) is not None


def with_policy(page: str, policy: str) -> str:
    """`page` with a `<meta http-equiv="Content-Security-Policy">` first in its head
    (before any script, so it governs them all)."""
    if _CSP_META.search(page):
        raise CspError("the page already carries a Content-Security-Policy")
    head = _HEAD.search(page)
    if head is None:
        raise CspError("the page has no <head> to put a policy in")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    charset = re.compile(r"<meta\s+charset=[^>]*>", re.IGNORECASE).match(page, head.end())
    at = charset.end() if charset else head.end()
    return page[:at] + meta + page[at:]
