"""The chat page's own few lines of JavaScript, run by Gradio in the browser (ui.py)."""

from __future__ import annotations

from aiqa.web.guard import ADMIN_COOKIE

ADMIN_FIELD = "aiqa-admin-token"  # elem_id of the admin tab's token field

# Korean unless the page asks for English (?lang=en) or the browser's first language is English.
LANG_JS = """() => {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "ko") return asked;
  const first = ((navigator.languages && navigator.languages[0]) || navigator.language || "").toLowerCase();
  return first.startsWith("en") ? "en" : "ko";
}"""

# Gradio's upload route takes files only with the admin token (guard.py): as it is typed, the admin
# tab hands it to that route alone, in a cookie of its path, before any file is chosen. Run once
# when the page loads (mount_gradio_app's `js`), it listens to the token field of the admin tab.
ADMIN_COOKIE_JS = f"""() => {{
  const path = location.pathname.replace(/[^/]*$/, "") + "gradio_api/upload";
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.addEventListener("input", (event) => {{
    const field = event.target;
    if (!field || !field.closest || !field.closest("#{ADMIN_FIELD}")) return;
    const token = field.value || "";
    const life = token ? "" : "; max-age=0";
    const value = "{ADMIN_COOKIE}=" + encodeURIComponent(token);
    document.cookie = value + "; path=" + path + "; SameSite=Strict" + life + secure;
  }}, true);
}}"""
