"""The fake Web API's files family: upload URLs, completing uploads, files.info and files.delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from trellis_slack.fakes.slack_api_base import ApiBase, optional_str
from trellis_slack.fakes.slack_content import block_problems, with_block_ids
from trellis_slack.fakes.slack_model import DOMAIN, Channel, Failure, FakeFile, JsonDict, new_id

__all__ = ["FileMethods", "filetype_of"]

_MIMETYPES: Final = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "csv": "text/csv",
    "text": "text/plain",
    "markdown": "text/markdown",
    "json": "application/json",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def filetype_of(name: str) -> str:
    """Slack's ``filetype`` for a file name (``png``, ``csv``, ``text``, …)."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {"txt": "text", "md": "markdown", "jpeg": "jpg", "": "binary"}.get(ext, ext)


class FileMethods(ApiBase):
    """``files.*``: the two-step upload, a file's info and its deletion."""

    def upload(self, file_id: str, content: bytes) -> bool:
        """Store the bytes POSTed to an upload URL; ``False`` for an unknown upload."""
        upload = self._uploads.get(file_id)
        if upload is None:
            return False
        upload["content"] = content
        return True

    def mimetype(self, file: FakeFile) -> str:
        """The MIME type Slack reports for a file."""
        return _MIMETYPES.get(file.filetype, "application/octet-stream")

    def _upload_url(self, args: JsonDict) -> JsonDict | Failure:
        filename = optional_str(args.get("filename"))
        try:
            length = int(args.get("length", ""))
        except ValueError:
            return Failure("invalid_arguments", ("[ERROR] length must be an integer",))
        if filename is None or length <= 0:
            return Failure("invalid_arguments", ("[ERROR] filename and length are required",))
        file_id = new_id("F")
        self._uploads[file_id] = {
            "name": filename,
            "length": length,
            "alt_txt": optional_str(args.get("alt_txt")),
            "content": None,
        }
        return {"upload_url": f"{self.base_url}upload/v1/{file_id}", "file_id": file_id}

    def _complete_upload(self, args: JsonDict) -> JsonDict | Failure:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            return Failure("invalid_arguments", ("[ERROR] files is required",))
        ids = [str(i.get("id")) if isinstance(i, dict) else "" for i in items]
        if any(self._uploads.get(i, {}).get("content") is None for i in ids):
            return Failure("file_not_found")
        if not args.get("channel_id") and args.get("channels"):
            args = args | {"channel_id": str(args["channels"]).split(",")[0]}
        channel: Channel | None = None
        thread_ts: str | None = None
        if args.get("channel_id"):
            found = self._writable(args, "channel_id")
            if isinstance(found, Failure):
                return found
            channel = found
            thread = self._thread(channel, args)
            if isinstance(thread, Failure):
                return thread
            thread_ts = thread
        blocks = args.get("blocks")
        if blocks is not None and (problems := block_problems(blocks, files=self.files)):
            return Failure("invalid_blocks", tuple(problems))
        made: list[FakeFile] = []
        for item, file_id in zip(items, ids, strict=True):
            upload = self._uploads.pop(file_id)
            name = str(upload["name"])
            made.append(
                FakeFile(
                    id=file_id,
                    name=name,
                    title=str(item.get("title") or name),
                    filetype=filetype_of(name),
                    content=bytes(upload["content"]),
                    alt_txt=upload["alt_txt"],
                    channel=channel.id if channel else None,
                    thread_ts=thread_ts,
                )
            )
        if channel is not None:
            extra: JsonDict = {"subtype": "file_share", "upload": True, "display_as_bot": False}
            extra["files"] = [self._file_object(f) for f in made]
            if blocks is not None:
                extra["blocks"] = with_block_ids(blocks)
            text = str(args.get("initial_comment") or "")
            message = self.world.post_as_bot(
                channel.id, text=text, thread_ts=thread_ts, extra=extra
            )
            made = [replace(f, message_ts=message["ts"]) for f in made]
            self._status.pop((channel.id, thread_ts or ""), None)
        for file in made:
            self.world.files[file.id] = file
        return {"files": [{"id": f.id, "title": f.title} for f in made]}

    def _file_object(self, file: FakeFile) -> JsonDict:
        obj: JsonDict = {
            "id": file.id,
            "created": 1_700_000_000,
            "timestamp": 1_700_000_000,
            "name": file.name,
            "title": file.title,
            "mimetype": self.mimetype(file),
            "filetype": file.filetype,
            "pretty_type": file.filetype.upper(),
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "editable": False,
            "size": len(file.content),
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": f"{self.base_url}files-pri/{file.id}/{file.name}",
            "permalink": f"{DOMAIN}/files/{self.bot_user_id}/{file.id}/{file.name}",
        }
        if file.alt_txt is not None:
            obj["alt_txt"] = file.alt_txt
        return obj

    def _file_info(self, args: JsonDict) -> JsonDict | Failure:
        file = self.files.get(str(args.get("file", "")))
        if file is None:
            return Failure("file_not_found")
        if file.deleted:
            return Failure("file_deleted")
        obj = self._file_object(file)
        shares: JsonDict = {}
        for visibility, share in self.world.iter_shares(file):
            shares.setdefault(visibility, {})[file.channel] = [share]
        obj["shares"] = shares
        obj["channels"] = [file.channel] if "public" in shares else []
        obj["groups"] = [file.channel] if "private" in shares else []
        obj["is_public"] = "public" in shares
        return {"file": obj}

    def _file_delete(self, args: JsonDict) -> JsonDict | Failure:
        file = self.files.get(str(args.get("file", "")))
        if file is None:
            return Failure("file_not_found")
        if file.deleted:
            return Failure("file_deleted")
        self.world.files[file.id] = replace(file, deleted=True)
        if file.channel and file.message_ts:
            message = self.world.message(file.channel, file.message_ts)
            if message is not None:
                files = [
                    {"id": f["id"], "mode": "tombstone"} if f.get("id") == file.id else f
                    for f in message.get("files", [])
                ]
                self.world.change(file.channel, file.message_ts, {"files": files})
        return {}
