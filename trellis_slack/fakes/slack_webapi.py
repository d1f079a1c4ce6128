"""The fake Slack's Web API without HTTP: each method's effect on the world and its answer."""

from __future__ import annotations

from trellis_slack.fakes.slack_api_assistant import AssistantMethods
from trellis_slack.fakes.slack_api_base import Handler
from trellis_slack.fakes.slack_api_chat import ChatMethods
from trellis_slack.fakes.slack_api_conversations import ConversationMethods
from trellis_slack.fakes.slack_api_files import FileMethods
from trellis_slack.fakes.slack_api_stream import StreamMethods
from trellis_slack.fakes.slack_model import Failure, JsonDict
from trellis_slack.fakes.slack_workspace import Workspace

__all__ = ["WebApi"]


class WebApi(ChatMethods, StreamMethods, AssistantMethods, FileMethods, ConversationMethods):
    """What each Web API method does to the world and answers (no HTTP, no token checks).

    ``apps.connections.open`` is the server's business; everything else the app calls is here.
    Records of what the bot did that are not messages (ephemerals, statuses, suggested prompts,
    Home views, streams) live here too.
    """

    def __init__(self, world: Workspace, base_url: str = "http://127.0.0.1/") -> None:
        super().__init__(world, base_url)
        self.methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "reactions.add": self._reaction_add,
            "reactions.remove": self._reaction_remove,
            "conversations.info": self._conversation_info,
            "conversations.open": self._open,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
            "users.info": self._user_info,
            "bots.info": self._bot_info,
            "assistant.threads.setStatus": self._set_status,
            "assistant.threads.setSuggestedPrompts": self._set_suggested_prompts,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "files.info": self._file_info,
            "files.delete": self._file_delete,
            "views.publish": self._views_publish,
        }

    def call(self, method: str, args: JsonDict) -> JsonDict | Failure:
        """Run one method; events it causes wait in ``world.outbox``."""
        handler = self.methods.get(method)
        return Failure("unknown_method") if handler is None else handler(args)
