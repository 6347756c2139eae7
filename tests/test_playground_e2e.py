"""The playground end to end: ``nnmath playground`` in a subprocess, driven in headless Chromium
through Playwright, checking what the page shows against the library.

Needs the ``playwright`` package and a Chromium (Debian's ``chromium``; CI installs both); without
them the tests are skipped with the reason. Screenshots of each state go to the folder named by
NNMATH_PLAYGROUND_SCREENSHOTS, or to pytest's temporary folder.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the playground extra is not installed")
pytest.importorskip("uvicorn", reason="the playground extra is not installed")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)

from nnmath.modelfile import load_model  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WAIT_MS = 20_000  # every wait in the page is bounded by this


def chromium_path() -> str | None:
    candidates = [os.environ.get("NNMATH_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="module")
def server():
    """``nnmath playground --port 0`` on 127.0.0.1; stopped with Ctrl-C (SIGINT) at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nnmath", "playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=30)
    except queue.Empty:
        process.kill()
        pytest.fail(f"the server did not start: {process.stderr.read() if process.poll() else ''}")
    url = re.search(r"http://127\.0\.0\.1:\d+/", first).group(0)
    yield url
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the server did not stop within 15 s of Ctrl-C")
    assert process.returncode == 0, process.stderr.read()
    rest = []
    while True:  # the reader thread ends with the process; what it read is in the queue
        try:
            rest.append(lines.get(timeout=2))
        except queue.Empty:
            break
    assert "nnmath playground: stopped\n" in rest
    assert "Traceback" not in "".join(rest) + process.stderr.read()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium found (apt-get install chromium, or set NNMATH_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("NNMATH_PLAYGROUND_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("playground-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    page.wait_for_selector("#derivation .equation")
    yield page
    context.close()
    assert not errors, errors


# ---- reading the page ----------------------------------------------------------------------------


def number(text: str) -> float:
    """A number as the page prints it: −0.1878, 8.004×10−5, 97.5%."""
    text = text.strip().replace("\u2212", "-").rstrip("%")
    if "×10" in text:
        mantissa, exponent = text.split("×10")
        return float(mantissa) * 10.0 ** float(exponent)
    return float(text)


def step_count(page) -> int:
    return int(page.inner_text("#step-count"))


def test_accuracy(page) -> float:
    text = page.inner_text("#test-metric")
    return number(text) / 100 if text.endswith("%") else float("nan")


test_accuracy.__test__ = False  # a helper, not a test


def change(page, selector: str, value: str) -> None:
    """Type a value as a user does: fill the field, press Enter (the change event)."""
    page.fill(selector, value)
    page.press(selector, "Enter")


def pause_and_settle(page) -> None:
    """Pause, then wait until the mathematics shows the paused network's values."""
    if page.get_attribute("body", "data-playing") == "true":
        page.click("#play")
    page.wait_for_function(
        "document.body.dataset.playing === 'false' && "
        "document.querySelector('#derivation').dataset.version === document.body.dataset.version",
        timeout=WAIT_MS,
    )


def matrix_rows(page, selector: str) -> list[list[str]]:
    """The rows of a MathML matrix as the cells' text, skipping the ⋮ row of an abbreviation."""
    rows = page.eval_on_selector_all(
        f"{selector} mtr", "rows => rows.map(r => [...r.children].map(c => c.textContent))"
    )
    return [row for row in rows if "⋮" not in row and "⋱" not in row]


def shown_indices(count: int, limit: int = 6) -> list[int]:
    """Which rows (or columns) an abbreviated matrix shows: the page's rule (mathml._shown)."""
    if count <= limit:
        return list(range(count))
    head = (limit + 1) // 2
    return [*range(head), *range(count - (limit - head - 1), count)]


def download(page, name: str, folder: Path) -> Path:
    with page.expect_download(timeout=WAIT_MS) as info:
        page.click(f'[data-download="{name}"]')
    path = folder / name
    info.value.save_as(path)
    return path


# ---- the proofs ----------------------------------------------------------------------------------


def test_spirals_with_two_tanh_layers_trains_to_90_percent(page, shots):
    page.select_option("#data", "moons")
    page.wait_for_function("new URLSearchParams(location.search).get('data') === 'moons'")
    page.select_option("#data", "spirals")
    page.wait_for_function("new URLSearchParams(location.search).get('data') === 'spirals'")
    change(page, ".layer-control .width >> nth=0", "8")
    page.select_option(".layer-control .activation >> nth=0", "tanh")
    page.select_option(".layer-control .activation >> nth=1", "tanh")
    change(page, "#lr", "0.3")
    page.wait_for_function(
        "location.search.includes('layers=8tanh-8tanh') && location.search.includes('lr=0.3')"
    )
    before = page.eval_on_selector("#boundary", "canvas => canvas.toDataURL()")
    page.screenshot(path=shots / "1-start.png")
    page.click("#play")
    page.wait_for_function(
        "parseFloat(document.querySelector('#test-metric').textContent) >= 90", timeout=60_000
    )
    pause_and_settle(page)
    assert test_accuracy(page) >= 0.9
    after = page.eval_on_selector("#boundary", "canvas => canvas.toDataURL()")
    assert after != before
    page.screenshot(path=shots / "1-trained.png")
    clip = {"x": 0, "y": 0, "width": 1280, "height": 1400}
    page.screenshot(path=shots / "1-trained-with-mathematics.png", full_page=True, clip=clip)


def test_paused_gradients_equal_the_python_api_on_the_same_weights_and_batch(page, shots, tmp_path):
    page.click("#play")
    page.wait_for_function("+document.querySelector('#step-count').textContent > 200")
    pause_and_settle(page)
    shown = [
        [number(c) for c in row] for row in matrix_rows(page, '.equation[data-name="dW3"] .value')
    ]
    model = load_model(download(page, "model.nnm", tmp_path))
    example = json.loads(download(page, "example.json", tmp_path).read_text())
    assert example["spec"] == "2-8tanh-8tanh-2softmax"
    X, Y = np.array(example["inputs"]["X"]), np.array(example["inputs"]["Y"])
    assert X.shape == (10, 2)  # the current batch
    _, grads = model.network.loss_and_gradients(X, Y, model.loss)
    expected = grads.W[-1].T  # the row notation's dW3 = the engine's dW3ᵀ, 8 × 2
    np.testing.assert_allclose(shown, expected[shown_indices(8)], rtol=6e-4, atol=1e-12)
    page.locator('.equation[data-name="dW3"]').scroll_into_view_if_needed()
    page.screenshot(path=shots / "2-paused-gradients.png")


def click_edge(page, layer: int, unit: int, source: int) -> None:
    """A real mouse click on a point of the edge's curve (where edges fan out)."""
    point = page.eval_on_selector(
        f'path.edge-hit[data-layer="{layer}"][data-unit="{unit}"][data-input="{source}"]',
        """path => {
            const p = path.getPointAtLength(path.getTotalLength() * 0.3);
            const m = path.getScreenCTM();
            return [p.x * m.a + p.y * m.c + m.e, p.x * m.b + p.y * m.d + m.f];
        }""",
    )
    page.mouse.click(*point)


def read_terms(page) -> dict[str, list[float]]:
    columns = ("a", "delta", "product", "dA", "h-prime")
    return {
        name: [
            number(t)
            for t in page.eval_on_selector_all(
                f"#weight-breakdown td.{name}", "cells => cells.map(c => c.textContent)"
            )
        ]
        for name in columns
    }


@pytest.mark.parametrize("layer, unit, source", [(3, 1, 5), (2, 3, 2)])
def test_a_clicked_weights_factors_multiply_out_to_its_gradient(page, shots, layer, unit, source):
    page.click("#play")
    page.wait_for_function("+document.querySelector('#step-count').textContent >= 40")
    pause_and_settle(page)
    click_edge(page, layer, unit, source)
    page.wait_for_selector("#weight-breakdown table.terms")
    title = page.inner_text("#weight-breakdown h3")
    assert re.search(r"layer \d, input \d+ → unit \d+", title)
    terms = read_terms(page)
    gradient = number(page.inner_text("#weight-breakdown td.gradient"))
    assert len(terms["a"]) == len(terms["delta"]) == len(terms["product"]) == 10
    for a, delta, product in zip(terms["a"], terms["delta"], terms["product"], strict=True):
        assert a * delta == pytest.approx(product, rel=2e-5, abs=1e-12)
    assert sum(terms["product"]) == pytest.approx(gradient, rel=1e-4, abs=1e-9)
    if terms["dA"]:  # a hidden layer: δ = dA · h′(z)
        for dA, h, delta in zip(terms["dA"], terms["h-prime"], terms["delta"], strict=True):
            assert dA * h == pytest.approx(delta, rel=2e-5, abs=1e-12)
    page.locator("#weight-breakdown").screenshot(path=shots / f"3-chain-rule-layer{layer}.png")


def test_check_my_formula_diagnoses_a_flipped_sign_and_accepts_the_right_one(page, shots):
    page.fill("#formula", "dZ3 = (Y - Yhat) / S")
    page.click("#check-form button")
    page.wait_for_selector("#verdict.wrong")
    assert "flipped sign" in page.inner_text("#verdict")
    page.locator("#check-form").screenshot(path=shots / "4-check-wrong.png")
    page.fill("#formula", "dZ3 = (Yhat - Y) / S")
    page.click("#check-form button")
    page.wait_for_selector("#verdict.ok")
    assert page.inner_text("#verdict .headline").startswith("✓ correct")
    page.locator("#check-form").screenshot(path=shots / "4-check-right.png")


def test_a_width_of_0_or_a_rate_of_minus_1_gets_a_message_and_training_goes_on(page, shots):
    change(page, ".layer-control .width >> nth=0", "0")
    page.wait_for_selector("#message.error:not([hidden])")
    assert "width 0" in page.inner_text("#message")
    assert page.input_value(".layer-control .width >> nth=0") == "8"  # the width in effect
    page.screenshot(path=shots / "5-bad-width.png")
    change(page, "#lr", "-1")
    page.wait_for_function(
        "document.querySelector('#message').textContent.includes('learning rate')"
    )
    assert page.input_value("#lr") == "0.1"
    page.click("#play")
    page.wait_for_function("+document.querySelector('#step-count').textContent > 100")
    pause_and_settle(page)
    assert step_count(page) > 100


def test_a_shared_address_brings_the_same_configuration_back(page, browser, server, shots):
    page.select_option("#data", "circles")
    change(page, "#noise", "0.12")
    page.click("text=+ layer")
    page.wait_for_selector(".layer-control .width >> nth=2")
    page.select_option(".layer-control .activation >> nth=2", "relu")
    page.select_option("#optimizer", "adam")
    change(page, "#lr", "0.01")
    change(page, "#l2", "0.001")
    change(page, "#seed", "3")
    page.select_option("#notation", "column")
    page.wait_for_function("location.search.includes('notation=column')")
    address = page.url
    fields = ["#data", "#noise", "#optimizer", "#lr", "#l2", "#seed", "#notation", "#output"]
    values = {field: page.input_value(field) for field in fields}
    layers = page.eval_on_selector_all(".layer-control select", "s => s.map(e => e.value)")
    assert values == {
        "#data": "circles",
        "#noise": "0.12",
        "#optimizer": "adam",
        "#lr": "0.01",
        "#l2": "0.001",
        "#seed": "3",
        "#notation": "column",
        "#output": "softmax/cross-entropy",
    }
    assert layers == ["tanh", "tanh", "relu"]
    other = page.context.new_page()
    other.goto(address)
    other.wait_for_selector("#derivation .equation")
    assert other.url == address
    assert {field: other.input_value(field) for field in fields} == values
    assert other.eval_on_selector_all(".layer-control select", "s => s.map(e => e.value)") == layers
    assert other.get_attribute('.equation[data-name="dW4"]', "data-stage") == "backward-4"
    other.screenshot(path=shots / "6-shared-address.png")
    other.close()


def test_step_through_highlights_each_stage_in_the_diagram_and_the_equations(page, shots):
    expected = [
        ("forward, layer 1", "forward-1"),
        ("forward, layer 2", "forward-2"),
        ("forward, layer 3", "forward-3"),
        ("the cost", "cost"),
        ("backward, layer 3", "backward-3"),
        ("backward, layer 2", "backward-2"),
        ("backward, layer 1", "backward-1"),
        ("the update", "update"),
    ]
    start = step_count(page)
    for label, stage in expected:
        page.click("#stage")
        page.wait_for_function(
            f"document.querySelector('#stage-label').textContent === 'stage: {label}'"
        )
        page.wait_for_selector(f'#derivation .current[data-stage="{stage}"]')
        if stage == "backward-2":
            assert page.locator(".neuron.current").count() == 8  # layer 2's units
            page.screenshot(path=shots / "7-step-through-equations.png")
            page.locator("#network-panel").screenshot(path=shots / "7-step-through-network.png")
    assert step_count(page) == start + 1


def test_an_uploaded_csv_trains_and_a_bad_one_is_named_by_line(page, shots, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    rows = [f"{a:.4f},{b:.4f},{c:.4f},{'yes' if a + b * c > 0 else 'no'}" for a, b, c in X]
    good = tmp_path / "three.csv"
    good.write_text("a,b,c,label\n" + "\n".join(rows) + "\n")
    page.set_input_files("#upload", str(good))
    page.wait_for_function("document.querySelector('#message').textContent.includes('three.csv')")
    # the message comes with the upload's answer, the views with the next frame: wait for both
    page.wait_for_selector("#no-plane", state="visible")
    page.wait_for_selector("#boundary", state="hidden")
    assert not page.is_visible("#output-panel .legend")
    assert page.input_value("#data") == "upload"
    page.click("#play")
    page.wait_for_function("+document.querySelector('#step-count').textContent > 50")
    pause_and_settle(page)
    assert page.inner_text("#test-metric").endswith("%")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n" + "1,2,x\n" * 20)
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("document.querySelector('#message').textContent.includes('bad.csv')")
    message = page.inner_text("#message")
    assert "line 3" in message and "'b'" in message
    page.screenshot(path=shots / "8-bad-upload.png")
