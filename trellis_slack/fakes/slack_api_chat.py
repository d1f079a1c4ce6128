"""The fake Web API's chat family: post, update, delete, ephemerals and permalinks."""

from __future__ import annotations

from trellis_slack.fakes.slack_api_base import ApiBase, optional_str
from trellis_slack.fakes.slack_model import DOMAIN, Failure, JsonDict

__all__ = ["ChatMethods"]


class ChatMethods(ApiBase):
    """``chat.*``: messages the bot posts, changes and deletes (streams: ``slack_api_stream``)."""

    def _post_message(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._writable(args)
        if isinstance(channel, Failure):
            return channel
        content = self._content(args)
        if isinstance(content, Failure):
            return content
        thread_ts = self._thread(channel, args)
        if isinstance(thread_ts, Failure):
            return thread_ts
        text = content.pop("text")
        message = self.world.post_as_bot(channel.id, text=text, thread_ts=thread_ts, extra=content)
        self._status.pop((channel.id, thread_ts or ""), None)
        return {"channel": channel.id, "ts": message["ts"], "message": self._public(message)}

    def _update(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args)
        if isinstance(target, Failure):
            return target
        channel, message = target
        if message.get("bot_id") != self.bot_id:
            return Failure("cant_update_message")
        given = {
            k: args[k] for k in ("text", "blocks", "attachments", "markdown_text") if k in args
        }
        if not given:
            return Failure("no_text")
        merged = {"text": message.get("text"), "blocks": message.get("blocks")} | given
        if "markdown_text" in given:
            merged = {"markdown_text": given["markdown_text"]}
        content = self._content(merged)
        if isinstance(content, Failure):
            return content
        content["edited"] = {"user": self.bot_user_id, "ts": self.world.clock.next()}
        remove = [] if "blocks" in content else ["blocks"]
        _, new = self.world.change(channel.id, message["ts"], content, remove=remove)
        return {
            "channel": channel.id,
            "ts": new["ts"],
            "text": new.get("text", ""),
            "message": self._public(new),
        }

    def _delete(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args)
        if isinstance(target, Failure):
            return target
        channel, message = target
        if message.get("bot_id") != self.bot_id:
            return Failure("cant_delete_message")
        self.world.delete(channel.id, message["ts"])
        return {"channel": channel.id, "ts": message["ts"]}

    def _post_ephemeral(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._writable(args)
        if isinstance(channel, Failure):
            return channel
        user = str(args.get("user", ""))
        if user not in self.world.users:
            return Failure("user_not_found")
        if user not in channel.members:
            return Failure("user_not_in_channel")
        content = self._content(args)
        if isinstance(content, Failure):
            return content
        ts = self.world.clock.next()
        record: JsonDict = {"channel": channel.id, "user": user, "message_ts": ts}
        record |= content
        record["thread_ts"] = optional_str(args.get("thread_ts"))
        self.ephemerals.append(record)
        return {"message_ts": ts}

    def _permalink(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args, "message_ts")
        if isinstance(target, Failure):
            return target
        channel, message = target
        link = f"{DOMAIN}/archives/{channel.id}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}
