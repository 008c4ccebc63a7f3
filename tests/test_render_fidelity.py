"""mjml-python and the official mjml render our digest identically in Chromium.

Runs bench/fidelity.py's comparison (screenshots at 600 and 375 px). MRML computes some image
widths differently from mjml (see the bench); the templates pin them, and this test keeps it so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.fidelity import CHROMIUM, MJML_CLI, run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent"),
    pytest.mark.skipif(
        shutil.which("node") is None, reason="node is absent: the official mjml cannot run"
    ),
]


def test_both_compilers_render_the_digest_the_same_at_desktop_and_mobile_width(
    tmp_path: Path,
) -> None:
    if not MJML_CLI.exists():
        pytest.fail("node_modules/.bin/mjml missing: run `npm install` (make setup-node)")
    results, facts = run(items=12, out=tmp_path)
    assert facts["img_widths_python"] == facts["img_widths_official"]
    for comparison in results:
        assert comparison.height_python == comparison.height_official, comparison
        assert comparison.share >= 0.99, comparison
