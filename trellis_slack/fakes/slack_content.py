"""Message content as Slack checks and stores it: text and Block Kit limits, block ids, rich text."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from trellis_slack.fakes.slack_data_blocks import (
    data_table_problems,
    data_visualization_problems,
    message_problems,
)
from trellis_slack.fakes.slack_model import Failure, FakeFile, JsonDict, new_id

__all__ = [
    "KNOWN_BLOCKS",
    "MAX_MARKDOWN",
    "MAX_TEXT",
    "MENTION",
    "block_problems",
    "content_failure",
    "find_action",
    "first_link",
    "rich_text_blocks",
    "slack_file_problems",
    "with_block_ids",
]

#: Block types Slack accepts in messages (anything else is ``invalid_blocks``).
KNOWN_BLOCKS: Final = frozenset(
    {
        "actions",
        "call",
        "context",
        "context_actions",
        "data_table",
        "data_visualization",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "plan",
        "rich_text",
        "section",
        "table",
        "task_card",
        "video",
    }
)

#: Slack answers with at most this much text in a message (``msg_too_long`` above).
MAX_TEXT: Final = 40_000
#: ``markdown`` blocks, ``markdown_text`` and each streaming call carry at most this much.
MAX_MARKDOWN: Final = 12_000
#: A mention in message text (``<@U123>`` or ``<@U123|name>``).
MENTION = re.compile(r"<@([UWB][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")
#: A ``slack_file`` id, as Slack checks it (its error: "input must match regex pattern").
_FILE_ID = re.compile(r"^F[A-Z0-9]{8,}$")
#: A file id inside a ``url_private`` or ``permalink`` (``…/F0ABC123XY/name.png``).
_FILE_IN_URL = re.compile(r"[/-](F[A-Z0-9]{8,})/")
#: The file types an ``image`` may show from Slack (``slack_file``).
_IMAGE_TYPES: Final = frozenset({"png", "jpg", "jpeg", "gif"})
#: What a ``context_actions`` block may hold (at most five of them).
_CONTEXT_ACTIONS: Final = frozenset({"feedback_buttons", "icon_button"})

# --------------------------------------------------------------------------- limits


def _pointer_error(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _text_of(obj: object) -> str:
    if isinstance(obj, dict):
        text = obj.get("text")
        return text if isinstance(text, str) else ""
    return obj if isinstance(obj, str) else ""


def _too_long(value: object, limit: int, pointer: str) -> list[str]:
    text = _text_of(value) if isinstance(value, dict) else value
    if isinstance(text, str) and len(text) > limit:
        return [_pointer_error(f"must be less than {limit + 1} characters", pointer)]
    return []


def _element_problems(element: object, pointer: str) -> list[str]:
    if not isinstance(element, dict):
        return [_pointer_error("must be an object", pointer)]
    problems: list[str] = []
    problems += _too_long(element.get("action_id"), 255, f"{pointer}/action_id")
    kind = element.get("type")
    if kind == "button":
        problems += _too_long(element.get("text"), 75, f"{pointer}/text/text")
        problems += _too_long(element.get("value"), 2_000, f"{pointer}/value")
        problems += _too_long(element.get("url"), 3_000, f"{pointer}/url")
    elif kind == "image":
        problems += _image_problems(element, pointer)
    elif kind == "feedback_buttons":
        for side in ("positive_button", "negative_button"):
            problems += _feedback_button_problems(element.get(side), f"{pointer}/{side}")
    elif kind == "icon_button" and not _text_of(element.get("text")):
        problems.append(_pointer_error("missing required field: text", pointer))
    return problems


def _feedback_button_problems(button: object, pointer: str) -> list[str]:
    """One side of a ``feedback_buttons`` element: plain_text ``text``, ``value``, a label."""
    if not isinstance(button, dict):
        return [_pointer_error("missing required field", pointer)]
    problems: list[str] = []
    text = button.get("text")
    if not isinstance(text, dict) or text.get("type") != "plain_text" or not _text_of(text):
        problems.append(_pointer_error("must be a plain_text object", f"{pointer}/text"))
    problems += _too_long(text, 75, f"{pointer}/text/text")
    value = button.get("value")
    if not isinstance(value, str) or not value:
        problems.append(_pointer_error("missing required field: value", pointer))
    problems += _too_long(value, 2_000, f"{pointer}/value")
    problems += _too_long(button.get("accessibility_label"), 75, f"{pointer}/accessibility_label")
    return problems


def _image_problems(image: JsonDict, pointer: str) -> list[str]:
    alt = image.get("alt_text")
    if not isinstance(alt, str) or not alt:
        return [_pointer_error("missing required field: alt_text", pointer)]
    problems = _too_long(alt, 2_000, f"{pointer}/alt_text")
    has_url, has_file = "image_url" in image, "slack_file" in image
    if not has_url and not has_file:
        problems.append(_pointer_error("missing required field: image_url", pointer))
    elif has_url and has_file:
        problems.append(_pointer_error("provide either image_url or slack_file", pointer))
    elif has_file:
        problems += _slack_file_shape(image["slack_file"], f"{pointer}/slack_file")
    return problems


def _slack_file_shape(ref: object, pointer: str) -> list[str]:
    """A ``slack_file`` object has exactly one of ``id`` (``F…``) and ``url``."""
    if not isinstance(ref, dict) or ("id" in ref) == ("url" in ref):
        return [_pointer_error("invalid slack file", pointer)]
    if "id" in ref and not (isinstance(ref["id"], str) and _FILE_ID.match(ref["id"])):
        return [_pointer_error("input must match regex pattern: ^[F][A-Z0-9]{8,}$", pointer)]
    if "url" in ref and not isinstance(ref["url"], str):
        return [_pointer_error("invalid slack file", pointer)]
    return []


def _elements_problems(
    block: JsonDict, limit: int, pointer: str, allowed: frozenset[str] | None = None
) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [_pointer_error("missing required field: elements", pointer)]
    problems: list[str] = []
    if len(elements) > limit:
        problems.append(
            _pointer_error(f"no more than {limit} items allowed", f"{pointer}/elements")
        )
    for i, element in enumerate(elements):
        kind = element.get("type") if isinstance(element, dict) else None
        where = f"{pointer}/elements/{i}"
        if allowed is not None and kind not in allowed:
            problems.append(_pointer_error(f"unsupported type: {kind}", f"{where}/type"))
        elif allowed is None and kind == "feedback_buttons":
            # Slack's docs: feedback buttons "must be used inside the context actions block".
            problems.append(_pointer_error(f"unsupported type: {kind}", f"{where}/type"))
        problems += _element_problems(element, where)
    return problems


def _section_problems(block: JsonDict, pointer: str) -> list[str]:
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        return [_pointer_error("must provide either text or fields", pointer)]
    problems: list[str] = []
    if text is not None:
        if not _text_of(text):
            problems.append(
                _pointer_error("must be more than 0 characters", f"{pointer}/text/text")
            )
        problems += _too_long(text, 3_000, f"{pointer}/text/text")
    if isinstance(fields, list):
        if len(fields) > 10:
            problems.append(_pointer_error("no more than 10 items allowed", f"{pointer}/fields"))
        for i, item in enumerate(fields):
            problems += _too_long(item, 2_000, f"{pointer}/fields/{i}/text")
    if "accessory" in block:
        problems += _element_problems(block["accessory"], f"{pointer}/accessory")
    return problems


def _rows_problems(rows: object, pointer: str, *, min_rows: int, max_rows: int) -> list[str]:
    if not isinstance(rows, list):
        return [_pointer_error("missing required field: rows", pointer)]
    problems: list[str] = []
    if not min_rows <= len(rows) <= max_rows:
        problems.append(
            _pointer_error(f"must have between {min_rows} and {max_rows} items", f"{pointer}/rows")
        )
    for i, row in enumerate(rows):
        if isinstance(row, list) and len(row) > 20:
            problems.append(_pointer_error("no more than 20 items allowed", f"{pointer}/rows/{i}"))
    return problems


def _block_problems(block: JsonDict, pointer: str) -> list[str]:
    kind = block["type"]
    if kind not in KNOWN_BLOCKS:
        return [_pointer_error(f"unsupported type: {kind}", f"{pointer}/type")]
    if kind == "section":
        return _section_problems(block, pointer)
    if kind == "header":
        if not _text_of(block.get("text")):
            return [_pointer_error("missing required field: text", pointer)]
        return _too_long(block.get("text"), 150, f"{pointer}/text/text")
    if kind == "context":
        return _elements_problems(block, 10, pointer)
    if kind == "actions":
        return _elements_problems(block, 25, pointer)
    if kind == "context_actions":
        return _elements_problems(block, 5, pointer, _CONTEXT_ACTIONS)
    if kind == "image":
        return _image_problems(block, pointer)
    if kind == "table":
        return _rows_problems(block.get("rows"), pointer, min_rows=1, max_rows=100)
    if kind == "data_table":
        return data_table_problems(block, pointer)
    if kind == "data_visualization":
        return data_visualization_problems(block, pointer)
    if kind == "markdown" and not isinstance(block.get("text"), str):
        return [_pointer_error("missing required field: text", pointer)]
    return []


def block_problems(
    blocks: object, *, max_blocks: int = 50, files: Mapping[str, FakeFile] | None = None
) -> list[str]:
    """Every reason Slack would answer ``invalid_blocks`` for ``blocks`` (empty when valid).

    With ``files`` (the workspace's files by id), an ``image`` showing a ``slack_file`` must
    name an image file that exists and is not deleted, as Slack checks it.
    """
    if not isinstance(blocks, list):
        return [_pointer_error("must be an array", "/blocks")]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(_pointer_error(f"no more than {max_blocks} items allowed", "/blocks"))
    block_ids: set[str] = set()
    markdown_chars = 0
    for i, block in enumerate(blocks):
        pointer = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(_pointer_error("missing required field: type", pointer))
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255:
                problems.append(_pointer_error("invalid block_id", f"{pointer}/block_id"))
            elif block_id in block_ids:
                problems.append(_pointer_error("duplicate block_id", f"{pointer}/block_id"))
            else:
                block_ids.add(block_id)
        if block["type"] == "markdown":
            markdown_chars += len(_text_of(block))
        problems += _block_problems(block, pointer)
    if markdown_chars > MAX_MARKDOWN:
        problems.append(
            _pointer_error(f"markdown blocks exceed {MAX_MARKDOWN} characters in total", "/blocks")
        )
    problems += message_problems(blocks)
    if files is not None and not problems:
        problems += slack_file_problems(blocks, files)
    return problems


def _images(blocks: list[Any]) -> Iterator[tuple[JsonDict, str]]:
    """Every ``image`` block or element in ``blocks``, with its JSON pointer."""
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "image":
            yield block, f"/blocks/{i}"
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "image":
            yield accessory, f"/blocks/{i}/accessory"
        for j, element in enumerate(block.get("elements") or []):
            if isinstance(element, dict) and element.get("type") == "image":
                yield element, f"/blocks/{i}/elements/{j}"


def slack_file_problems(blocks: list[Any], files: Mapping[str, FakeFile]) -> list[str]:
    """Images whose ``slack_file`` is no image file of this workspace (missing, deleted, a CSV)."""
    problems: list[str] = []
    for image, pointer in _images(blocks):
        ref = image.get("slack_file")
        if not isinstance(ref, dict):
            continue
        file_id = ref.get("id")
        if file_id is None:
            match = _FILE_IN_URL.search(str(ref.get("url", "")))
            file_id = match.group(1) if match else None
        file = files.get(str(file_id))
        if file is None or file.deleted or file.filetype not in _IMAGE_TYPES:
            problems.append(_pointer_error("invalid slack file", f"{pointer}/slack_file"))
    return problems


def content_failure(
    text: object,
    blocks: object,
    attachments: object,
    files: Mapping[str, FakeFile] | None = None,
) -> Failure | None:
    """Why Slack would refuse a message with this content, or ``None``."""
    if text is not None and not isinstance(text, str):
        return Failure("invalid_arguments", ("[ERROR] text must be a string",))
    if not text and not blocks and not attachments:
        return Failure("no_text")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return Failure("msg_too_long")
    if blocks is not None:
        problems = block_problems(blocks, files=files)
        if problems:
            return Failure("invalid_blocks", tuple(problems))
    return None


def with_block_ids(blocks: list[Any]) -> list[Any]:
    """A copy of ``blocks`` where every block has a ``block_id``, as Slack stores them."""
    out = copy.deepcopy(blocks)
    for block in out:
        if isinstance(block, dict) and "block_id" not in block:
            block["block_id"] = new_id("", 5)
    return out


def rich_text_blocks(text: str) -> list[JsonDict]:
    """The ``rich_text`` block Slack attaches to a message a human typed."""
    elements: list[JsonDict] = []
    pos = 0
    for match in re.finditer(f"{MENTION.pattern}|{_LINK.pattern}", text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        if match.group(1):
            elements.append({"type": "user", "user_id": match.group(1)})
        else:
            elements.append({"type": "link", "url": match.group(2)})
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": new_id("", 5), "elements": [section]}]


def first_link(text: str) -> str | None:
    """The first ``<https://…>`` link in message text."""
    match = _LINK.search(text)
    return match.group(1) if match else None


def find_action(blocks: object, action_id: str) -> tuple[str, JsonDict] | None:
    """The ``(block_id, element)`` of the interactive element with ``action_id``."""
    if not isinstance(blocks, list):
        return None
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    return None
