"""The review page: one self-contained folder, openable from `file://` and as a CI artifact.

    index.html        the page; its CSS and script inline, no fonts, no network
    media/            copies of the videos it plays (and input audio), from the store
    frames/           first, middle and last frame of each video, as PNG
    inputs/           thumbnails of the input images

Every link is relative. Copies come out of the store by `materialize` (verified as they are
copied); an object the store lacks is simply not shown. Files are named by content digest,
so writing the page again reuses what is already there.
"""
from __future__ import annotations

import html
import os
import shutil
from typing import TypeGuard

from ..text import terminal
from .collect import CACHED

STRIP = ("first", "middle", "last")
THUMB_WIDTH = 320

CSS = """
:root{color-scheme:dark;--bg:#12151c;--panel:#1c212c;--line:#2c3442;--text:#e6e9ef;
--dim:#98a2b3;--accent:#f59e0b;--ok:#34d399;--stale:#f87171;--blue:#38bdf8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.45 system-ui,sans-serif}
header,main,section.top,section.diff,nav.toc{padding:0 24px}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:15px;margin:0}
a{color:var(--blue)}code{font:12px ui-monospace,monospace;background:#0b0e13;padding:2px 5px;
border-radius:4px;user-select:all;overflow-wrap:anywhere}
.dim{color:var(--dim)}.badge{display:inline-block;padding:1px 8px;border-radius:9px;
font-size:12px;font-weight:600;background:var(--line)}
.badge.preview{background:var(--accent);color:#000}.badge.paid{background:var(--blue);color:#000}
.badge.picked{background:var(--ok);color:#000}.badge.stale{background:var(--stale);color:#000}
table.totals{border-collapse:collapse;margin:10px 0}
table.totals td,table.totals th{border:1px solid var(--line);padding:4px 10px;text-align:right}
table.totals th{color:var(--dim);font-weight:500}
.renders{display:flex;flex-wrap:wrap;gap:16px}
.render{background:var(--panel);padding:10px;border-radius:8px;width:480px}
video{width:100%;background:#000;border-radius:4px;display:block}
.strip{display:flex;gap:4px;margin-top:6px}.strip figure{margin:0;flex:1}
.strip img{width:100%;display:block;border-radius:3px}
.strip figcaption{font-size:11px;color:var(--dim);text-align:center}
article.shot{background:var(--panel);border-radius:10px;padding:14px;margin:14px 0;
border:2px solid transparent;outline:none}
article.shot:focus{border-color:var(--accent)}
.facts{display:flex;flex-wrap:wrap;gap:6px 16px;color:var(--dim);margin:6px 0}
.facts b{color:var(--text);font-weight:500}
.inputs{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.input{background:#0b0e13;border-radius:6px;padding:6px;width:200px;font-size:12px}
.input img{width:100%;display:block;border-radius:3px}
.prompt{white-space:pre-wrap;background:#0b0e13;border-radius:6px;padding:8px;margin:4px 0}
ol.beats{margin:4px 0;padding-left:22px}ol.beats span{color:var(--accent)}
.takes{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
figure.take{margin:0;background:#0b0e13;border-radius:8px;padding:8px;border:2px solid var(--line)}
figure.take.picked{border-color:var(--ok)}
.missing{display:flex;align-items:center;justify-content:center;aspect-ratio:16/9;
color:var(--dim);border:1px dashed var(--line);border-radius:4px;padding:8px;text-align:center}
.change{background:var(--panel);border-radius:8px;padding:10px;margin:8px 0}
.beforeafter{display:grid;grid-template-columns:1fr 1fr;gap:10px}
nav.toc ol{columns:3;margin:6px 0}
.keys{font-size:12px;color:var(--dim)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
"""

SCRIPT = """
(function () {
  var shots = Array.prototype.slice.call(document.querySelectorAll('article.shot'));
  function current() {
    var i = shots.indexOf(document.activeElement);
    if (i >= 0) return i;
    for (i = 0; i < shots.length; i++) {
      if (shots[i].getBoundingClientRect().bottom > 0) return i - 1;
    }
    return shots.length - 1;
  }
  function go(i) {
    if (!shots.length) return;
    var shot = shots[Math.max(0, Math.min(shots.length - 1, i))];
    shot.focus({preventScroll: true});
    shot.scrollIntoView({block: 'start'});
  }
  document.addEventListener('keydown', function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var tag = e.target && e.target.tagName;
    if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') return;
    if (e.key === 'j' || e.key === 'n') { go(current() + 1); e.preventDefault(); }
    else if (e.key === 'k' || e.key === 'p') { go(current() - 1); e.preventDefault(); }
  });
})();
"""


