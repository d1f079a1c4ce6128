"""manifest.yml is a valid Slack app manifest that asks for exactly what the code handles and calls."""

from __future__ import annotations

import inspect
import json
import re
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from tests.helpers import ROOT
from trellis_slack.bot.routes import ROUTES
from trellis_slack.settings import DEFAULT_PROMPTS

MANIFEST = ROOT / "manifest.yml"
#: Slack's schema, committed so the test never depends on a folder outside the repository.
SCHEMA = ROOT / "tests" / "data" / "slack-manifest.schema.json"
#: The team's reference copy beside the repository (``../shared``), when it is there.
SHARED_SCHEMA = ROOT.parent / "shared" / "reference" / "slack-manifest.schema.json"

#: Bot scopes each Web API method needs (from each method's page on docs.slack.dev). A method the
#: code starts calling fails ``test_every_web_api_method_the_code_calls_has_its_scope`` until it
#: is added here and its scope to the manifest.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.delete": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "files.delete": frozenset({"files:write"}),
    # Which message shared a chart, so removing an answer removes that message too.
    "files.info": frozenset({"files:read"}),
    # The bot reads the asker's e-mail from users.info (per-user Trellis identity); without
    # users:read.email Slack leaves the field out.
    "users.info": frozenset({"users:read", "users:read.email"}),
    "reactions.add": frozenset({"reactions:write"}),
    "views.publish": frozenset(),
    # PRIVATE_ANSWERS=dm: the asker's DM with the bot, and links between it and the thread.
    "conversations.open": frozenset({"im:write"}),
    "chat.getPermalink": frozenset(),
    # Native streaming and Slack's status line (SLACK.md, "Slack's AI surface, 2026").
    "chat.startStream": frozenset({"chat:write"}),
    "chat.appendStream": frozenset({"chat:write"}),
    "chat.stopStream": frozenset({"chat:write"}),
    "assistant.threads.setStatus": frozenset({"chat:write"}),
    "assistant.threads.setSuggestedPrompts": frozenset({"assistant:write"}),
}

#: Methods called with the app-level token (``xapp-…``), whose scope is granted when the admin
#: generates that token: a manifest cannot declare it (README, "Install the Slack app", step 2).
APP_TOKEN_METHODS: dict[str, frozenset[str]] = {
    "apps.connections.open": frozenset({"connections:write"}),
}

#: Bot scope each subscribable bot event needs.
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "app_mention": frozenset({"app_mentions:read"}),
    "message.channels": frozenset({"channels:history"}),
    "message.groups": frozenset({"groups:history"}),
    "message.im": frozenset({"im:history"}),
    "message.mpim": frozenset({"mpim:history"}),
    "app_home_opened": frozenset(),
    # Slack's own Stop in an agent conversation; its page on docs.slack.dev lists no scope.
    "agent_session_stopped": frozenset(),
}

#: Route kinds that Slack delivers as interactivity payloads.
_INTERACTIVE_KINDS = frozenset({"action", "view", "shortcut", "options"})
_KNOWN_KINDS = _INTERACTIVE_KINDS | {"event", "command"}

