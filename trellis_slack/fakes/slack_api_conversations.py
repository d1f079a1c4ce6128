"""The fake Web API's reads and small writes: conversations, users, reactions, Home, auth."""

from __future__ import annotations

import base64
import copy
import secrets
import time

from trellis_slack.fakes.slack_api_base import ApiBase, truthy
from trellis_slack.fakes.slack_content import block_problems, with_block_ids
from trellis_slack.fakes.slack_model import DOMAIN, Channel, Failure, JsonDict, new_id

__all__ = ["ConversationMethods"]


def _page(items: list[JsonDict], args: JsonDict, default_limit: int) -> JsonDict:
    """One page of ``items`` with Slack's cursor pagination."""
    try:
        start = int(base64.b64decode(args.get("cursor") or "MA==").decode())
        limit = int(args.get("limit") or default_limit) or default_limit
    except ValueError:
        start, limit = 0, default_limit
    page = items[start : start + limit]
    more = start + limit < len(items)
    cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
    return {
        "messages": copy.deepcopy(page),
        "has_more": more,
        "response_metadata": {"next_cursor": cursor},
    }


class ConversationMethods(ApiBase):
    """Conversations, users and bots, reactions, Home views, ``auth.test``."""

    def _auth_test(self, args: JsonDict) -> JsonDict | Failure:
        return {
            "url": DOMAIN + "/",
            "team": "Fake Workspace",
            "user": "trellis",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _reaction_add(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args, "timestamp")
        if isinstance(target, Failure):
            return target
        name = str(args.get("name", ""))
        if not name:
            return Failure("invalid_name")
        reactions: list[JsonDict] = target[1].setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        elif self.bot_user_id in reaction["users"]:
            return Failure("already_reacted")
        else:
            reaction["users"].append(self.bot_user_id)
            reaction["count"] += 1
        return {}

    def _reaction_remove(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args, "timestamp")
        if isinstance(target, Failure):
            return target
        message = target[1]
        reactions: list[JsonDict] = message.get("reactions", [])
        name = str(args.get("name", ""))
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None or self.bot_user_id not in reaction["users"]:
            return Failure("no_reaction")
        reaction["users"].remove(self.bot_user_id)
        reaction["count"] -= 1
        if not reaction["users"]:
            reactions.remove(reaction)
        if not reactions:
            message.pop("reactions", None)
        return {}

    def _conversation_info(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args)
        if isinstance(channel, Failure):
            return channel
        return {"channel": self.world.channel_object(channel)}

    def _open(self, args: JsonDict) -> JsonDict | Failure:
        """``conversations.open`` with one user: the bot's IM with them, made when missing.

        As Slack: several users (a group DM) or a bot are refused here, since the bridge only
        opens DMs with one person; an unknown user is ``user_not_found``.
        """
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if len(users) != 1:
            return Failure("not_enough_users" if not users else "too_many_users")
        user = self.world.users.get(users[0])
        if user is None:
            return Failure("user_not_found")
        if user.is_bot:
            return Failure("cannot_dm_bot")
        channel = self.world.im_with(user.id)
        if channel is None:
            channel = Channel(new_id("D"), user.id, "im", frozenset({user.id, self.bot_user_id}))
            self.world.add_channel(channel)
        return {"channel": {"id": channel.id}}

    def _window(self, messages: list[JsonDict], args: JsonDict) -> list[JsonDict]:
        inclusive = truthy(args.get("inclusive"))
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")

        def inside(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return (oldest < ts or oldest == 0) and ts < latest

        return [m for m in messages if inside(float(m["ts"]))]

    def _replies(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args)
        if isinstance(channel, Failure):
            return channel
        root = self.world.thread_root(channel.id, str(args.get("ts", "")))
        if root is None:
            return Failure("thread_not_found")
        parent = self.world.message(channel.id, root)
        thread = [parent, *self.world.replies(channel.id, root)] if parent else []
        return _page(self._window(thread, args), args, 1000)

    def _history(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args)
        if isinstance(channel, Failure):
            return channel
        top = [
            m
            for m in self.world.all_messages(channel.id)
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        return _page(self._window(top, args)[::-1], args, 100)

    def _user_info(self, args: JsonDict) -> JsonDict | Failure:
        user = self.world.users.get(str(args.get("user", "")))
        if user is None:
            return Failure("user_not_found")
        return {"user": self.world.user_object(user)}

    def _bot_info(self, args: JsonDict) -> JsonDict | Failure:
        bot = str(args.get("bot", ""))
        user = next((u for u in self.world.users.values() if u.bot_id and u.bot_id == bot), None)
        if user is None:
            return Failure("bot_not_found")
        app_id = self.app_id if bot == self.bot_id else "A" + bot[1:]
        return {
            "bot": {
                "id": bot,
                "deleted": False,
                "name": user.name,
                "updated": 1_690_000_000,
                "app_id": app_id,
                "user_id": user.id,
                "icons": {"image_48": "https://example.invalid/bot_48.png"},
            }
        }

    def _views_publish(self, args: JsonDict) -> JsonDict | Failure:
        user = str(args.get("user_id", ""))
        if user not in self.world.users:
            return Failure("user_not_found")
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") != "home":
            return Failure("invalid_arguments", ("[ERROR] view.type must be home",))
        problems = block_problems(view.get("blocks", []), max_blocks=100, files=self.files)
        if problems:
            return Failure("invalid_arguments", tuple(problems))
        stored = copy.deepcopy(view)
        stored["blocks"] = with_block_ids(stored.get("blocks", []))
        self.home_views[user] = stored
        published = {"id": new_id("V"), "team_id": self.team_id, "app_id": self.app_id}
        published |= {"bot_id": self.bot_id, "hash": f"{int(time.time())}.{secrets.token_hex(4)}"}
        return {"view": published | stored}