def _e(text: object) -> str:
    """Text from a spec or a provider, safe in HTML: control characters shown, markup escaped."""
    return html.escape(terminal("" if text is None else text), quote=True)


def _money(amount: float | None, currency: str | None) -> str:
    if amount is None:
        return "price unknown"
    return f"{amount:.2f} {currency or ''}".strip()


class _Folder:
    """The page's folder: copies and thumbnails made on demand, named by content."""

    def __init__(self, session, root: str):
        self.store = session.store
        self.root = root
        for sub in ("media", "frames", "inputs"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)

    def _have(self, digest: str | None) -> TypeGuard[str]:
        return bool(digest) and self.store.has(digest)

    def video(self, digest: str | None) -> str | None:
        """`media/…mp4` holding the object, or None when the store does not have it."""
        if not self._have(digest):
            return None
        rel = f"media/{digest[:20]}.mp4"
        dest = os.path.join(self.root, rel)
        if not os.path.exists(dest):
            self.store.objects.materialize(digest, dest)
        return rel

    def strip(self, digest: str | None) -> dict[str, str]:
        """The first, middle and last frames of a stored video, as relative paths."""
        if not self._have(digest):
            return {}
        from .. import media

        rels = {at: f"frames/{digest[:20]}-{at}.png" for at in STRIP}
        todo = {at: os.path.join(self.root, rel) for at, rel in rels.items()
                if not os.path.exists(os.path.join(self.root, rel))}
        if todo:
            media.frame_strip(str(self.store.objects.path(digest)), todo, width=THUMB_WIDTH)
        return rels

    def image(self, digest: str | None, file: str | None) -> str | None:
        """A thumbnail of an input image, from the store or else from the project."""
        from .. import media

        source = (str(self.store.objects.path(digest)) if self._have(digest)
                  else file if file and os.path.isfile(file) else None)
        if source is None:
            return None
        name = digest[:20] if digest else os.path.basename(file or "image")
        rel = f"inputs/{name}.png"
        dest = os.path.join(self.root, rel)
        if not os.path.exists(dest):
            media.image_thumbnail(source, dest, width=THUMB_WIDTH)
        return rel

    def audio(self, digest: str | None, file: str | None) -> str | None:
        ext = os.path.splitext(file or "")[1].lower() or ".wav"
        if self._have(digest):
            rel = f"media/{digest[:20]}{ext}"
            dest = os.path.join(self.root, rel)
            if not os.path.exists(dest):
                self.store.objects.materialize(digest, dest)
            return rel
        if file and os.path.isfile(file):
            rel = f"media/{os.path.basename(file)}"
            shutil.copyfile(file, os.path.join(self.root, rel))
            return rel
        return None


