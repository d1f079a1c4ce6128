// The demo page: a Slack workspace in miniature, kept live by the /api/feed WebSocket.
//
// Safety: every string that comes from the workspace (messages, Block Kit, file names) goes
// through esc() before it becomes HTML; formatting only wraps text that is already escaped;
// links are made only for http(s) and mailto addresses. The server's Content-Security-Policy
// allows no inline script and nothing from other sites on top of that.
"use strict";

const state = {
  workspace: null,
  people: new Map(),
  rooms: new Map(),
  items: new Map(), // key -> {kind, channel, ts, message}: messages and ephemerals
  surface: new Map(), // key -> Slack's AI surface: {kind: "status" | "prompts", channel, …}
  agent: null, // the split view with the app: {thread: ts of its conversation, or null}
  votes: new Map(), // message key -> the feedback the person gave ("positive", "negative")
  stepsOpen: new Set(), // message keys whose finished steps the person unfolded
  tables: new Map(), // data_table id -> {column, descending, page}: how the person sorted and paged it
  seen: new Map(), // key -> Date first seen (the clock shown beside a message)
  room: null, // id of the conversation shown
  thread: null, // {channel, ts} of the open thread
  editing: null, // "key@where" of the message being edited (where: main or thread)
  draft: "", // the text in the editor
  confirming: null, // "key@where" of the message whose deletion waits for a confirmation
  dismissed: new Set(), // ephemeral messages the person dismissed
  lastRead: new Map(), // room id -> newest ts seen there
  renderQueued: false,
};

const EMOJI = {
  hourglass_flowing_sand: "⏳", hourglass: "⌛", warning: "⚠️", black_square_for_stop: "⏹️",
  information_source: "ℹ️", double_vertical_bar: "⏸️", white_check_mark: "✅", x: "❌",
  bar_chart: "📊", chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉",
  wastebasket: "🗑️", tada: "🎉", wave: "👋", mag: "🔍", thinking_face: "🤔", rocket: "🚀",
  heavy_check_mark: "✔️", eyes: "👀", memo: "📝", arrows_counterclockwise: "🔄", repeat: "🔁",
  bulb: "💡", robot_face: "🤖", pencil2: "✏️", speech_balloon: "💬", lock: "🔒",
  no_entry: "⛔", no_entry_sign: "🚫", question: "❓", exclamation: "❗", "+1": "👍",
  thumbsup: "👍", clipboard: "📋", link: "🔗", gear: "⚙️", hammer_and_wrench: "🛠️",
  construction: "🚧", sparkles: "✨", calendar: "📅", page_facing_up: "📄", card_index_dividers: "🗂️",
};

// --------------------------------------------------------------------------- text

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

function unentity(text) {
  return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function safeUrl(url) {
  const trimmed = String(url ?? "").trim();
  return /^(https?:\/\/|mailto:)/i.test(trimmed) ? trimmed : null;
}

function emoji(escaped) {
  return escaped.replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] ?? all);
}

// Placeholders keep finished HTML (code, links) away from the formatting of the text around it.
function holder() {
  const kept = [];
  return {
    hold: (html) => `\uE000${kept.push(html) - 1}\uE001`,
    restore: (text) => text.replace(/\uE000(\d+)\uE001/g, (_, i) => kept[Number(i)]),
  };
}

function clean(text) {
  return String(text ?? "").replace(/[\uE000\uE001]/g, "").replace(/\r\n?/g, "\n");
}

function personName(id) {
  if (id === "USLACKBOT") return "Slackbot";
  return state.people.get(id)?.name ?? id ?? "someone";
}

function link(url, labelHtml) {
  return `<a href="${esc(url)}" target="_blank" rel="noopener noreferrer">${labelHtml}</a>`;
}

// Slack's own mrkdwn (section and context text, people's messages): the text arrives with
// &, < and > escaped as entities, and <…> is a link, a mention or a special word.
function slackToken(inner) {
  const bar = inner.indexOf("|");
  const target = bar === -1 ? inner : inner.slice(0, bar);
  const label = bar === -1 ? "" : inner.slice(bar + 1);
  if (target.startsWith("@")) {
    return `<span class="mention">@${esc(label || personName(target.slice(1)))}</span>`;
  }
  if (target.startsWith("#")) {
    const room = state.rooms.get(target.slice(1));
    return `<span class="mention">#${esc(label || room?.name || target.slice(1))}</span>`;
  }
  if (target.startsWith("!")) {
    return `<span class="mention">@${esc(label || target.slice(1).split("^")[0])}</span>`;
  }
  const url = safeUrl(unentity(target));
  if (url) return link(url, esc(unentity(label || target)));
  return esc(`<${unentity(inner)}>`);
}

