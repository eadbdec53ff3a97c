"""HTML of the demo site: article and index pages in each theme's layout, and small pages.

Pages look like real news sites and blogs (header, menu, cookie banner, breadcrumb,
timestamps, view counters, sidebars, share bar, newsletter box, footer — some of it inside
``<article>``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from vazhi_assets.demo.site_content import Slot, Theme, format_date_line, format_views_line

HTML_UTF8 = "text/html; charset=utf-8"

_CSS = {
    "news": "body{font-family:sans-serif;margin:0}.cookie-banner{position:fixed;bottom:0}"
    "main{display:flex;gap:2em}article{flex:3}aside{flex:1}",
    "blog": "body{font-family:serif;max-width:70em;margin:auto}.layout{display:grid;"
    "grid-template-columns:1fr 3fr}.cookie-notice{background:#eee}",
}


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def _document(theme: Theme, title: str, body: str, charset: str, ld: dict[str, str]) -> str:
    ld_json = json.dumps(ld, ensure_ascii=False).replace("</", "<\\/")
    return (
        f'<!doctype html>\n<html lang="{theme.lang}" dir="{theme.direction}">\n<head>\n'
        f'<meta charset="{charset}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)} | {esc(theme.site_name)}</title>\n"
        f"<style>{_CSS[theme.layout]}</style>\n"
        f'<script type="application/ld+json">{ld_json}</script>\n'
        "<script>window.dataLayer=window.dataLayer||[];dataLayer.push({event:'pageview'});"
        "</script>\n"
        f'</head>\n<body class="{theme.layout}">\n{body}</body>\n</html>\n'
    )


def _cookie_banner(theme: Theme) -> str:
    css = "cookie-banner" if theme.layout == "news" else "cookie-notice"
    return (
        f'<div class="{css}" role="dialog"><p>{esc(theme.cookie_text)}</p>'
        f"<button>{esc(theme.cookie_accept)}</button></div>\n"
    )


def _site_header(theme: Theme, prefix: str) -> str:
    items = "".join(
        f'<li><a href="{prefix}#menu-{n}">{esc(item)}</a></li>' for n, item in enumerate(theme.nav)
    )
    return (
        f'<header class="site-header"><a class="logo" href="{prefix}">{esc(theme.site_name)}</a>'
        f'<p class="tagline">{esc(theme.tagline)}</p></header>\n'
        f'<nav class="main-menu"><ul>{items}</ul></nav>\n'
    )


def _breadcrumb(theme: Theme, prefix: str, title: str) -> str:
    return (
        f'<nav class="breadcrumb" aria-label="breadcrumb"><a href="{prefix}">'
        f'{esc(theme.crumb_home)}</a> › <a href="{prefix}">{esc(theme.crumb_section)}</a> › '
        f"<span>{esc(title)}</span></nav>\n"
    )


def _link_list(tag: str, slots: Sequence[Slot]) -> str:
    items = "".join(f'<li><a href="{s.path}">{esc(s.draft.title)}</a></li>' for s in slots)
    return f"<{tag}>{items}</{tag}>"


def _sidebar(theme: Theme, most_read: Sequence[Slot], related: Sequence[Slot]) -> str:
    return (
        f'<aside class="sidebar"><section class="most-read"><h3>{esc(theme.most_read)}</h3>'
        f"{_link_list('ol', most_read)}</section>"
        f'<section class="related"><h3>{esc(theme.related)}</h3>'
        f"{_link_list('ul', related)}</section></aside>\n"
    )


def _share_bar(theme: Theme, path: str) -> str:
    links = "".join(
        f'<a rel="nofollow" href="{prefix}{path}">{esc(label)}</a> '
        for label, prefix in theme.share_targets
    )
    return f'<div class="share-bar"><span>{esc(theme.share_label)}</span> {links}</div>\n'


def _newsletter(theme: Theme) -> str:
    return (
        f'<section class="newsletter"><h3>{esc(theme.newsletter_title)}</h3>'
        f'<p>{esc(theme.newsletter_text)}</p><form><input type="email" '
        f'placeholder="email@example.com"><button>{esc(theme.newsletter_button)}</button>'
        "</form></section>\n"
    )


def _footer(theme: Theme, prefix: str) -> str:
    links = "".join(
        f'<li><a href="{prefix}#footer-{n}">{esc(label)}</a></li>'
        for n, label in enumerate(theme.footer_links)
    )
    return f"<footer><ul>{links}</ul><p>{esc(theme.copyright)}</p></footer>\n"


def _body_blocks(blocks: list[tuple[str, str]], read_also: str) -> str:
    out: list[str] = []
    read_also_pending = True
    for kind, text in blocks:
        if kind == "p":
            out.append(f"<p>{esc(text)}</p>")
            if read_also_pending:
                out.append(read_also)
                read_also_pending = False
        elif kind in ("h2", "h3"):
            out.append(f"<{kind}>{esc(text)}</{kind}>")
        elif kind == "pre":
            out.append(f"<pre><code>{esc(text)}</code></pre>")
        else:
            out.append(
                f"<blockquote><p>{'<br>'.join(map(esc, text.splitlines()))}</p></blockquote>"
            )
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Context:
    """What an article page links to besides its own text."""

    most_read: list[Slot]
    related: list[Slot]
    read_also: Slot


def render_article(theme: Theme, prefix: str, slot: Slot, ctx: Context) -> tuple[str, list[str]]:
    """HTML of one article page and the page-specific boilerplate lines on it."""
    draft = slot.draft
    date_line = format_date_line(theme.style, slot.published, slot.eastern_date)
    views_line = format_views_line(theme.style, slot.views, slot.eastern_views)
    stamp = f'<time datetime="{slot.published.isoformat()}">{esc(date_line)}</time>'
    views = f'<p class="views">{esc(views_line)}</p>\n'
    read_also = (
        f'<p class="read-also"><strong>{esc(theme.read_also)}</strong> '
        f'<a href="{ctx.read_also.path}">{esc(ctx.read_also.draft.title)}</a></p>'
    )
    extras_in = "".join(f'<p class="byline">{esc(t)}</p>\n' for t in theme.inside_article)
    extras_after = "".join(
        f'<section class="comments"><p>{esc(t)}</p></section>\n' for t in theme.after_article
    )
    body = _body_blocks(draft.blocks, read_also)
    sidebar = _sidebar(theme, ctx.most_read, ctx.related)
    crumb = _breadcrumb(theme, prefix, draft.title)
    heading = f"<h1>{esc(draft.title)}</h1>\n"
    if theme.layout == "news":
        article = (
            f'<article>\n{heading}<p class="meta">{stamp}</p>\n{views}{extras_in}{body}'
            f"{_share_bar(theme, slot.path)}</article>\n"
        )
        page = (
            f"{_cookie_banner(theme)}{_site_header(theme, prefix)}{crumb}<main>\n{article}"
            f"{sidebar}</main>\n{_newsletter(theme)}{extras_after}{_footer(theme, prefix)}"
        )
    else:
        article = (
            f'<article>\n{heading}<p class="post-meta">{stamp}</p>\n{extras_in}{body}'
            f"{views}</article>\n"
        )
        aside = sidebar.replace("</aside>", _newsletter(theme) + "</aside>")
        page = (
            f'{_site_header(theme, prefix)}<div class="layout">\n{aside}<main>\n{crumb}'
            f"{article}{_share_bar(theme, slot.path)}{extras_after}</main>\n</div>\n"
            f"{_footer(theme, prefix)}{_cookie_banner(theme)}"
        )
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": draft.title,
        "datePublished": slot.published.isoformat(),
    }
    return _document(theme, draft.title, page, slot.encoding, ld), [date_line, views_line]


def render_index(
    theme: Theme,
    prefix: str,
    slots: Sequence[Slot],
    pager: tuple[str | None, str | None],
    extra_links: Sequence[str],
) -> str:
    items = "".join(
        f'<li><a href="{s.path}">{esc(s.draft.title)}</a> '
        f'<time datetime="{s.published.isoformat()}">{s.published:%Y-%m-%d}</time></li>'
        for s in slots
    )
    previous, following = pager
    pages = "".join(
        f'<a rel="{rel}" href="{href}">{esc(label)}</a> '
        for rel, href, label in (
            ("prev", previous, theme.previous_page),
            ("next", following, theme.next_page),
        )
        if href
    )
    more = "".join(f'<li><a href="{href}">{esc(href)}</a></li>' for href in extra_links)
    body = (
        f"{_cookie_banner(theme)}{_site_header(theme, prefix)}<main>\n"
        f'<h1>{esc(theme.index_title)}</h1>\n<ul class="article-list">{items}</ul>\n'
        f'<nav class="pagination">{pages}</nav>\n'
        f'<section class="archive"><ul>{more}</ul></section>\n</main>\n{_footer(theme, prefix)}'
    )
    return _document(theme, theme.index_title, body, "utf-8", {"@type": "CollectionPage"})


def small_page(title: str, body: str, escape: bool = True) -> bytes:
    content = esc(body) if escape else body
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{esc(title)}</title></head>'
        f"<body><h1>{esc(title)}</h1><p>{content}</p></body></html>\n"
    ).encode()