def write(session, data: dict, out_dir: str, diff: dict | None = None) -> str:
    """Write the page for `data` (from `collect`) into `out_dir`; returns index.html's path.
    With `diff` (from `review.diff`), the page also shows what changed since its base."""
    folder = _Folder(session, out_dir)
    body = [_header(data), _top(folder, data)]
    if diff is not None:
        body.append(_diff(folder, diff))
    body.append(_toc(data))
    body.append("<main>")
    for scene in data["scenes"]:
        body.append(f"<section class=scene id='scene-{_e(scene['id'])}' "
                    f"aria-labelledby='h-scene-{_e(scene['id'])}'>"
                    f"<h2 id='h-scene-{_e(scene['id'])}'>Scene {_e(scene['id'])}</h2>")
        body += [_shot(folder, data, shot) for shot in scene["shots"]]
        body.append("</section>")
    body.append("</main>")
    page = ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{_e(data['spec'])} · wanflow review</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n")
    path = os.path.join(out_dir, "index.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path


def _header(data: dict) -> str:
    t = data["totals"]
    kind = "paid" if data["paid"] else "preview"
    cur = data["currency"]
    estimate = _money(t["estimated_cost"], cur)
    if t["unpriced"]:
        estimate += f" ({t['unpriced']} with no known price)"
    if not data["paid"]:
        estimate += " on the paid API; preview is free"
    notes = "".join(f"<li>{_e(n)}</li>" for n in data["notes"])
    return (f"<header><h1>{_e(data['spec'])}</h1>"
            f"<p><span class='badge {kind}'>{kind}</span> made by "
            f"<b>{_e(data['backend'])}</b> <span class=dim>({_e(data['backend_reason'])})</span>"
            "</p><table class=totals aria-label='Totals'><tr><th>takes</th><th>cached</th>"
            "<th>to generate</th><th>billed seconds</th><th>cost of what is here</th>"
            "<th>estimated cost of the rest</th></tr>"
            f"<tr><td>{t['takes']}</td><td>{t['cached']}</td><td>{t['to_generate']}</td>"
            f"<td>{t['billed_seconds']:.1f}</td><td>{_money(t['cost'], cur)}</td>"
            f"<td>{_e(estimate)}</td></tr></table>"
            f"<p class=dim>Prices: {_e(data['price_basis'])}</p>"
            + (f"<ul class=notes aria-label='Notes'>{notes}</ul>" if notes else "")
            + "<p class=keys>Keys: <kbd>j</kbd> / <kbd>k</kbd> next / previous shot.</p>"
            "</header>")


def _player(folder: _Folder, label: str, digest: str | None, duration, reason: str) -> str:
    rel = folder.video(digest)
    if rel is None:
        return f"<div class=missing>{_e(label)}: not rendered yet ({_e(reason)})</div>"
    strip = folder.strip(digest)
    frames = "".join(f"<figure><img src='{_e(strip[at])}' alt='{_e(label)}, {at} frame'>"
                     f"<figcaption>{at}</figcaption></figure>" for at in STRIP if at in strip)
    return (f"<video controls preload=metadata src='{_e(rel)}' aria-label='{_e(label)}' "
            f"data-duration='{duration or ''}'></video><div class=strip>{frames}</div>")


def _top(folder: _Folder, data: dict) -> str:
    """The film and each scene, playable, before the details."""
    parts = [("<section class=top aria-label='Film and scenes'><h2>Film and scenes</h2>"
              "<div class=renders>")]
    for film in data["films"]:
        parts.append(f"<div class=render id='film-{_e(film['id'])}'><h3>Film "
                     f"{_e(film['id'])} <span class=dim>"
                     f"{_e(film['path'])}</span></h3>"
                     + _player(folder, f"Film {film['id']}", film["output"], film["duration"],
                               film["reason"]) + "</div>")
    for scene in data["scenes"]:
        parts.append(f"<div class=render><h3><a href='#scene-{_e(scene['id'])}'>Scene "
                     f"{_e(scene['id'])}</a></h3>"
                     + _player(folder, f"Scene {scene['id']}", scene["output"],
                               scene["duration"], scene["reason"]) + "</div>")
    parts.append("</div></section>")
    return "".join(parts)


def _toc(data: dict) -> str:
    items = "".join(f"<li><a href='#shot-{_e(shot['id'])}'>{_e(shot['id'])}</a></li>"
                    for scene in data["scenes"] for shot in scene["shots"])
    return f"<nav class=toc aria-label='Shots'><h2>Shots</h2><ol>{items}</ol></nav>"


def _shot(folder: _Folder, data: dict, shot: dict) -> str:
    qid = shot["id"]
    facts = [("model", shot["model"]),
             ("size", f"{shot['width']}x{shot['height']}" if shot["width"] else None),
             ("fps", shot["fps"]), ("duration", f"{shot['duration']:g} s"
                                    if shot["duration"] is not None else None),
             ("starts in scene at", f"{shot['scene_start']:g} s"
              if shot.get("scene_start") is not None else None),
             ("takes", shot["take_count"]), ("pick", shot["pick"]),
             ("template", shot["template"])]
    fact_html = "".join(f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in facts
                        if v is not None)
    parts = [(f"<article class=shot id='shot-{_e(qid)}' tabindex=-1 "
              f"aria-labelledby='h-shot-{_e(qid)}'><h3 id='h-shot-{_e(qid)}'>{_e(qid)}</h3>"
              f"<div class=facts>{fact_html}</div>")]
    if shot["inputs"]:
        parts.append("<div class=inputs aria-label='Inputs'>"
                      + "".join(_input(folder, item) for item in shot["inputs"]) + "</div>")
    parts.append(f"<div><span class=dim>Prompt sent</span><div class=prompt>"
                 f"{_e(shot['prompt_sent'])}</div></div>")
    if shot["beats"]:
        parts.append("<ol class=beats aria-label='Beats'>" + "".join(
            f"<li><span>[{b['start']:g}-{b['end']:g}s]</span> {_e(b['text'])}</li>"
            for b in shot["beats"]) + "</ol>")
    if shot["negative_prompt"]:
        parts.append(f"<div><span class=dim>Negative prompt</span><div class=prompt>"
                     f"{_e(shot['negative_prompt'])}</div></div>")
    parts.append("<div class=takes>")
    parts += [_take(folder, data, shot, take) for take in shot["takes"]]
    parts.append("</div></article>")
    return "".join(parts)


def _input(folder: _Folder, item: dict) -> str:
    role = item["role"].replace("_", " ")
    label = item["label"]
    link = (f" <a href='#shot-{_e(item['shot'])}'>{_e(item['shot'])}</a>" if item["shot"]
            else "")
    media = ""
    if item["kind"] == "image":
        rel = folder.image(item["output"], item.get("file"))
        media = (f"<img src='{_e(rel)}' alt='{_e(role)}: {_e(label)}'>" if rel
                 else "<div class=missing>not made yet</div>")
    elif item["kind"] == "audio":
        rel = folder.audio(item["output"], item.get("file"))
        media = (f"<audio controls preload=none src='{_e(rel)}' "
                 f"aria-label='{_e(role)}: {_e(label)}'></audio>" if rel else "")
    elif item["kind"] == "video" and item["output"]:
        rel = folder.video(item["output"])
        media = (f"<video controls preload=metadata src='{_e(rel)}' "
                 f"data-duration='{item.get('duration') or ''}' "
                 f"aria-label='{_e(role)}: {_e(label)}'></video>" if rel else "")
    return (f"<div class=input><b>{_e(role)}</b>{link}<br><span class=dim>{_e(label)}</span>"
            f"{media}</div>")


def _take(folder: _Folder, data: dict, shot: dict, take: dict) -> str:
    n, qid = take["take"], shot["id"]
    label = f"{qid} take {n}" + (" (picked)" if take["picked"] else "")
    status = ("<span class='badge'>current</span>" if take["status"] == CACHED
              else f"<span class='badge stale'>{_e(take['status'])}</span> "
                   f"<span class=dim>{_e(take['reason'])}</span>")
    made = ""
    if take["backend"]:
        kind = "paid" if take["paid"] else "preview"
        made = f"<span class='badge {kind}'>{kind}: {_e(take['backend'])}</span>"
    if take["output"]:
        cost = _money(take["cost"], take["currency"] or data["currency"])
    else:
        estimate = take["estimated_cost"] if take["price"] is not None else None
        cost = f"est. {_money(estimate, data['currency'])}"
    rows = [("seed", take["seed"] if take["seed"] is not None else "provider's choice"),
            ("duration", f"{take['duration']:g} s" if take["duration"] else None),
            ("size", f"{take['width']}x{take['height']}" if take["width"] else None),
            ("billed", f"{take['billed_seconds']:g} s" if take["billed_seconds"] else None),
            ("cost", cost), ("task", take["remote_id"])]
    details = "".join(f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in rows if v is not None)
    actual = ""
    if take["actual_prompt"]:
        actual = (f"<div><span class=dim>Prompt the provider used</span><div class=prompt>"
                  f"{_e(take['actual_prompt'])}</div></div>")
    picked = (" <span class='badge picked'>picked</span><span class=sr> (picked)</span>"
              if take["picked"] else "")
    return (f"<figure class='take{' picked' if take['picked'] else ''}' "
            f"aria-label='{_e(label)}'>"
            + _player(folder, label, take["output"], take["duration"], take["reason"])
            + f"<figcaption><h3>Take {n}{picked}</h3><div class=facts>{status} {made}</div>"
            f"<div class=facts>{details}</div>{actual}"
            f"<div class=dim>Pick it: <code>{_e(take['pick_command'])}</code></div>"
            "</figcaption></figure>")


def _diff(folder: _Folder, diff: dict) -> str:
    """What changed since the base: each shot with how, and before/after frames."""
    from .markdown import change_summary

    parts = [(f"<section class=diff id=diff aria-labelledby=h-diff><h2 id=h-diff>Changes "
              f"since {_e(diff['base']['ref'])} <span class=dim>({_e(diff['base']['how'])})"
              f"</span></h2><p>{_e(change_summary(diff))}</p>")]
    for item in diff["shots"] + diff["assemblies"]:
        parts.append(f"<div class=change data-change='{_e(item['change'])}'><h3>"
                     f"<a href='#{_e(item['anchor'])}'>{_e(item['id'])}</a> "
                     f"<span class='badge'>{_e(item['change'])}</span></h3>"
                     f"<p>{_e(item['how'])}</p>")
        before, after = item.get("before"), item.get("after")
        if before and after and folder.store.has(before) and folder.store.has(after):
            parts.append("<div class=beforeafter>")
            for name, digest in (("before", before), ("after", after)):
                strip = folder.strip(digest)
                frames = "".join(f"<figure><img src='{_e(strip[at])}' alt='{_e(item['id'])} "
                                 f"{name}, {at} frame'><figcaption>{at}</figcaption></figure>"
                                 for at in STRIP if at in strip)
                parts.append(f"<div><b>{name}</b><div class=strip>{frames}</div></div>")
            parts.append("</div>")
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)