function mrkdwn(source) {
  const { hold, restore } = holder();
  let text = clean(source);
  text = text.replace(/```\n?([\s\S]*?)```/g, (_, code) => hold(`<pre class="code">${esc(unentity(code))}</pre>`));
  text = text.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code>${esc(unentity(code))}</code>`));
  text = text.replace(/<([^<>\n]+)>/g, (_, inner) => hold(slackToken(inner)));
  let out = esc(unentity(text));
  const edge = "(?=$|[\\s).,!?:;'\"\\uE000])";
  out = out.replace(new RegExp(`(^|[\\s(\\uE001])\\*(?=\\S)([^*\\n]*?\\S)\\*${edge}`, "gm"), "$1<b>$2</b>");
  out = out.replace(new RegExp(`(^|[\\s(\\uE001])_(?=\\S)([^_\\n]*?\\S)_${edge}`, "gm"), "$1<i>$2</i>");
  out = out.replace(new RegExp(`(^|[\\s(\\uE001])~(?=\\S)([^~\\n]*?\\S)~${edge}`, "gm"), "$1<s>$2</s>");
  out = emoji(out);
  out = out
    .split("\n")
    .map((line) => (line.startsWith("&gt;") ? `<span class="quote">${line.replace(/^&gt;\s?/, "")}</span>` : line))
    .join("<br>");
  return restore(out);
}

// Standard Markdown (``markdown`` blocks: Trellis's answers): blocks, then inline formatting.
function inlineMarkdown(source) {
  const { hold, restore } = holder();
  let text = clean(source);
  text = text.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code>${esc(code)}</code>`));
  text = text.replace(/\[([^\]\n]+)\]\(([^)\s]+)(?:\s+"[^"\n]*")?\)/g, (all, label, url) => {
    const safe = safeUrl(url);
    return safe ? hold(link(safe, formatMarkdown(esc(label)))) : all;
  });
  text = text.replace(/<((?:https?:\/\/|mailto:)[^>\s]+)>/gi, (_, url) => hold(link(url, esc(url))));
  return restore(emoji(formatMarkdown(esc(text))));
}

function formatMarkdown(escaped) {
  return escaped
    .replace(/\*\*(?=\S)([^\n]*?\S)\*\*/g, "<b>$1</b>")
    .replace(/__(?=\S)([^\n]*?\S)__/g, "<b>$1</b>")
    .replace(/(^|[^\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])/g, "$1<i>$2</i>")
    .replace(/(^|[^\w])_(?=\S)([^_\n]*?\S)_(?!\w)/g, "$1<i>$2</i>")
    .replace(/~~(?=\S)([^\n]*?\S)~~/g, "<s>$1</s>");
}

const LIST_ITEM = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

function markdown(source) {
  const lines = clean(source).split("\n");
  const out = [];
  let i = 0;
  const startsBlock = (line) =>
    /^ {0,3}(`{3,}|~{3,}|#{1,6}\s|>)/.test(line) || LIST_ITEM.test(line) || !line.trim();
  while (i < lines.length) {
    const line = lines[i];
    let match;
    if ((match = line.match(/^ {0,3}(`{3,}|~{3,})/))) {
      const fence = match[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[(i += 1) - 1]);
      i += 1;
      out.push(`<pre class="code">${esc(body.join("\n"))}</pre>`);
    } else if (!line.trim()) {
      i += 1;
    } else if ((match = line.match(/^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/))) {
      out.push(`<div class="md-heading md-h${match[1].length}">${inlineMarkdown(match[2])}</div>`);
      i += 1;
    } else if (/^ {0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.push("<hr>");
      i += 1;
    } else if (/^ {0,3}>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^ {0,3}>/.test(lines[i])) quoted.push(lines[(i += 1) - 1].replace(/^ {0,3}>\s?/, ""));
      out.push(`<blockquote>${markdown(quoted.join("\n"))}</blockquote>`);
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      const head = cells(line);
      const aligns = cells(lines[i + 1]).map((c) => (c.endsWith(":") ? "align-right" : ""));
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(cells(lines[(i += 1) - 1]));
      const row = (tag, values) =>
        `<tr>${values.map((v, c) => `<${tag} class="${aligns[c] ?? ""}">${inlineMarkdown(v)}</${tag}>`).join("")}</tr>`;
      out.push(`<table class="md-table"><thead>${row("th", head)}</thead><tbody>${rows.map((r) => row("td", r)).join("")}</tbody></table>`);
    } else if (LIST_ITEM.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const items = [];
      while (i < lines.length && LIST_ITEM.test(lines[i])) {
        const [, indent, , text] = lines[i].match(LIST_ITEM);
        items.push(`<li class="${indent.length >= 2 ? "nested" : ""}">${inlineMarkdown(text)}</li>`);
        i += 1;
      }
      const start = ordered ? ` start="${Number.parseInt(line.trim(), 10) || 1}"` : "";
      out.push(ordered ? `<ol${start}>${items.join("")}</ol>` : `<ul>${items.join("")}</ul>`);
    } else {
      const para = [];
      while (i < lines.length && (para.length === 0 || !startsBlock(lines[i]))) para.push(lines[(i += 1) - 1]);
      out.push(`<p>${para.map(inlineMarkdown).join("<br>")}</p>`);
    }
  }
  return out.join("");
}

// --------------------------------------------------------------------------- Block Kit

function textObject(text) {
  if (!text) return "";
  if (typeof text === "string") return mrkdwn(text);
  if (text.type === "mrkdwn") return text.verbatim ? esc(unentity(text.text)) : mrkdwn(text.text);
  return emoji(esc(text.text));
}

