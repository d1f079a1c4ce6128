"""Slack's markup as plain words: the mentions in a message, and the question as sent to Trellis."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

__all__ = ["mentioned_user_ids", "question_text"]

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_SPECIAL = re.compile(r"<([^<>\s][^<>]*)>")
_BROADCASTS = frozenset({"here", "channel", "everyone"})
_SCHEMES = re.compile(r"^(?:https?://|mailto:|tel:)")


def mentioned_user_ids(text: str, *, exclude: Collection[str] = ()) -> tuple[str, ...]:
    """The user ids `<@U…>` mentioned in Slack text, first mention first, without repeats.

    `exclude` (say, the bot's own user id) is left out.
    """
    seen: dict[str, None] = {}
    for match in _USER_MENTION.finditer(text):
        if match.group(1) not in exclude:
            seen.setdefault(match.group(1))
    return tuple(seen)


def _link(target: str, label: str) -> str:
    """A Slack link as words: "label (url)", or just one of them when they say the same."""
    if not label:
        return target
    bare = _SCHEMES.sub("", target).rstrip("/")
    if label in {target, bare}:
        return label
    return f"{label} ({target})"


def _special(target: str, label: str) -> str:
    """`<!…>`: @here, @channel, @everyone, a user group or a date's fallback text."""
    keyword = target[1:]
    if keyword in _BROADCASTS:
        return "@" + keyword
    if label:
        return label
    if keyword.startswith("subteam^"):
        return "@" + keyword.partition("^")[2]
    return "@" + keyword.partition("^")[0]


def question_text(text: str, bot_user_id: str, names: Mapping[str, str]) -> str:
    """The question as sent to Trellis: our mention removed, Slack's markup turned into words.

    Other users become @name (`names` maps ids to names, falling back to the id), channels #name,
    links "label (url)"; &amp; &lt; &gt; are unescaped and surrounding whitespace trimmed.
    """
    own = re.compile(rf"[ \t]*<@{re.escape(bot_user_id)}(?:\|[^<>]*)?>[,:]?[ \t]*")

    def drop_own(match: re.Match[str]) -> str:
        before = text[match.start() - 1] if match.start() > 0 else "\n"
        after = text[match.end()] if match.end() < len(text) else "\n"
        return "" if "\n" in (before, after) else " "

    def words(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            user_id = target[1:]
            return "@" + names.get(user_id, label.lstrip("@") or user_id)
        if target.startswith("#"):
            return "#" + (label or names.get(target[1:], target[1:]))
        if target.startswith("!"):
            return _special(target, label)
        return _link(target, label)

    stripped = own.sub(drop_own, text)
    readable = _SPECIAL.sub(words, stripped)
    return readable.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
