"""Notes: a version's description, written in Markdown and rendered to sanitised HTML.

Rendering is two steps so that neither has to be perfect: markdown-it-py with raw HTML turned
off (``<script>`` in a note stays text), then nh3 (ammonia) keeps only an allow-list of tags and
attributes and drops ``javascript:`` URLs and every event handler.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from plait.errors import InvalidMetadataError
from plait.formats.records import check_text

#: The longest description the dashboard accepts (the store allows 1 MiB; notes are prose).
MAX_NOTE_CHARS = 100_000

_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li",
    "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}, "code": {"class"}}


def check_note(text: Any) -> str:
    """Return ``text`` if it can be stored as a description, else raise.

    :raises InvalidMetadataError: for a non-string, a NUL character, text that is not valid
        UTF-8 (a lone surrogate), or more than :data:`MAX_NOTE_CHARS` characters.
    """
    if not isinstance(text, str):
        raise InvalidMetadataError(f"a description must be text, not {type(text).__name__}")
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidMetadataError(f"a description may have at most {MAX_NOTE_CHARS} characters, this one has {len(text)}; shorten it")
    if "\x00" in text:
        raise InvalidMetadataError("a description may not contain NUL characters; remove them")
    return check_text(text, "the description")


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    """Render Markdown to HTML that is safe to insert into a page.

    :param text: the note.
    :returns: HTML with only formatting tags and http(s)/mailto links (``rel="noopener noreferrer"``).
    """
    import nh3

    html = _parser().render(text)
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer")
