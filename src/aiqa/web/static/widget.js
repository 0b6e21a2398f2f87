/* aiqa chat widget: one line on any intranet page adds a chat button and panel.
 *
 *   <script src="http://HOST:PORT/widget.js" data-title="사내 문서 도우미" data-color="#0b5cad"
 *           data-token="..." async></script>
 *
 * Optional: data-lang="ko|en" (default: Korean unless the browser prefers English),
 * data-open="true" (start open), data-mode="page" (full page, used by /widget; there the same
 * options may also come from the page's query string, e.g. /widget?title=...&color=...).
 * Talks to /api/ask next to this script; the page's origin must be in AIQA_ALLOWED_ORIGINS.
 * Answers stream as server-sent events: the quoted answer at once, then (with an LLM server) the
 * text being written, then the final answer; a plain JSON reply (an error, an older server) still works.
 * Everything lives in a Shadow DOM, and all DOM is built with createElement/textContent.
 */
(function () {
  "use strict";
  // currentScript is only set during this first run, so capture it before anything else.
  var script = document.currentScript;
  if (!script) {
    var found = document.querySelectorAll('script[src*="widget.js"]');
    script = found[found.length - 1];
  }
  if (!script || script.getAttribute("data-aiqa-ready")) return;
  script.setAttribute("data-aiqa-ready", "1");

  var data = script.dataset;
  var pageMode = data.mode === "page";
  var query = pageMode ? new URLSearchParams(location.search) : null;
  function opt(name) { return (query && query.get(name)) || data[name] || ""; }

  var TEXT = {
    ko: {
      title: "사내 문서 도우미", subtitle: "답변마다 근거 문서를 보여 드립니다", open: "문서 도우미 열기",
      close: "닫기", placeholder: "문서에 대해 질문하세요", send: "보내기", thinking: "답을 찾는 중…",
      welcome: "안녕하세요! 사내 문서에 대해 물어보세요. 답변 아래에 근거가 된 문서와 문단을 번호로 보여 드립니다.",
      sources: "출처", related: "관련 문단",
      hint: "질문을 바꾸거나 더 구체적으로 물어보세요. 아래는 질문과 가장 가까운 문단입니다.",
      failed: "답변을 가져오지 못했습니다.", token: "이 서버는 토큰이 필요합니다 (data-token).",
      forbidden: "이 페이지에서는 문서 도우미를 쓸 수 없습니다.",
      writing: "답변 작성 중…", written: "문서 근거로 작성한 답변",
      quotedInstead: "작성한 답변을 문서로 확인하지 못해 문서의 문장을 그대로 보여 드립니다.",
      good: "도움이 됐어요", bad: "도움이 안 됐어요", comment: "무엇이 틀렸나요? (선택)", rate: "보내기",
      thanks: "의견 감사합니다"
    },
    en: {
      title: "Documents assistant", subtitle: "Every answer shows its sources", open: "Open the documents assistant",
      close: "Close", placeholder: "Ask about the documents", send: "Send", thinking: "Looking it up…",
      welcome: "Hello! Ask about the company's documents. Each answer lists the documents and passages it comes from.",
      sources: "Sources", related: "Related passages",
      hint: "Try rephrasing or asking more specifically. The closest passages are below.",
      failed: "Could not get an answer.", token: "This server needs a token (data-token).",
      forbidden: "This page may not use the documents assistant.",
      writing: "Writing…", written: "Written from the documents",
      quotedInstead: "The written answer could not be checked against the documents, so their own sentences are shown.",
      good: "Helpful", bad: "Not helpful", comment: "What was wrong? (optional)", rate: "Send",
      thanks: "Thank you for the feedback"
    }
  };
  var browserLang = ((navigator.languages && navigator.languages[0]) || navigator.language || "").toLowerCase();
  var lang = opt("lang") || (browserLang.indexOf("en") === 0 ? "en" : "ko");
  var T = TEXT[lang] || TEXT.ko;
  var color = opt("color");
  if (!color || !(window.CSS && CSS.supports("color", color))) color = "#1f4fd1";
  var token = opt("token");
  var endpoint = new URL("api/ask", script.src).href;
  var feedbackUrl = new URL("api/feedback", script.src).href;
  var asked = [];  // earlier questions, sent as history for follow-ups

  var CSS_TEXT = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    ".root{font-family:Pretendard,'Noto Sans KR','Apple SD Gothic Neo','Malgun Gothic',NanumGothic,system-ui,sans-serif;",
    "font-size:14px;line-height:1.6;color:#1f2937;word-break:keep-all;overflow-wrap:anywhere}",
    ".launcher{position:fixed;right:24px;bottom:24px;width:58px;height:58px;border-radius:50%;border:0;cursor:pointer;",
    "background:var(--accent);color:#fff;box-shadow:0 8px 24px rgba(15,23,42,.28);display:flex;align-items:center;",
    "justify-content:center;z-index:2147483000;transition:transform .15s}",
    ".launcher:hover{transform:scale(1.06)}.launcher svg{width:28px;height:28px;fill:currentColor}",
    ".panel{position:fixed;right:24px;bottom:96px;width:400px;max-width:calc(100vw - 32px);height:600px;",
    "max-height:calc(100vh - 120px);background:#fff;border-radius:16px;box-shadow:0 18px 48px rgba(15,23,42,.3);",
    "display:flex;flex-direction:column;overflow:hidden;z-index:2147483000;border:1px solid #e5e7eb}",
    ".panel[hidden]{display:none}",
    ".page .panel{position:fixed;inset:0;width:auto;max-width:none;height:auto;max-height:none;border-radius:0;",
    "box-shadow:none;border:0}",
    "header{background:var(--accent);color:#fff;padding:14px 16px;display:flex;align-items:center;gap:10px}",
    "header .t{flex:1;min-width:0}header .t b{display:block;font-size:15px}",
    "header .t small{opacity:.85;font-size:12px}",
    "header button{background:transparent;border:0;color:#fff;font-size:22px;cursor:pointer;line-height:1;padding:4px}",
    ".log{flex:1;overflow-y:auto;padding:16px;background:#f6f7f9;display:flex;flex-direction:column;gap:12px}",
    ".msg{max-width:92%;padding:10px 13px;border-radius:14px}",
    ".user{align-self:flex-end;background:var(--accent);color:#fff;border-bottom-right-radius:4px;white-space:pre-wrap}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}",
    ".bot p{margin:0 0 6px}.bot p:last-child{margin-bottom:0}.bot ul{margin:4px 0 6px;padding-left:20px}",
    ".pending{color:#6b7280;font-style:italic}",
    ".badge{display:inline-block;margin-bottom:6px;padding:0 8px;border-radius:999px;font-size:11px;font-weight:700;",
    "color:var(--accent);border:1px solid var(--accent)}",
    ".note,.writing{margin-bottom:6px;font-size:11.5px;color:#6b7280}",
    ".writing::after{content:' \\258D';animation:blink 1s steps(2) infinite}@keyframes blink{50%{opacity:0}}",
    ".draft{white-space:pre-wrap}",
    ".ref{color:var(--accent);font-weight:700;font-size:.75em;cursor:pointer;vertical-align:super;margin-left:1px}",
    ".label{font-size:11px;font-weight:700;letter-spacing:.03em;color:#6b7280;margin:10px 0 6px;",
    "padding-top:8px;border-top:1px solid #eef0f3}",
    ".list{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:6px}",
    "details{border:1px solid #e5e7eb;border-radius:8px;background:#fbfbfc}",
    "summary{cursor:pointer;padding:6px 9px;display:flex;gap:7px;align-items:baseline;font-size:12.5px;list-style:none}",
    "summary::-webkit-details-marker{display:none}",
    "summary::after{content:'\\25B8';margin-left:auto;color:#9ca3af}details[open] summary::after{content:'\\25BE'}",
    ".n{flex:none;min-width:20px;height:20px;line-height:20px;text-align:center;border-radius:5px;background:var(--accent);",
    "color:#fff;font-weight:700;font-size:11px}",
    ".related .n{background:#9ca3af}",
    ".what{flex:1;min-width:0}.file{display:block;font-weight:600}.meta{display:block;color:#6b7280;font-size:11.5px}",
    ".passage{padding:7px 10px 9px;border-top:1px dashed #e5e7eb;font-size:12.5px;white-space:pre-wrap}",
    "mark{background:#fff1a8;color:inherit;padding:0 2px;border-radius:3px}",
    ".abstain{background:#fff8e6;border:1px solid #f3c96b;border-left:5px solid #e0a100;color:#5b4300;",
    "border-radius:10px;padding:10px 12px}.abstain b::before{content:'\\26A0  '}.abstain div{font-size:12.5px}",
    ".error{background:#fdecec;border-left:5px solid #d64545;color:#7a1c1c}",
    "form{display:flex;gap:8px;padding:12px;border-top:1px solid #e5e7eb;background:#fff}",
    "textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:9px 11px;font:inherit;",
    "max-height:120px;outline:none}textarea:focus{border-color:var(--accent)}",
    "form button{border:0;border-radius:10px;padding:0 16px;background:var(--accent);color:#fff;font:inherit;",
    "font-weight:700;cursor:pointer}form button:disabled{opacity:.5;cursor:default}",
    ".rate{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin-top:8px;font-size:12px;color:#6b7280}",
    ".rate button{border:1px solid #e5e7eb;background:#fff;border-radius:8px;padding:2px 8px;cursor:pointer;font:inherit}",
    ".rate button:disabled{opacity:.5;cursor:default}.rate input{flex:1;min-width:140px;font:inherit;",
    "border:1px solid #d1d5db;border-radius:8px;padding:3px 8px}"
  ].join("");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // The answer is Markdown from the server: draw its small subset ('- ' lists, **bold**, [n]) as nodes.
  function inline(parent, text) {
    text.split(/(\*\*[^*]+?\*\*|\[\d{1,3}\])/).forEach(function (part) {
      if (!part) return;
      if (/^\*\*[^*]+\*\*$/.test(part)) {
        parent.appendChild(el("strong", null, part.slice(2, -2)));
      } else if (/^\[\d{1,3}\]$/.test(part)) {
        var ref = el("sup", "ref", part);
        ref.setAttribute("data-n", part.slice(1, -1));
        parent.appendChild(ref);
      } else {
        parent.appendChild(document.createTextNode(part));
      }
    });
  }

  function answerNodes(markdown) {
    var box = el("div", "answer"), list = null;
    String(markdown || "").trim().split("\n").forEach(function (line) {
      var text = line.trim(), item = /^[-*•] /.test(text);
      if (item) {
        if (!list) list = box.appendChild(el("ul"));
        inline(list.appendChild(el("li")), text.slice(2));
        return;
      }
      list = null;
      if (text) inline(box.appendChild(el("p")), text);
    });
    return box;
  }

  function passageNodes(passage, quote) {
    var box = el("div", "passage"), at = quote ? passage.indexOf(quote) : -1;
    if (at < 0) {
      if (quote) box.appendChild(el("mark", null, quote)).after(document.createTextNode("\n"));
      box.appendChild(document.createTextNode(passage));
      return box;
    }
    box.appendChild(document.createTextNode(passage.slice(0, at)));
    box.appendChild(el("mark", null, quote));
    box.appendChild(document.createTextNode(passage.slice(at + quote.length)));
    return box;
  }

  function sourceItem(n, item, body) {
    var li = el("li"), det = li.appendChild(el("details")), sum = det.appendChild(el("summary"));
    det.setAttribute("data-n", String(n));
    sum.appendChild(el("span", "n", n));
    var what = sum.appendChild(el("span", "what"));
    what.appendChild(el("span", "file", item.source));
    what.appendChild(el("span", "meta", [item.section, item.locator].filter(Boolean).join(" · ")));
    det.appendChild(body);
    return li;
  }

  // 👍 / 👎 under an answer the server kept (its answer_id); 👎 asks what was wrong before it is sent.
  function rateBar(bubble, res) {
    if (!res.answer_id) return;
    var bar = bubble.appendChild(el("div", "rate"));
    var up = bar.appendChild(el("button", "up", "👍"));
    var down = bar.appendChild(el("button", "down", "👎"));
    up.type = down.type = "button";
    up.title = T.good; down.title = T.bad;
    up.setAttribute("aria-label", T.good); down.setAttribute("aria-label", T.bad);
    var status = el("span", "done");
    function sendRating(rating, comment) {
      up.disabled = down.disabled = true;
      var headers = {"Content-Type": "application/json"};
      if (token) headers.Authorization = "Bearer " + token;
      fetch(feedbackUrl, {
        method: "POST", mode: "cors", credentials: "omit", headers: headers,
        body: JSON.stringify({answer_id: res.answer_id, rating: rating, comment: comment || ""})
      }).then(function (r) { status.textContent = r.ok ? T.thanks : T.failed; })
        .catch(function () { status.textContent = T.failed; })
        .then(function () { bar.textContent = ""; bar.appendChild(status); });
    }
    up.addEventListener("click", function () { sendRating("up"); });
    down.addEventListener("click", function () {
      if (bar.querySelector("input")) return;
      var note = bar.appendChild(el("input"));
      note.maxLength = 2000;
      note.placeholder = T.comment;
      var go = bar.appendChild(el("button", "send-rating", T.rate));
      go.type = "button";
      go.addEventListener("click", function () { sendRating("down", note.value.trim()); });
      note.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && !e.isComposing) { e.preventDefault(); go.click(); }
      });
      note.focus();
    });
  }

  function renderReply(bubble, res) {
    bubble.textContent = "";
    bubble.classList.remove("abstained");
    if (res.abstained) {
      bubble.classList.add("abstained");
      var box = bubble.appendChild(el("div", "abstain"));
      box.appendChild(el("b", null, String(res.answer || "").trim()));
      box.appendChild(el("div", null, T.hint));
      var related = res.related || [];
      if (related.length) {
        var rel = bubble.appendChild(el("div", "related"));
        rel.appendChild(el("div", "label", T.related));
        var ul = rel.appendChild(el("ul", "list"));
        related.forEach(function (p) { ul.appendChild(sourceItem("¶", p, el("div", "passage", p.text))); });
      }
      rateBar(bubble, res);
      return;
    }
    if (res.mode === "generated") bubble.appendChild(el("div", "badge", T.written));
    else if (res.generation && res.generation.fallback) bubble.appendChild(el("div", "note", T.quotedInstead));
    bubble.appendChild(answerNodes(res.answer));
    var cites = res.citations || [];
    if (!cites.length) { rateBar(bubble, res); return; }
    var src = bubble.appendChild(el("div", "sources"));
    src.appendChild(el("div", "label", T.sources + " · " + cites.length));
    var ol = src.appendChild(el("ol", "list"));
    cites.forEach(function (c) { ol.appendChild(sourceItem(c.n, c, passageNodes(c.passage || "", c.quote || ""))); });
    rateBar(bubble, res);
    if (bubble.getAttribute("data-refs")) return;  // a streamed reply is drawn more than once: one listener
    bubble.setAttribute("data-refs", "1");
    bubble.addEventListener("click", function (event) {
      var n = event.target.getAttribute && event.target.getAttribute("data-n");
      if (!n || !event.target.classList.contains("ref")) return;
      var det = bubble.querySelector('details[data-n="' + n + '"]');
      if (det) { det.open = true; det.scrollIntoView({block: "nearest", behavior: "smooth"}); }
    });
  }

  // The model's text while it writes, as plain text (its [n] markers too: nothing is checked yet), in
  // place of the quoted answer and above that answer's sources, which stay until the final answer.
  function showDraft(bubble, text) {
    var draft = bubble.querySelector(".draft");
    if (!draft) {
      draft = el("div", "draft");
      var answer = bubble.querySelector(".answer");
      if (answer) bubble.replaceChild(draft, answer); else bubble.insertBefore(draft, bubble.firstChild);
      bubble.insertBefore(el("div", "writing", T.writing), draft);
    }
    draft.textContent = text;
  }

  // Server-sent events from a fetch body: an event ends at a blank line, and a chunk may end in the
  // middle of one (or between the \r and \n of a line end), so the unfinished tail waits for the next
  // chunk; an event cut off by the end of the stream is dropped, as EventSource does.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function dispatch(block) {
      var kind = "message", data = [];
      block.split("\n").forEach(function (line) {
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") kind = value;
        else if (field === "data") data.push(value);
      });
      if (!data.length) return;
      var payload;
      try { payload = JSON.parse(data.join("\n")); } catch (e) { return; }
      onEvent(kind, payload);
    }
    function drain() {
      var held = buffer.slice(-1) === "\r" ? "\r" : "";
      var blocks = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, "\n").split("\n\n");
      buffer = blocks.pop() + held;
      blocks.forEach(dispatch);
    }
    function pump() {
      return reader.read().then(function (chunk) {
        buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, {stream: true});
        drain();
        return chunk.done ? undefined : pump();
      });
    }
    return pump();
  }

  // The quoted answer at once, the text being written, then the final answer. A stream that ends
  // without its final answer shows the quoted one again: the model's text alone was never checked.
  function streamReply(bubble, response) {
    var quoted = null, final = false, text = "";
    bubble.classList.add("streaming");
    return readEvents(response, function (kind, res) {
      bubble.classList.remove("pending");
      if (kind === "extractive") {
        quoted = res;
        renderReply(bubble, res);
        bubble.scrollIntoView({block: "start", behavior: "smooth"});
      } else if (kind === "token" && !final) {
        text += String(res.text || "");
        showDraft(bubble, text);
      } else if (kind === "answer") {
        final = true;
        renderReply(bubble, res);
      }
    }).catch(function () {}).then(function () {
      bubble.classList.remove("streaming");
      if (final) return;
      if (!quoted) throw new Error("the answer stream ended early");
      renderReply(bubble, quoted);
    });
  }

  var host = el("div");
  host.setAttribute("data-aiqa-widget", "");
  host.style.setProperty("--accent", color);
  var shadow = host.attachShadow({mode: "open"});
  if (shadow.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS_TEXT);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.appendChild(el("style", null, CSS_TEXT));
  }
  var root = shadow.appendChild(el("div", pageMode ? "root page" : "root"));
  root.setAttribute("lang", lang === "en" ? "en" : "ko");

  var launcher = null;
  if (!pageMode) {
    launcher = root.appendChild(el("button", "launcher"));
    launcher.setAttribute("aria-label", T.open);
    launcher.setAttribute("aria-expanded", "false");
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
    svg.appendChild(path);
    launcher.appendChild(svg);
  }
  var panel = root.appendChild(el("section", "panel"));
  panel.setAttribute("role", pageMode ? "main" : "dialog");
  panel.setAttribute("aria-label", opt("title") || T.title);
  var header = panel.appendChild(el("header"));
  var heading = header.appendChild(el("div", "t"));
  heading.appendChild(el("b", null, opt("title") || T.title));
  heading.appendChild(el("small", null, T.subtitle));
  var log = panel.appendChild(el("div", "log"));
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.appendChild(el("div", "msg bot", T.welcome));
  var form = panel.appendChild(el("form"));
  var input = form.appendChild(el("textarea"));
  input.rows = 1;
  input.placeholder = T.placeholder;
  input.setAttribute("aria-label", T.placeholder);
  var send = form.appendChild(el("button", null, T.send));
  send.type = "submit";

  function setOpen(open) {
    panel.hidden = !open;
    if (launcher) launcher.setAttribute("aria-expanded", String(open));
    if (open) input.focus();
  }
  if (launcher) {
    var closer = header.appendChild(el("button", null, "×"));
    closer.type = "button";
    closer.setAttribute("aria-label", T.close);
    closer.addEventListener("click", function () { setOpen(false); launcher.focus(); });
    launcher.addEventListener("click", function () { setOpen(panel.hidden); });
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { setOpen(false); launcher.focus(); } });
    setOpen(data.open === "true");
  }

  function ask(question) {
    log.appendChild(el("div", "msg user", question));
    var bubble = log.appendChild(el("div", "msg bot pending", T.thinking));
    log.scrollTop = log.scrollHeight;
    send.disabled = true;
    var headers = {"Content-Type": "application/json"};
    if (token) headers.Authorization = "Bearer " + token;
    var earlier = asked.slice(-6);
    asked.push(question);
    fetch(endpoint, {
      method: "POST", mode: "cors", credentials: "omit", headers: headers,
      body: JSON.stringify({question: question, k: 5, history: earlier, stream: true})
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (response.ok && type.indexOf("text/event-stream") === 0 && response.body && window.TextDecoder) {
        return streamReply(bubble, response);
      }
      return response.json().catch(function () { return {}; }).then(function (body) {
        bubble.classList.remove("pending");
        if (response.ok) { renderReply(bubble, body); return; }
        var lead = response.status === 401 ? T.token : response.status === 403 ? T.forbidden : T.failed;
        bubble.classList.add("error");
        bubble.textContent = lead + (body && body.error ? " (" + body.error + ")" : "");
      });
    }).catch(function () {
      bubble.classList.remove("pending", "streaming");
      bubble.classList.add("error");
      bubble.textContent = T.failed;
    }).then(function () {
      send.disabled = false;
      bubble.scrollIntoView({block: "start", behavior: "smooth"});
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question || send.disabled) return;
    input.value = "";
    ask(question);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : send.click();
    }
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