function richInline(element) {
  const style = element.style || {};
  let html;
  switch (element.type) {
    case "text":
      html = esc(element.text).replace(/\n/g, "<br>");
      break;
    case "link": {
      const url = safeUrl(element.url);
      html = url ? link(url, esc(element.text || element.url)) : esc(element.text || element.url);
      break;
    }
    case "user":
      html = `<span class="mention">@${esc(personName(element.user_id))}</span>`;
      break;
    case "channel":
      html = `<span class="mention">#${esc(state.rooms.get(element.channel_id)?.name ?? element.channel_id)}</span>`;
      break;
    case "emoji":
      html = esc(EMOJI[element.name] ?? `:${element.name}:`);
      break;
    case "broadcast":
      html = `<span class="mention">@${esc(element.range)}</span>`;
      break;
    default:
      html = esc(element.text ?? "");
  }
  if (style.code) html = `<code>${html}</code>`;
  if (style.bold) html = `<b>${html}</b>`;
  if (style.italic) html = `<i>${html}</i>`;
  if (style.strike) html = `<s>${html}</s>`;
  return html;
}

function richText(block) {
  return (block.elements || [])
    .map((part) => {
      const inline = (part.elements || []).map(richInline).join("");
      switch (part.type) {
        case "rich_text_preformatted":
          return `<pre class="code">${inline}</pre>`;
        case "rich_text_quote":
          return `<blockquote>${inline}</blockquote>`;
        case "rich_text_list": {
          const items = (part.elements || []).map((s) => `<li>${(s.elements || []).map(richInline).join("")}</li>`).join("");
          return part.style === "ordered" ? `<ol>${items}</ol>` : `<ul>${items}</ul>`;
        }
        default:
          return `<span>${inline}</span>`;
      }
    })
    .join("");
}

