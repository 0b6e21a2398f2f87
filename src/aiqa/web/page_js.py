"""The chat page's own few lines of JavaScript, run by Gradio in the browser (ui.py)."""

from __future__ import annotations

from aiqa.web.guard import ADMIN_COOKIE

# Korean unless the page asks for English (?lang=en) or the browser's first language is English.
LANG_JS = """() => {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "ko") return asked;
  const first = ((navigator.languages && navigator.languages[0]) || navigator.language || "").toLowerCase();
  return first.startsWith("en") ? "en" : "ko";
}"""

# Gradio's upload route takes files only with the admin token (guard.py): once typed, the admin
# tab hands it to that route alone, in a cookie of its path, before any file is chosen.
ADMIN_COOKIE_JS = f"""(token) => {{
  const path = location.pathname.replace(/[^/]*$/, "") + "gradio_api/upload";
  const life = token ? "" : "; max-age=0";
  const secure = location.protocol === "https:" ? "; Secure" : "";
  const value = "{ADMIN_COOKIE}=" + encodeURIComponent(token || "");
  document.cookie = value + "; path=" + path + "; SameSite=Strict" + life + secure;
  return [];
}}"""
