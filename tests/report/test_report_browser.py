"""The report opens in a real (headless) browser, renders every figure, and fetches nothing."""

import json
import re
import shutil
import subprocess
from urllib.parse import urlparse

import pytest

from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import parse_spec
from metatoken.report.html import write_report

TINY = {"d_model": 16, "n_layers": 1, "context": 4}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Hosts the browser itself may call for its own services (clock, accounts); never the page.
BROWSER_SERVICE_HOSTS = re.compile(r"(^|\.)(google\.com|googleapis\.com|gvt1\.com)$")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp")
    spec = parse_spec({
        "name": "browser", "seeds": [0, 1],
        "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4, "reference_episodes": 40}}],
        "methods": [{"id": "bc", "hyperparameters": TINY}, {"id": "condition", "hyperparameters": TINY}],
        "budgets": {"gradient_steps": 100, "eval_episodes": 6},
    })
    run_experiment(spec, out, workers=1)
    return write_report(out)


def test_report_has_no_external_references(report):
    text = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", text)
    assert "<script" not in text.lower()
    # capability, intended, controllability, capability vs reward queries and vs KL, the
    # matched-capability figure and exploit rate against action entropy (both policies score
    # their actions); no ppo budgets here, so the phase diagram is a one-line note
    assert text.count("src='data:image/png;base64,") == 7
    assert "Phase diagram skipped" in text and "action entropy skipped" not in text
    # the claims table shows claims.json's nine rows, each with a computed verdict
    claims = json.loads((report.parent / "claims.json").read_text())["claims"]
    assert [f"<b>{c['claim']}</b>" in text for c in claims] == [True] * 9
    assert text.count("class='l verdict-") == 9
    assert "<h2>Probability of improvement</h2>" in text
    # filmstrips: the reference behaviour's, then one per method (the lowest seed's run)
    assert [m for m in re.findall(r'<img src="data:image/png;base64,[^"]+" alt="glitchgrid-teleport: ([^"]+)"', text)] \
        == ["reference behaviour", "bc", "condition"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_chromium_without_fetching(report, tmp_path):
    netlog = tmp_path / "net.json"
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={netlog}",
            "--virtual-time-budget=3000", "--dump-dom", report.as_uri()]
    dom = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "metatoken report: browser" in dom
    assert dom.count('src="data:image/png;base64,') == 7 + 3  # figures, then three filmstrips
    assert "Controllability" in dom and "glitchgrid-teleport" in dom
    events = json.loads(netlog.read_text())["events"]
    urls = {e["params"]["url"] for e in events if "url" in e.get("params", {})}
    page_fetches = [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")
                    and not BROWSER_SERVICE_HOSTS.search(urlparse(u).hostname or "")]
    assert page_fetches == []
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p2'}", "--window-size=1000,1400",
                    f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120, check=True)
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # text and figures drawn, not a blank page