function element(el) {
  if (!el || typeof el !== "object") return "";
  if (el.type === "button") {
    const url = safeUrl(el.url);
    const label = emoji(esc(el.text?.text ?? "Button"));
    const style = el.style === "danger" || el.style === "primary" ? el.style : "";
    if (url) return `<a class="bk-button ${style}" href="${esc(url)}" target="_blank" rel="noopener noreferrer">${label}</a>`;
    return `<button type="button" class="bk-button ${style}" data-action-id="${esc(el.action_id ?? "")}" data-value="${esc(el.value ?? "")}">${label}</button>`;
  }
  if (el.type === "image") return `<span class="bk-image" title="${esc(el.alt_text ?? "")}">🖼️</span>`;
  if (el.type === "feedback_buttons") return feedbackButtons(el);
  if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${textObject(el)}</span>`;
  return `<span class="bk-unknown">[${esc(el.type)}]</span>`;
}

// An image block showing an uploaded file (slack_file): the demo serves its bytes at demo_url.
function imageBlock(b) {
  const title = b.title?.text ?? "";
  const url = typeof b.demo_url === "string" && b.demo_url.startsWith("/files/") ? b.demo_url : null;
  if (!url) return `<div class="block image-ref">🖼️ ${esc(title || b.alt_text || "image")}</div>`;
  return `<figure class="block image">${title ? `<figcaption>${esc(title)}</figcaption>` : ""}` +
    `<a href="${esc(url)}" target="_blank" rel="noopener"><img src="${esc(url)}" alt="${esc(b.alt_text || title)}"></a></figure>`;
}

// Drawn, not an emoji: a browser without an emoji font still shows it.
const THUMB = '<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true"><path fill="currentColor" ' +
  'd="M2 10h4v11H2zM8 21h9.3a2 2 0 0 0 2-1.6l1.6-7.4A2 2 0 0 0 19 9.6h-5.6l.9-4.3a1.6 1.6 0 0 0-.4-1.5L13 3 7.6 8.6A2 2 0 0 0 7 10z"/></svg>';

// Slack draws feedback_buttons as a thumbs up and a thumbs down; the chosen one stays pressed.
function feedbackButtons(el) {
  const button = (vote, icon) => {
    const b = el[`${vote}_button`] || {};
    const label = b.accessibility_label || b.text?.text || vote;
    return `<button type="button" class="feedback-button" data-feedback="${vote}" aria-label="${esc(label)}" ` +
      `title="${esc(b.text?.text ?? "")}">${icon}</button>`;
  };
  return `<span class="feedback">${button("positive", THUMB)}${button("negative", THUMB.replace("<path", '<path transform="rotate(180 12 12)"'))}</span>`;
}

// --------------------------------------------------------------------------- streams

const TASK_ICONS = { pending: "○", complete: "✓", error: "✕" };

function taskCards(tasks) {
  const cards = tasks.map((t) => {
    const status = ["pending", "in_progress", "complete", "error"].includes(t.status) ? t.status : "pending";
    const icon = status === "in_progress" ? '<span class="spinner" aria-hidden="true"></span>' : TASK_ICONS[status];
    const details = t.details ? `<small>${esc(t.details)}</small>` : "";
    return `<li class="task task-${status}" data-status="${status}"><span class="task-icon">${icon}</span>` +
      `<span class="task-title">${esc(t.title)}${details}</span></li>`;
  });
  return `<ol class="block tasks" aria-label="Steps">${cards.join("")}</ol>`;
}

// A message still streaming: its chunks in the order they came, the task cards as one timeline
// (at the place of the first), the Markdown so far with a caret.
function streamHtml(message) {
  const parts = [];
  let text = null;
  let timeline = false;
  for (const chunk of Array.isArray(message.chunks) ? message.chunks : []) {
    if (chunk.type === "markdown_text") {
      if (!text) parts.push((text = { text: "" }));
      text.text += chunk.text ?? "";
    } else if (chunk.type === "task_update" && !timeline) {
      timeline = true;
      parts.push("tasks");
    } else if (chunk.type === "blocks") {
      text = null;
      parts.push((chunk.blocks || []).map((b) => block(b, null)).join(""));
    }
  }
  const html = parts.map((part) => {
    if (part === "tasks") return taskCards(message.stream.tasks || []);
    if (typeof part === "string") return part;
    return `<div class="block markdown streamed">${markdown(part.text)}</div>`;
  });
  return `<div class="stream" data-streaming="true">${html.join("")}<span class="caret" aria-hidden="true"></span></div>`;
}

// A finished stream keeps its steps, folded, above the answer that replaced it.
function stepsSummary(tasks) {
  if (!tasks.length) return "";
  const failed = tasks.some((t) => t.status === "error");
  const label = `${failed ? "✕" : "✓"} ${tasks.length} ${tasks.length === 1 ? "step" : "steps"}`;
  return `<details class="steps"><summary>${label}</summary>${taskCards(tasks)}</details>`;
}

function tableBlock(block) {
  const settings = block.column_settings || [];
  const cell = (value, column) => {
    const align = settings[column]?.align === "right" ? "align-right" : settings[column]?.align === "center" ? "align-center" : "";
    const wrap = settings[column]?.is_wrapped ? "" : "nowrap";
    let html;
    if (value?.type === "rich_text") html = richText(value);
    else if (value?.type === "raw_text") html = esc(value.text);
    else html = esc(typeof value === "string" ? value : value?.text ?? "");
    return `<td class="${align} ${wrap}">${html}</td>`;
  };
  const rows = (block.rows || []).map((row) => `<tr>${row.map(cell).join("")}</tr>`).join("");
  return `<div class="block table-wrap"><table class="bk-table">${rows}</table></div>`;
}

// ``id`` names the block on the page (its message's key and place) for the state it keeps.
function block(b, id) {
  switch (b.type) {
    case "section": {
      let html = b.text ? `<div class="section-text">${textObject(b.text)}</div>` : "";
      if (Array.isArray(b.fields)) html += `<div class="fields">${b.fields.map((f) => `<div>${textObject(f)}</div>`).join("")}</div>`;
      if (b.accessory) html = `<div class="with-accessory"><div>${html}</div>${element(b.accessory)}</div>`;
      return `<div class="block section">${html}</div>`;
    }
    case "markdown":
      return `<div class="block markdown">${markdown(b.text)}</div>`;
    case "context":
      return `<div class="block context">${(b.elements || []).map(element).join("")}</div>`;
    case "actions":
      return `<div class="block actions">${(b.elements || []).map(element).join("")}</div>`;
    case "header":
      return `<div class="block header">${textObject(b.text)}</div>`;
    case "divider":
      return `<hr class="block divider">`;
    case "image":
      return imageBlock(b);
    case "context_actions":
      return `<div class="block context-actions">${(b.elements || []).map(element).join("")}</div>`;
    case "table":
      return tableBlock(b);
    case "data_visualization":
      return chartBlock(b);
    case "data_table":
      return dataTable(b, id);
    case "rich_text":
      return `<div class="block rich-text">${richText(b)}</div>`;
    default:
      return `<div class="block bk-unknown">[${esc(b.type)} block]</div>`;
  }
}

function size(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function file(f) {
  if (f.mode === "tombstone") return `<div class="file gone">This file was deleted.</div>`;
  const url = typeof f.demo_url === "string" && f.demo_url.startsWith("/files/") ? f.demo_url : null;
  const title = f.title || f.name || "file";
  if (!url) return `<div class="file gone">${esc(title)}</div>`;
  if (String(f.mimetype).startsWith("image/")) {
    return `<figure class="file image"><figcaption>${esc(title)}</figcaption>` +
      `<a href="${esc(url)}" target="_blank" rel="noopener"><img src="${esc(url)}" alt="${esc(f.alt_txt || title)}"></a></figure>`;
  }
  return `<div class="file card"><span class="file-type">${esc(String(f.filetype || "file").toUpperCase())}</span>` +
    `<span class="file-name">${esc(title)}<small>${esc(f.name ?? "")} · ${size(f.size)}</small></span>` +
    `<a class="download" href="${esc(url)}" download="${esc(f.name ?? "")}">Download</a></div>`;
}

function body(message, fromApp, key) {
  let html = "";
  if (message.stream?.state === "streaming") return streamHtml(message);
  if (message.stream) html = stepsSummary(message.stream.tasks || []);
  if (fromApp && Array.isArray(message.blocks) && message.blocks.length) {
    html += message.blocks.map((b, i) => block(b, `${key}#${i}`)).join("");
  } else if (message.text) {
    html += `<div class="block section">${mrkdwn(message.text)}</div>`;
  }
  if (Array.isArray(message.files)) html += `<div class="files">${message.files.map(file).join("")}</div>`;
  return html;
}

// --------------------------------------------------------------------------- messages

