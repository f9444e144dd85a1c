"""The diagrams as a person sees them: rendered to PNG, and readable at README width.

Chromium (Debian's ``chromium``, driven by Playwright) renders the SVG, and the Mermaid through
mermaid.js (npm's ``mermaid``, unpacked by ``.ci/run``); Graphviz renders the README's PNG. Each
picture must be close to 4:3 or 16:9, and its smallest text at least 11 px high when the picture
is shown 800 px wide, as on a README page. Tests skip, saying what is missing, where Playwright,
Chromium, mermaid.js or Graphviz is not installed; ``.ci/run`` installs them all.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from keyturn import Policy, State, diagrams
from keyturn.wiring import API_POLICY

pytestmark = pytest.mark.slow  # runs dot and Chromium

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Page

ROOT = Path(__file__).parent.parent
README_WIDTH = 800  # px: about the width of a README on GitHub
MIN_TEXT = 11  # px: the smallest text a person reads without zooming
ASPECT = (1.15, 1.95)  # width / height: 4:3 is 1.33, 16:9 is 1.78
MERMAID_JS = Path(
    os.environ.get("KEYTURN_MERMAID_JS", ROOT / ".cache/mermaid/package/dist/mermaid.min.js")
)
CHROMIUM = os.environ.get("KEYTURN_CHROMIUM", "/usr/bin/chromium")
#: Debian's Chromium as root in a container, with nothing reaching out to the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The height of the picture's smallest text, in the page's CSS px.
MEASURE = """() => {
  const svg = document.querySelector('#picture svg');
  const box = svg.getBoundingClientRect();
  const scale = box.width / (svg.viewBox.baseVal.width || box.width);
  const sizes = [...svg.querySelectorAll('text, foreignObject span, foreignObject p')]
    .filter(e => e.textContent.trim())
    .map(e => parseFloat(getComputedStyle(e).fontSize) * scale);
  return {text: Math.min(...sizes)};
}"""
RENDER_MERMAID = """async (source) => {
  const {svg} = await mermaid.render('lifecycle', source);
  document.getElementById('picture').innerHTML = svg;
}"""


@attrs.frozen
class Rendered:
    """A picture rendered to PNG: its pixel size and the height of its smallest text."""

    png: bytes = attrs.field(repr=False)
    width: float
    height: float
    text: float

    def check_readable(self) -> None:
        """Close to 4:3 or 16:9, and its smallest text readable when shown README-wide."""
        assert ASPECT[0] <= self.width / self.height <= ASPECT[1], (self.width, self.height)
        assert self.text * min(1.0, README_WIDTH / self.width) >= MIN_TEXT, self


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.fixture(name="page", scope="module")
def _page() -> Iterator[Page]:
    """A page in headless Chromium, or a skip saying what is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (it is in the test extra)"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 2400, "height": 1600})
        yield page
        browser.close()


def _render(page: Page, load: Any) -> Rendered:
    """Put a picture on a blank page with ``load(page)``, then measure and screenshot it."""
    page.set_content("<!doctype html><body style='margin:0'><div id='picture'></div></body>")
    load(page)
    smallest_text = page.evaluate(MEASURE)["text"]
    png = page.locator("#picture svg").screenshot()
    return Rendered(png, *_png_size(png), smallest_text)


def _render_svg(page: Page, svg: str) -> Rendered:
    return _render(page, lambda p: p.evaluate("s => picture.innerHTML = s", svg))


def _render_mermaid(page: Page, source: str) -> Rendered:
    if not MERMAID_JS.exists():
        pytest.skip(f"no mermaid.js at {MERMAID_JS} (.ci/run unpacks npm's mermaid there)")

    def load(p: Page) -> None:
        p.add_script_tag(path=str(MERMAID_JS))
        p.evaluate("mermaid.initialize({startOnLoad: false})")
        p.evaluate(RENDER_MERMAID, source)

    return _render(page, load)


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "api-policy": {"policy": API_POLICY},
    "key": {"highlight": State.PENDING_2FA, "note": "code valid 299 s more, resend in 119 s"},
}


def _dot_or_skip(**kwargs: Any) -> str:
    if shutil.which("dot") is None:
        pytest.skip("no Graphviz dot program here (.ci/run installs Debian's graphviz)")
    try:
        return diagrams.dot(**kwargs)
    except diagrams.GraphvizMissingError:
        pytest.skip("no graphviz Python package here (pip install 'keyturn[diagrams]')")


class TestCommitted:
    def test_svg_renders_readable(self, page: Page) -> None:
        """diagrams/lifecycle.svg, rendered by Chromium, is near 16:9 and readable 800 px wide."""
        rendered = _render_svg(page, (ROOT / "diagrams/lifecycle.svg").read_text())
        rendered.check_readable()

    def test_mermaid_renders_readable(self, page: Page) -> None:
        """diagrams/lifecycle.mmd, rendered by mermaid.js, is near 4:3 and readable 800 px wide."""
        rendered = _render_mermaid(page, (ROOT / "diagrams/lifecycle.mmd").read_text())
        rendered.check_readable()

    def test_png_is_readable(self) -> None:
        """diagrams/lifecycle.png (Graphviz, 192 dpi) is near 16:9 and its 12 pt captions stay readable 800 px wide."""
        width, height = _png_size((ROOT / "diagrams/lifecycle.png").read_bytes())
        caption_px = 12 * 192 / 72  # the smallest font in the DOT source, at the PNG's dpi
        Rendered(b"", width, height, caption_px).check_readable()


@pytest.mark.parametrize("variant", list(VARIANTS))
class TestEveryPicture:
    def test_svg(self, page: Page, variant: str) -> None:
        """The SVG of each kind of picture (policy, per-key) renders near 16:9 and readable."""
        svg = diagrams.svg(_dot_or_skip(**VARIANTS[variant]))
        _render_svg(page, svg).check_readable()

    def test_mermaid(self, page: Page, variant: str) -> None:
        """The Mermaid of each kind of picture renders without error, near 4:3 and readable."""
        _render_mermaid(page, diagrams.mermaid(**VARIANTS[variant])).check_readable()


def test_policy_variants_differ() -> None:
    """The default and the API policy draw different pictures."""
    assert diagrams.mermaid(Policy()) != diagrams.mermaid(API_POLICY)