#: A Web API method named in a string passed to ``_call(...)`` / ``api_call(...)``.
_METHOD_STRING = re.compile(r"""\b(?:_call|api_call)\(\s*["']([a-z]+(?:\.[A-Za-z]+)+)["']""")
#: A call of some object's ``name(`` method; kept when ``name`` is a method of ``AsyncWebClient``.
_ATTRIBUTE_CALL = re.compile(r"\.([a-z]+_[A-Za-z0-9_]+)\(")
#: Inside slack-sdk: the Web API method a client method sends, and the client methods it calls.
_SDK_API_CALL = re.compile(r"""api_call\(\s*["']([a-z]+(?:\.[A-Za-z]+)+)["']""")
_SDK_SELF_CALL = re.compile(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)\(")


@cache
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(loaded, dict)
    return loaded


def bot_scopes() -> set[str]:
    return set(manifest()["oauth_config"]["scopes"]["bot"])


def bot_events() -> set[str]:
    return set(manifest()["settings"]["event_subscriptions"]["bot_events"])


def slash_commands() -> set[str]:
    return {command["command"] for command in manifest()["features"].get("slash_commands", [])}


def routes(kind: str) -> set[str]:
    return {route.name for route in ROUTES if route.kind == kind}


def _sdk_methods(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The Web API methods one ``AsyncWebClient`` method sends, following its helper calls."""
    function = getattr(AsyncWebClient, name, None)
    if function is None or not callable(function) or name == "api_call":
        return set()
    source = inspect.getsource(function)
    methods = set(_SDK_API_CALL.findall(source))
    for inner in set(_SDK_SELF_CALL.findall(source)) - seen - {name}:
        methods |= _sdk_methods(inner, seen | {name})
    return methods


@cache
def called_methods() -> dict[str, set[str]]:
    """Web API method → the modules of ``trellis_slack`` that call it."""
    found: dict[str, set[str]] = {}
    package = ROOT / "trellis_slack"
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where.startswith(("fakes/", "demo/")):
            continue  # the local servers answer these methods; they do not call Slack
        source = path.read_text()
        methods = set(_METHOD_STRING.findall(source))
        for name in set(_ATTRIBUTE_CALL.findall(source)):
            methods |= _sdk_methods(name)
        for method in methods:
            found.setdefault(method, set()).add(where)
    return found


def _event_type(subscription: str) -> str:
    """``message.im`` is delivered to listeners as the event type ``message``."""
    return subscription.split(".", 1)[0]


def test_manifest_is_valid_against_slacks_schema() -> None:
    """manifest.yml passes Slack's own manifest schema."""
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems = [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(manifest())
    ]
    assert problems == []


def test_committed_schema_is_the_shared_reference() -> None:
    """The schema copy in tests/data is the team's reference schema, so the check above is current."""
    if not SHARED_SCHEMA.exists():
        pytest.skip("the team's reference schema is not here: tests/data's copy is checked alone")
    assert json.loads(SCHEMA.read_text()) == json.loads(SHARED_SCHEMA.read_text()), (
        f"{SCHEMA.relative_to(ROOT)} differs from {SHARED_SCHEMA}: copy the shared one over it"
    )


def test_every_route_kind_is_understood_here() -> None:
    """Every kind of listener in the wiring table is one this test knows how to check."""
    assert {route.kind for route in ROUTES} <= _KNOWN_KINDS


def test_handled_events_and_subscribed_events_are_the_same() -> None:
    """Every event the app listens to is subscribed, and every subscribed event has a listener."""
    subscribed = bot_events()
    assert {_event_type(event) for event in subscribed} == routes("event")


def test_the_bot_is_declared_as_an_agent() -> None:
    """features.agent_view describes the analyst and suggests the bot's own default prompts."""
    agent = manifest()["features"]["agent_view"]
    assert "data analyst" in agent["agent_description"]
    assert len(agent["agent_description"]) <= 300
    prompts = tuple((p["title"], p["message"]) for p in agent["suggested_prompts"])
    assert prompts == DEFAULT_PROMPTS
    assert "assistant_view" not in manifest()["features"]  # the older form, not both


def test_messages_are_subscribed_everywhere_the_bot_answers() -> None:
    """The message listener receives channel, private channel, DM and group DM messages."""
    if "message" in routes("event"):
        assert {
            "message.channels",
            "message.groups",
            "message.im",
            "message.mpim",
        } <= bot_events()


def test_slash_commands_are_declared_and_handled() -> None:
    """Every slash command the app handles is declared, and every declared command is handled."""
    assert slash_commands() == routes("command")
    for command in manifest()["features"].get("slash_commands", []):
        # Socket Mode delivers commands over the socket: a request URL would be ignored at best.
        assert "url" not in command
        # The handler parses the raw text itself; escaping would turn <@U…> into @name.
        assert command.get("should_escape") is False


def test_interactivity_is_on_when_the_app_has_buttons() -> None:
    """Buttons (Stop, Retry) reach the app only when interactivity is enabled."""
    interactive = any(route.kind in _INTERACTIVE_KINDS for route in ROUTES)
    assert manifest()["settings"]["interactivity"]["is_enabled"] is interactive


def test_socket_mode_without_request_urls() -> None:
    """The app runs in Socket Mode: no public URL to host, and none declared."""
    settings = manifest()["settings"]
    assert settings["socket_mode_enabled"] is True
    assert "request_url" not in settings["event_subscriptions"]
    assert "request_url" not in settings["interactivity"]


def test_app_home_lets_people_dm_the_bot() -> None:
    """People can DM the bot from its Messages tab, and see its Home tab when it publishes one."""
    app_home = manifest()["features"]["app_home"]
    if "message.im" in bot_events():
        assert app_home["messages_tab_enabled"] is True
        assert app_home["messages_tab_read_only_enabled"] is False
    if "views.publish" in called_methods():
        assert app_home["home_tab_enabled"] is True
    assert "bot_user" in manifest()["features"]


def test_method_collector_sees_the_calls_in_the_code() -> None:
    """The scan below finds the calls it must: named methods, SDK helpers and their inner calls."""
    found = called_methods()
    assert {"chat.postMessage", "chat.update", "files.delete", "users.info"} <= found.keys()
    # client.auth_test() in bot/app.py; files_upload_v2 sends these two in slack/web.py.
    assert "auth.test" in found
    assert {"files.getUploadURLExternal", "files.completeUploadExternal"} <= found.keys()
    assert found["files.completeUploadExternal"] == {"slack/web.py"}


def _needed_scopes() -> tuple[set[str], list[str]]:
    """The scopes the code needs, and the called methods this test has no scope entry for."""
    called = called_methods()
    unknown = sorted(
        f"{method} (in {', '.join(sorted(called[method]))})"
        for method in called
        if method not in METHOD_SCOPES and method not in APP_TOKEN_METHODS
    )
    needed: set[str] = set()
    for method in called.keys() & METHOD_SCOPES.keys():
        needed |= METHOD_SCOPES[method]
    for event in bot_events():
        needed |= EVENT_SCOPES[event]
    if routes("command"):
        needed.add("commands")
    return needed, unknown


def test_every_web_api_method_the_code_calls_has_its_scope() -> None:
    """Every Web API method the code calls, every subscribed event and the command has its scope."""
    needed, unknown = _needed_scopes()
    assert unknown == [], "add these methods and their scopes to METHOD_SCOPES"
    assert sorted(needed - bot_scopes()) == []


def test_every_scope_is_used() -> None:
    """The app asks for no scope it does not use: admins approve only what the bot needs."""
    needed, _ = _needed_scopes()
    assert sorted(bot_scopes() - needed) == []


def test_app_level_scopes_are_not_asked_of_the_bot() -> None:
    """Scopes of the app-level token are not bot scopes: Slack would reject the manifest."""
    app_level: set[str] = set().union(*APP_TOKEN_METHODS.values())
    assert sorted(bot_scopes() & app_level) == []


def test_every_subscribed_event_is_known_here() -> None:
    """Every subscribed event has its scope listed in this test."""
    assert sorted(bot_events() - EVENT_SCOPES.keys()) == []