function compareTs(a, b) {
  const key = (ts) => {
    const [whole, fraction = ""] = String(ts).split(".");
    return BigInt(whole || "0") * 1000000n + BigInt((fraction + "000000").slice(0, 6));
  };
  const x = key(a);
  const y = key(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function clock(key) {
  if (!state.seen.has(key)) state.seen.set(key, new Date());
  return state.seen.get(key).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function editableText(text) {
  return unentity(String(text ?? "").replace(/<@([UWB][A-Z0-9]+)(?:\|([^>]*))?>/g, (_, id, label) => `@${label || personName(id)}`));
}

function messageHtml(key, item, where) {
  const m = item.message;
  const ephemeral = item.kind === "ephemeral";
  const tombstone = m.subtype === "tombstone";
  const fromApp = Boolean(m.bot_id) || m.user === state.workspace.bot || ephemeral;
  const own = !ephemeral && !tombstone && m.user === state.workspace.me;
  const here = `${key}@${where}`;
  const author = tombstone ? "" : personName(m.user || m.bot_id);
  let content;
  if (tombstone) content = `<div class="tombstone">This message was deleted.</div>`;
  else if (state.editing === here) {
    content = `<div class="editor"><textarea class="editor-input" aria-label="Edit message"></textarea>` +
      `<div class="editor-buttons"><button type="button" data-act="cancel-edit">Cancel</button>` +
      `<button type="button" class="primary" data-act="save-edit">Save</button></div></div>`;
  } else content = body(m, fromApp, key);
  if (state.stepsOpen.has(key)) content = content.replace('<details class="steps">', '<details class="steps" open>');
  const vote = state.votes.get(key);
  if (vote) content = content.replace(`data-feedback="${vote}"`, `data-feedback="${vote}" aria-pressed="true"`);
  const actions = [];
  if (!ephemeral && !tombstone && where === "main") actions.push(`<button type="button" data-act="thread">Reply in thread</button>`);
  if (own && state.editing !== here) actions.push(`<button type="button" data-act="edit">Edit</button>`, `<button type="button" data-act="delete">Delete</button>`);
  if (ephemeral) actions.push(`<button type="button" data-act="dismiss">Dismiss</button>`);
  const reactions = (Array.isArray(m.reactions) ? m.reactions : [])
    .map((r) => `<span class="reaction" title=":${esc(r.name)}:">${esc(EMOJI[r.name] ?? `:${r.name}:`)} ${esc(r.count ?? "")}</span>`)
    .join("");
  const count = m.reply_count || 0;
  const replies = where === "main" && count
    ? `<button type="button" class="reply-summary" data-act="thread">${count} ${count === 1 ? "reply" : "replies"}</button>`
    : "";
  const confirm = state.confirming === here
    ? `<div class="confirm">Delete this message? <button type="button" class="danger" data-act="confirm-delete">Delete</button>` +
      `<button type="button" data-act="cancel-delete">Cancel</button></div>`
    : "";
  const classes = ["message", fromApp ? "from-app" : "", ephemeral ? "ephemeral" : "", own ? "own" : "", tombstone ? "deleted" : ""];
  const avatar = tombstone ? "" : m.user === "USLACKBOT" ? "S" : fromApp ? "T" : author.slice(0, 1).toUpperCase();
  const meta = tombstone
    ? ""
    : `<div class="meta"><span class="author">${esc(author)}</span>${fromApp && m.user !== "USLACKBOT" ? '<span class="app-badge">APP</span>' : ""}` +
      `<time>${clock(key)}</time>${m.edited && !fromApp ? '<span class="edited">(edited)</span>' : ""}` +
      `${ephemeral ? '<span class="only-you">Only visible to you</span>' : ""}</div>`;
  return `<article class="${classes.filter(Boolean).join(" ")}" data-key="${esc(key)}" data-ts="${esc(m.ts)}">` +
    `<div class="avatar ${fromApp ? "avatar-app" : `avatar-${esc(author.length % 5)}`}">${esc(avatar)}</div>` +
    `<div class="message-body">${meta}<div class="content">${content}</div>` +
    `${reactions ? `<div class="reactions">${reactions}</div>` : ""}${replies}${confirm}</div>` +
    (actions.length ? `<div class="message-actions">${actions.join("")}</div>` : "") +
    `</article>`;
}

function fromHtml(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content.firstElementChild;
}

// Following the conversation, as Slack does: a list keeps its newest message in view while the
// reader is at (or near) its bottom, whatever makes it grow or shrink: a new or longer message, a
// chart image that loads, the pane narrowing when a thread opens beside it. A reader who scrolled
// up is left where they are until they scroll back down (or send something, or open the list).
const NEAR_BOTTOM = 80;

function follower(container) {
  if (container.follower) return container.follower;
  const follow = { on: true, last: 0, setTo: -1 };
  follow.stick = () => {
    if (!follow.on) return;
    container.scrollTop = container.scrollHeight;
    follow.setTo = follow.last = container.scrollTop;
  };
  container.addEventListener("scroll", () => {
    // Our own scroll, arriving after the list grew again, is not the reader scrolling up; only
    // a move up leaves the bottom, and coming back near it follows again.
    const top = container.scrollTop;
    if (top === follow.setTo) return;
    if (container.scrollHeight - top - container.clientHeight < NEAR_BOTTOM) follow.on = true;
    else if (top < follow.last) follow.on = false;
    follow.last = top;
  }, { passive: true });
  const resized = new ResizeObserver(follow.stick);
  resized.observe(container);
  follow.watch = (el) => resized.observe(el);
  follow.unwatch = (el) => resized.unobserve(el);
  container.follower = follow;
  return follow;
}

// Show a list's newest message and follow it again (opening a list, sending a message).
function followNewest(container) {
  const follow = follower(container);
  follow.on = true;
  follow.stick();
}

// Keyed rendering: a message's element is rebuilt only when its HTML changes, so images stay
// put and an editor keeps its caret while the bot edits other messages.
function renderList(container, entries, stick) {
  const cache = container.cache || (container.cache = new Map());
  const follow = follower(container);
  if (stick) follow.on = true;
  const wanted = new Set(entries.map(([key]) => key));
  for (const [key, record] of cache) {
    if (!wanted.has(key)) {
      follow.unwatch(record.el);
      record.el.remove();
      cache.delete(key);
    }
  }
  let previous = null;
  for (const [key, html] of entries) {
    let record = cache.get(key);
    if (!record || record.html !== html) {
      const el = fromHtml(html);
      if (record) {
        follow.unwatch(record.el);
        record.el.replaceWith(el);
      }
      follow.watch(el);
      record = { html, el };
      cache.set(key, record);
    }
    const next = previous ? previous.nextSibling : container.firstChild;
    if (next !== record.el) container.insertBefore(record.el, next);
    previous = record.el;
  }
  follow.stick();
}

function entriesOf(list, where) {
  return list
    .sort((a, b) => compareTs(a[1].ts, b[1].ts))
    .map(([key, item]) => [key, messageHtml(key, item, where)]);
}

function isTop(message) {
  return !message.thread_ts || message.thread_ts === message.ts || message.subtype === "thread_broadcast";
}

// --------------------------------------------------------------------------- the page

const $ = (id) => document.getElementById(id);

function room() {
  return state.rooms.get(state.room);
}

function renderSidebar() {
  const entry = (r) => {
    const unread = r.id !== state.room && hasUnread(r.id) ? " unread" : "";
    const active = r.id === state.room ? " active" : "";
    const label = r.kind === "im"
      ? `<span class="presence"></span>${esc(r.name)} <span class="app-badge">APP</span>`
      : `<span class="hash">#</span>${esc(r.name)}`;
    return `<li><button type="button" class="room${active}${unread}" data-room="${esc(r.id)}">${label}</button></li>`;
  };
  const rooms = [...state.rooms.values()];
  const channels = rooms.filter((r) => r.kind !== "im").map(entry).join("");
  const dms = rooms.filter((r) => r.kind === "im").map(entry).join("");
  if ($("channels").innerHTML !== channels) $("channels").innerHTML = channels;
  if ($("dms").innerHTML !== dms) $("dms").innerHTML = dms;
}

function hasUnread(roomId) {
  const read = state.lastRead.get(roomId);
  for (const item of state.items.values()) {
    if (item.channel === roomId && item.message.user !== state.workspace.me && (!read || compareTs(item.ts, read) > 0)) return true;
  }
  return false;
}

function markRead() {
  let newest = state.lastRead.get(state.room);
  for (const item of state.items.values()) {
    if (item.channel === state.room && (!newest || compareTs(item.ts, newest) > 0)) newest = item.ts;
  }
  if (newest) state.lastRead.set(state.room, newest);
}

function render() {
  state.renderQueued = false;
  if (!state.workspace) return;
  const current = room();
  $("conversation-title").textContent = current.kind === "im" ? current.name : `# ${current.name}`;
  $("conversation-topic").textContent = current.topic || "";
  $("composer-input").placeholder = current.kind === "im"
    ? `Message ${current.name}`
    : `Message #${current.name}: mention @trellis to ask it`;
  const main = [];
  const thread = [];
  for (const [key, item] of state.items) {
    if (item.channel !== state.room || state.dismissed.has(key)) continue;
    const m = item.message;
    if (isTop(m)) main.push([key, item]);
    if (state.thread && (m.ts === state.thread.ts || m.thread_ts === state.thread.ts)) thread.push([key, item]);
  }
  renderList($("messages"), entriesOf(main, "main"), false);
  const open = Boolean(state.thread);
  $("thread").hidden = !open;
  $("app").classList.toggle("with-thread", open || Boolean(state.agent));
  if (open) {
    $("thread-channel").textContent = current.kind === "im" ? current.name : `# ${current.name}`;
    const list = entriesOf(thread, "thread");
    if (!list.length) list.push(["gone", `<p class="empty">This thread is gone: its messages were deleted.</p>`]);
    const status = statusHtml(state.room, state.thread.ts);
    if (status) list.push(["status", status]);
    renderList($("thread-messages"), list, false);
  }
  renderAgent();
  const editor = document.querySelector(".editor-input");
  if (editor && !editor.dataset.ready) {
    editor.dataset.ready = "1";
    editor.value = state.draft;
    editor.focus();
  }
  markRead();
  renderSidebar();
}

// Slack's status under a thread ("trellis is looking into it…"), its loading messages rotating.
function statusHtml(channel, threadTs) {
  const status = state.surface.get(`s ${channel} ${threadTs}`);
  if (!status) return "";
  const messages = (status.loading_messages || []).map(String);
  const first = messages.length ? `<span class="loading" data-messages="${esc(JSON.stringify(messages))}">${esc(messages[0])}</span>` : "";
  return `<div class="status-line" role="status"><span class="spinner" aria-hidden="true"></span>` +
    `<b>${esc(personName(state.workspace.bot))}</b> ${esc(status.status)}${first}</div>`;
}

function rotateLoadingMessages() {
  for (const el of document.querySelectorAll(".status-line .loading")) {
    const messages = JSON.parse(el.dataset.messages || "[]");
    if (messages.length < 2) continue;
    const next = (messages.indexOf(el.textContent) + 1) % messages.length;
    el.textContent = messages[next];
  }
}

// --------------------------------------------------------------------------- the agent view

function agentRoom() {
  return [...state.rooms.values()].find((r) => r.kind === "im");
}

// Slack's split view with the app: its conversation beside the channel, the suggested prompts
// the app set for it, and Slack's own Stop while an answer streams.
function renderAgent() {
  const open = Boolean(state.agent);
  $("agent").hidden = !open;
  $("agent-toggle").setAttribute("aria-pressed", String(open));
  if (!open) return;
  const dm = agentRoom();
  const thread = state.agent.thread;
  const entries = [];
  for (const [key, item] of state.items) {
    const m = item.message;
    if (item.channel !== dm.id || state.dismissed.has(key) || !thread) continue;
    if (m.ts === thread || m.thread_ts === thread) entries.push([key, item]);
  }
  const list = entriesOf(entries, "agent");
  if (!thread) {
    list.push(["hello", `<div class="agent-hello"><div class="avatar avatar-app">T</div>` +
      `<p><b>${esc(personName(state.workspace.bot))}</b> answers questions about your data, with charts. ` +
      `${esc(dm.topic || "")}</p></div>`]);
  } else {
    const status = statusHtml(dm.id, thread);
    if (status) list.push(["status", status]);
  }
  renderList($("agent-messages"), list, false);
  const prompts = state.surface.get(`p ${dm.id}`);
  const chips = !thread && prompts
    ? (prompts.title ? `<span class="suggestions-label">${esc(prompts.title)}</span>` : "") +
      prompts.prompts.map((p) => `<button type="button" class="suggestion prompt" data-prompt="${esc(p.message)}" title="${esc(p.message)}">${esc(p.title)}</button>`).join("")
    : "";
  if ($("agent-prompts").innerHTML !== chips) $("agent-prompts").innerHTML = chips;
  $("agent-stop").hidden = !entries.some(([, item]) => item.message.stream?.state === "streaming");
}

function openAgent() {
  state.agent = state.agent ?? { thread: null };
  state.thread = null;
  render();
  $("agent-input").focus();
  api("open", { channel: agentRoom().id });
}

async function sendToAgent(text) {
  const trimmed = text.trim();
  if (!trimmed || !state.agent) return true;
  const dm = agentRoom();
  const thread = state.agent.thread;
  const result = await api("post", { channel: dm.id, text: trimmed, thread_ts: thread });
  if (!result.ok) return false;
  if (!thread && state.agent) state.agent.thread = result.ts;
  render();
  followNewest($("agent-messages"));
  return true;
}

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(render);
}

function selectRoom(id) {
  if (!state.rooms.has(id) || id === state.room) return;
  state.room = id;
  if (state.rooms.get(id).kind === "im") api("open", { channel: id });
  state.thread = null;
  state.editing = null;
  state.confirming = null;
  render();
  followNewest($("messages"));
}

function openThread(channel, ts) {
  state.thread = { channel, ts };
  state.agent = null;
  render();
  followNewest($("thread-messages"));
  $("thread-input").focus();
}

function toast(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.className = "error";
  banner.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { if (banner.className === "error") banner.hidden = true; }, 5000);
}

async function api(name, payload) {
  try {
    const response = await fetch(`/api/${name}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    const data = await response.json().catch(() => ({ ok: false, error: response.statusText }));
    if (!response.ok) toast(data.error || "That did not work.");
    return data;
  } catch {
    toast("The demo is not reachable: is `trellis-slack demo` still running?");
    return { ok: false };
  }
}

function mentionsBot(text) {
  const bot = personName(state.workspace.bot);
  return new RegExp(`(^|[^\\w@.])@${bot}\\b`, "i").test(text);
}

async function send(text, threadTs, attach) {
  const trimmed = text.trim();
  if (!trimmed) return true;
  if (trimmed.startsWith("/")) {
    await api("slash", { channel: state.room, text: trimmed });
    return true;
  }
  const result = await api("post", { channel: state.room, text: trimmed, thread_ts: threadTs ?? null, attach: attach || null });
  if (!result.ok) return false;
  followNewest($(threadTs ? "thread-messages" : "messages"));
  if (!threadTs && (room().kind === "im" || mentionsBot(trimmed))) openThread(state.room, result.ts);
  return true;
}

async function submit(input, threadTs) {
  const text = input.value;
  input.value = "";
  autosize(input);
  if (!(await send(text, threadTs))) input.value = text;
}

function autosize(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
}

function renderSuggestions() {
  const chips = state.workspace.suggestions
    .map((s) => `<button type="button" class="suggestion" data-question="${esc(s.question)}" data-attach="${esc(s.attach ?? "")}" title="${esc(s.question)}${s.attach ? ` (attaches ${esc(s.attach)})` : ""}">${esc(s.label)}</button>`)
    .join("");
  $("suggestions").innerHTML = chips ? `<span class="suggestions-label">Try:</span>${chips}` : "";
}

function hello(message) {
  const first = !state.workspace;
  state.workspace = message.workspace;
  state.people = new Map(message.workspace.people.map((p) => [p.id, p]));
  state.rooms = new Map(message.workspace.rooms.map((r) => [r.id, r]));
  state.items = new Map();
  state.surface = new Map();
  for (const [key, item] of Object.entries(message.items)) put(key, item);
  if (first) {
    $("workspace-name").textContent = message.workspace.name;
    $("me-name").textContent = personName(message.workspace.me);
    state.room = message.workspace.rooms[0].id;
    renderSuggestions();
  }
  if (!state.rooms.has(state.room)) state.room = message.workspace.rooms[0].id;
  document.body.dataset.ready = "true";
  render();
}

function put(key, item) {
  if (item.kind === "status" || item.kind === "prompts") state.surface.set(key, item);
  else state.items.set(key, item);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/feed`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      hello(message);
      return;
    }
    for (const op of message.ops || []) {
      if (op.op === "put") put(op.key, op.item);
      else if (op.op === "drop") {
        state.items.delete(op.key);
        state.surface.delete(op.key);
      }
    }
    scheduleRender();
  };
  socket.onopen = () => {
    if ($("banner").className === "offline") $("banner").hidden = true;
  };
  socket.onclose = () => {
    const banner = $("banner");
    banner.textContent = "Lost the connection to the demo. Reconnecting…";
    banner.className = "offline";
    banner.hidden = false;
    setTimeout(connect, 1000);
  };
}

async function onAction(button, article) {
  const key = article?.dataset.key;
  const item = key ? state.items.get(key) : null;
  const pane = article?.closest("#thread") ? "thread" : article?.closest("#agent") ? "agent" : "main";
  const here = `${key}@${pane}`;
  const act = button.dataset.act;
  if (act === "thread" && item) openThread(item.channel, item.message.thread_ts || item.ts);
  else if (act === "edit" && item) {
    state.editing = here;
    state.draft = editableText(item.message.text);
    state.confirming = null;
    render();
  } else if (act === "cancel-edit") {
    state.editing = null;
    render();
  } else if (act === "save-edit" && item) {
    const text = state.draft;
    state.editing = null;
    render();
    await api("edit", { channel: item.channel, ts: item.ts, text });
  } else if (act === "delete") {
    state.confirming = here;
    render();
  } else if (act === "cancel-delete") {
    state.confirming = null;
    render();
  } else if (act === "confirm-delete" && item) {
    state.confirming = null;
    render();
    await api("delete", { channel: item.channel, ts: item.ts });
  } else if (act === "dismiss" && key) {
    state.dismissed.add(key);
    render();
  }
}

async function onClick(event) {
  const target = event.target.closest("button");
  if (!target) return;
  const article = target.closest("article.message");
  if (target.dataset.table) {
    tableAction(target.dataset);
    render();
  } else if (target.dataset.room) selectRoom(target.dataset.room);
  else if (target.id === "thread-close") {
    state.thread = null;
    render();
  } else if (target.id === "agent-toggle") {
    if (state.agent) {
      state.agent = null;
      render();
    } else openAgent();
  } else if (target.id === "agent-close") {
    state.agent = null;
    render();
  } else if (target.id === "agent-new" && state.agent) {
    state.agent.thread = null;
    render();
    $("agent-input").focus();
  } else if (target.id === "agent-stop" && state.agent?.thread) {
    target.hidden = true;
    await api("stop_agent", { channel: agentRoom().id, thread_ts: state.agent.thread });
  } else if (target.dataset.prompt) await sendToAgent(target.dataset.prompt);
  else if (target.dataset.feedback && article) {
    const item = state.items.get(article.dataset.key);
    if (!item) return;
    state.votes.set(article.dataset.key, target.dataset.feedback);
    render();
    await api("feedback", {
      channel: item.channel,
      ts: item.ts,
      vote: target.dataset.feedback,
      blocks: item.message.blocks ?? null,
    });
  } else if (target.dataset.question) {
    const question = target.dataset.question;
    await send(room().kind === "im" ? question : `@${personName(state.workspace.bot)} ${question}`, null, target.dataset.attach);
  } else if (target.dataset.actionId !== undefined && article) {
    const item = state.items.get(article.dataset.key);
    if (!item) return;
    target.disabled = true;
    await api("click", {
      channel: item.channel,
      ts: item.ts,
      action_id: target.dataset.actionId,
      value: target.dataset.value,
      blocks: item.message.blocks ?? null,
    });
    target.disabled = false;
  } else if (target.dataset.act) await onAction(target, article);
}

function setUp() {
  document.addEventListener("click", (event) => { onClick(event); });
  // "toggle" does not bubble: listen while it goes down.
  document.addEventListener("toggle", (event) => {
    const key = event.target.closest?.("article.message")?.dataset.key;
    if (!key || !event.target.classList.contains("steps")) return;
    if (event.target.open) state.stepsOpen.add(key);
    else state.stepsOpen.delete(key);
  }, true);
  document.addEventListener("input", (event) => {
    if (event.target.classList.contains("editor-input")) state.draft = event.target.value;
    if (event.target.tagName === "TEXTAREA") autosize(event.target);
  });
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.classList?.contains("editor-input")) {
      if (event.key === "Escape") {
        state.editing = null;
        render();
      } else if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        target.closest("article").querySelector("[data-act=save-edit]").click();
      }
    } else if (["composer-input", "thread-input", "agent-input"].includes(target.id) && event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit($("composer-input"), null);
  });
  $("thread-composer").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.thread) submit($("thread-input"), state.thread.ts);
  });
  $("agent-composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("agent-input");
    const text = input.value;
    input.value = "";
    autosize(input);
    if (!(await sendToAgent(text))) input.value = text;
  });
  setInterval(rotateLoadingMessages, 2000);
  connect();
}

setUp();
