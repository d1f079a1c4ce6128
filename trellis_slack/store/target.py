"""Where the state lives: a SQLite file path or a PostgreSQL URL, and how to name it safely."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

#: URL schemes that mean PostgreSQL (libpq takes both).
POSTGRES_SCHEMES = ("postgresql", "postgres")

#: What a password is replaced with wherever a target is shown.
HIDDEN = "***"


def is_postgres(target: str) -> bool:
    """Whether ``target`` is a PostgreSQL URL (``postgresql://`` or ``postgres://``)."""
    scheme, sep, _ = target.partition("://")
    return bool(sep) and scheme.lower() in POSTGRES_SCHEMES


def passwords_of(target: str) -> tuple[str, ...]:
    """The password of a PostgreSQL URL (user part or query), as written and as decoded."""
    if not is_postgres(target):
        return ()
    try:
        parts = urlsplit(target)
        found = [parts.password] if parts.password else []
    except ValueError:
        return ()
    found += [value for name, value in parse_qsl(parts.query) if name == "password" and value]
    return tuple(dict.fromkeys(form for p in found for form in (p, unquote(p))))


def describe(target: str) -> str:
    """``target`` fit for logs and errors: a path as it is, a URL without its password.

    An unparsable URL is shown as its scheme only: its text might hold a password.
    """
    if not is_postgres(target):
        return target
    try:
        parts = urlsplit(target)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostinfo = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}:{HIDDEN}@{hostinfo}" if ":" in userinfo else f"{user}@{hostinfo}"
        query = [
            (name, HIDDEN if name == "password" else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))
    except ValueError:
        return f"{target.partition('://')[0]}://{HIDDEN}"


def scrub(text: str, target: str) -> str:
    """``text`` with the target's password (raw and as written in the URL) hidden."""
    if is_postgres(target):
        text = text.replace(target, describe(target))
    for password in sorted(passwords_of(target), key=len, reverse=True):
        text = text.replace(password, HIDDEN)
    return text
