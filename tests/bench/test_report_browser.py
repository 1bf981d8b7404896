"""The HTML report renders its plots in a real browser (headless Chromium screenshot).

Skips only when /usr/bin/chromium is absent (CI installs it). The screenshot is checked
for the plot colours: inline SVG that failed to render would leave the page black-on-white.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from budcluster.bench.report import write_report
from budcluster.bench.runner import BenchmarkConfig, run_benchmark
from budcluster.bench.specs import TokenLengthSpec, parse_profile
from budcluster.bench.testing_server import ServerBehaviour, StreamingServer

CHROMIUM = Path("/usr/bin/chromium")
PLOT_BLUE = (0x1F, 0x77, 0xB4)  # the first palette colour in budcluster.bench.report.svg


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of raw pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            assert body[8] == 8, "8-bit depth expected"
            channels = {2: 3, 6: 4}[body[9]]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            upper_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else upper_left
                row[i] = (row[i] + pred) & 0xFF
        rows.append(
            bytes(row) if channels == 3 else bytes(b for j, b in enumerate(row) if j % 4 != 3)
        )
        previous = row
    return width, height, rows


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_report_plots_render_in_headless_chromium(
    tmp_path: Path, server_thread: Callable[..., StreamingServer]
) -> None:
    server = server_thread(ServerBehaviour(chunks=6, ttft_s=0.003, itl_s=0.001))
    config = BenchmarkConfig(
        url=server.url,
        model="m",
        profile=parse_profile("concurrency:4"),
        max_requests=40,
        input_tokens=TokenLengthSpec("fixed", 4),
        output_tokens=TokenLengthSpec("fixed", 6),
    )
    folder = write_report(run_benchmark(config), tmp_path)
    shot = tmp_path / "shot.png"
    profile_dir = tmp_path / "chromium-profile"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={profile_dir}",
            "--window-size=1400,1600",
            "--force-device-scale-factor=0.5",  # a quarter of the pixels to decode in Python
            f"--screenshot={shot}",
            (folder / "report.html").as_uri(),
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    keep = os.environ.get("BUDCLUSTER_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)  # for a human to look at
    width, height, rows = png_pixels(shot)
    blue = sum(
        1
        for row in rows
        for x in range(0, width * 3, 3)
        if abs(row[x] - PLOT_BLUE[0]) < 8
        and abs(row[x + 1] - PLOT_BLUE[1]) < 8
        and abs(row[x + 2] - PLOT_BLUE[2]) < 8
    )
    # Histogram bars and CDF lines in the plot colour: thousands of pixels, not a few.
    print(f"{blue} plot-coloured pixels in {width}x{height}")
    assert blue > 500, f"only {blue} plot-coloured pixels in a {width}x{height} screenshot"
