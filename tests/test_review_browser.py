"""The review page in a real browser: Debian's Chromium, driven by Playwright.

A temporary git repository is built from examples/film/ (commit, run, edit a prompt,
run); `wanflow report` writes the page and `wanflow report --base HEAD` the page with the
diff. Each is opened from file:// and must show no console error, play every video to the
right length, break no image, list the changed shot in its diff and not be blank.
Screenshots are kept under tests/artifacts/. Without Chromium these tests fail, unless
WANFLOW_SKIP_BROWSER=1 says to skip them.
"""
from __future__ import annotations

import os
import shutil

import git_repo
import pytest
from conftest import ROOT, run_cli
from example_runs import once

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.skipif(os.environ.get("WANFLOW_SKIP_BROWSER") == "1",
                                reason="WANFLOW_SKIP_BROWSER=1")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """(report page, diff page) of the example film after a prompt edit: made once per
    session, however the two tests are shared out among workers."""
    root = once(tmp_path_factory, "film-repo", _make_pages)
    return root / "report" / "index.html", root / "diff" / "index.html"


def _make_pages(root):
    shutil.copytree(ROOT / "examples", root / "examples",
                    ignore=shutil.ignore_patterns(".wanflow", "renders", "*.lock"))
    (root / ".gitignore").write_text(".wanflow/\nrenders/\n")
    git_repo.init(root)
    spec = root / "examples" / "film" / "wanflow.yaml"
    run_cli(["run", str(spec)], check=0)
    git_repo.commit(root, "the film and its lock")
    spec.write_text(spec.read_text().replace("A vendor lifts a silver fish",
                                             "A vendor holds up a silver fish"))
    run_cli(["run", str(spec)], check=0)
    run_cli(["report", str(spec), "--out", str(root / "report")], check=0)
    run_cli(["report", str(spec), "--base", "HEAD", "--out", str(root / "diff")], check=0)


@pytest.fixture(scope="module")
def browser(pages):
    # After `pages`: Playwright's sync API keeps an event loop running in this thread, and
    # an in-process `wanflow run` (asyncio.run) cannot start inside it.
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package "
                    "(apt-get install chromium), or set WANFLOW_SKIP_BROWSER=1 to skip")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install '.[test]'")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, page_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # (Media requests the player cancels once it has the metadata are not failures: each
    # video's own error state is checked instead.)
    page.goto(page_path.as_uri())
    return page, errors


def _check_page(page, errors, name):
    page.wait_for_function("() => Array.from(document.querySelectorAll('video'))"
                           ".every(v => v.readyState >= 1 || v.error)", timeout=60_000)
    videos = page.evaluate("""() => Array.from(document.querySelectorAll('video')).map(v =>
        ({src: v.getAttribute('src'), duration: v.duration, expected: v.dataset.duration,
          error: v.error && v.error.code, label: v.getAttribute('aria-label')}))""")
    assert videos, "the page plays something"
    for v in videos:
        assert v["error"] is None, v
        assert v["expected"], f"{v['src']}: the page does not say how long it should be"
        assert abs(v["duration"] - float(v["expected"])) < 0.1, v
        assert v["label"], f"{v['src']} has no accessible label"
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    broken = page.evaluate("""() => Array.from(document.images)
        .filter(i => i.naturalWidth === 0 || !i.alt).map(i => i.getAttribute('src'))""")
    assert broken == []
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == "shot-arrival.deck"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(shot))
    from PIL import Image, ImageStat

    with Image.open(shot) as img:
        grey = img.convert("L")
        assert ImageStat.Stat(grey).stddev[0] > 10, "the screenshot is blank"
        assert len(grey.getcolors(256 * 256) or []) > 20
    assert errors == []


def test_report_page_in_chromium(browser, pages):
    page, errors = _open(browser, pages[0])
    assert page.locator("#diff").count() == 0
    assert page.locator("figure.take.picked").count() == 5      # one per shot
    assert "wanflow pick arrival.deck 3" in page.inner_text("#shot-arrival\\.deck")
    _check_page(page, errors, "report")


def test_diff_page_in_chromium_lists_the_changed_shot(browser, pages):
    page, errors = _open(browser, pages[1])
    changes = page.locator("#diff .change")
    listed = {changes.nth(i).get_attribute("data-change") + " " +
              changes.nth(i).locator("h3 a").inner_text() for i in range(changes.count())}
    assert {"changed market.vendor", "upstream changed scene:market",
            "upstream changed film:main"} <= listed
    assert page.locator("#diff .beforeafter img").count() >= 6   # before and after frames
    _check_page(page, errors, "diff")
