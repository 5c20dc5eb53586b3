#!/usr/bin/env python
"""The README's picture of the web app: serve it, separate the bundled example
(``src/deepsampler/examples/synth_rock.flac``) with ``music4-rt`` in Debian's Chromium (driven
by Playwright, never ``playwright install``), play a little, and save the page as a PNG.

    .venv/bin/python scripts/web_screenshot.py            # -> docs/web.png

Needs the web and dev extras (fastapi, uvicorn, playwright) and ``apt-get install chromium``.
The PNG is reduced to a 256-colour palette so it stays small (< 300 KB).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "src" / "deepsampler" / "examples" / "synth_rock.flac"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web.png")
    parser.add_argument("--model", default="music4-rt")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from PIL import Image
    from playwright.sync_api import sync_playwright

    from deepsampler.web import Settings
    from deepsampler.web.server import serve_in_thread

    with tempfile.TemporaryDirectory() as data, serve_in_thread(Settings(data_dir=data)) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=args.chromium,
                args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
            )
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url)
            page.wait_for_selector(f"#model option[value='{args.model}']", state="attached")
            page.select_option("#model", args.model)
            page.set_input_files("#file", str(EXAMPLE))
            start = time.perf_counter()
            page.click("#start")
            page.wait_for_selector("#results:not([hidden])", timeout=600_000)
            print(
                f"separated {EXAMPLE.name} with {args.model} in {time.perf_counter() - start:.1f} s"
            )
            page.click("#play")
            page.wait_for_function("Number(document.getElementById('position').dataset.time) > 3")
            page.click("#play")
            png = page.screenshot(full_page=True)
            browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1000:.0f} kB, {image.width}x{image.height})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
