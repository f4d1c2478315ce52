//! The pages' shared pieces: the frame (`<head>`, style, the polling script), HTML
//! escaping, how a JSON value is shown, the lies list and the line chart. The server
//! renders a page with them; the script's helpers ([`SCRIPT`]) then keep it live from
//! `/status.json`, showing values the same way ([`show`] and `pb.show` agree).

use std::fmt::Write as _;

use serde_json::Value;

/// The pages' style.
pub const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.big{font-size:1.4em} .lie{color:#b00} svg{border:1px solid #ccc;background:#fafafa}
td.v{font-family:ui-monospace,monospace;word-break:break-all}
";

/// The script's helpers, in the object `pb`:
///
/// - `pb.show(v)`: a JSON value as text (as [`show`]);
/// - `pb.text(id, v)`: sets an element's text;
/// - `pb.figures(s)`: every element with `data-key="K"` shows `pb.show(s[K])`;
/// - `pb.lies(id, list)`: the list's items (texts, never markup), or "none";
/// - `pb.line(id, points)`: a polyline of `[x, y]` points scaled into [`chart`]'s box;
/// - `pb.poll(update)`: fetches `/status.json` now and every second, calls
///   `update(status)`, and counts successful updates in `<body data-updates>` (an
///   error is put in `data-error`).
pub const SCRIPT: &str = r#"const pb = {
  show(v) {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(1);
    if (Array.isArray(v)) return v.length ? v.map(pb.show).join(', ') : '-';
    if (typeof v === 'object') {
      const e = Object.entries(v);
      return e.length ? e.map(([k, x]) => k + ' ' + pb.show(x)).join(', ') : '-';
    }
    return String(v);
  },
  text(id, v) { document.getElementById(id).textContent = v; },
  figures(s) {
    for (const el of document.querySelectorAll('[data-key]')) el.textContent = pb.show(s[el.dataset.key]);
  },
  lies(id, list) {
    const ul = document.getElementById(id);
    ul.replaceChildren(...(list.length ? list : [null]).map(t => {
      const li = document.createElement('li');
      if (t === null) li.textContent = 'none'; else { li.className = 'lie'; li.textContent = t; }
      return li;
    }));
  },
  line(id, points) {
    const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
    const x0 = xs.length ? Math.min(...xs) : 0, span = Math.max(1, (xs.length ? Math.max(...xs) : 1) - x0);
    const max = Math.max(1, ...ys);
    document.getElementById(id).setAttribute('points', points.map(([x, y]) =>
      ((x - x0) / span * 590 + 5).toFixed(1) + ',' + (115 - y / max * 110).toFixed(1)).join(' '));
  },
  poll(update) {
    let updates = 0;
    const run = async () => {
      try {
        const s = await (await fetch('/status.json', {cache: 'no-store'})).json();
        update(s);
        document.body.dataset.updates = ++updates;
      } catch (e) { document.body.dataset.error = String(e); }
    };
    run(); setInterval(run, 1000);
  },
};
"#;

/// `s` with `&`, `<`, `>` and `"` escaped, for text and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JSON value as the page shows it (unescaped): `-` for null, `yes`/`no`, integers
/// as they are, other numbers with one decimal, arrays joined by `, `, objects as
/// `key value, ...`.
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() != 0.0 => format!("{f:.1}"),
            Some(f) if n.is_f64() => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Object(o) if o.is_empty() => "-".into(),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| format!("{k} {}", show(x)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A whole page: `title` as its title and heading, `body` (markup) after the heading,
/// then the script: [`SCRIPT`] and `pb.poll(update)`, where `update` is a JavaScript
/// function of the status.
pub fn document(title: &str, body: &str, update: &str) -> String {
    let title = esc(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>\n{STYLE}</style></head>\n<body data-updates=\"0\">\n<h1>{title}</h1>\n{body}\n\
         <script>\n{SCRIPT}pb.poll({update});\n</script>\n</body></html>\n"
    )
}

/// The lies list, `<ul id="ID">`, as [`SCRIPT`]'s `pb.lies` redraws it.
pub fn lies(id: &str, list: &[String]) -> String {
    let mut out = format!("<ul id=\"{}\">", esc(id));
    if list.is_empty() {
        out.push_str("<li>none</li>");
    }
    for l in list {
        let _ = write!(out, "<li class=\"lie\">{}</li>", esc(l));
    }
    out.push_str("</ul>");
    out
}

/// An empty line chart (600 by 120), its polyline `id` drawn by `pb.line`.
pub fn chart(id: &str) -> String {
    format!(
        "<svg width=\"600\" height=\"120\" viewBox=\"0 0 600 120\"><polyline id=\"{}\" \
         fill=\"none\" stroke=\"#06c\" stroke-width=\"2\" points=\"\"/></svg>",
        esc(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_shown_as_the_script_shows_them() {
        assert_eq!(show(&json!(null)), "-");
        assert_eq!(show(&json!(true)), "yes");
        assert_eq!(show(&json!(42)), "42");
        assert_eq!(show(&json!(2.0)), "2");
        assert_eq!(show(&json!(2.4)), "2.4");
        assert_eq!(show(&json!("a<b")), "a<b");
        assert_eq!(show(&json!([])), "-");
        assert_eq!(
            show(&json!({"queued": 1, "running": 2})),
            "queued 1, running 2"
        );
    }

    #[test]
    fn text_is_escaped_and_lies_are_listed() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(lies("lies", &[]), "<ul id=\"lies\"><li>none</li></ul>");
        let l = lies("lies", &["block 3: <forged>".into()]);
        assert!(
            l.contains("<li class=\"lie\">block 3: &lt;forged&gt;</li>"),
            "{l}"
        );
        let page = document("a <title>", "<p>body</p>", "s => {}");
        assert!(page.contains("<title>a &lt;title&gt;</title>"));
        assert!(page.contains("pb.poll(s => {});"));
    }
}
