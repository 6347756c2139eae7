"""The playground's server through Starlette's test client: settings, training, the mathematics,
uploads, downloads and the live stream; PyTorch and central differences as the oracles."""

from __future__ import annotations

import io
import json
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pytest.importorskip("latex2mathml")

with warnings.catch_warnings():  # newer Starlette prefers httpx2 but works with httpx
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient

from nnmath.derivation import derive  # noqa: E402
from nnmath.modelfile import load_model  # noqa: E402
from nnmath.playground import chainrule, mathpanel
from nnmath.playground.config import HIDDEN_ACTIVATIONS, MAX_WIDTH, Config, parse_config  # noqa: E402
from nnmath.playground.data import MAX_UPLOAD_BYTES  # noqa: E402
from nnmath.playground.server import create_app  # noqa: E402
from nnmath.playground.session import Session  # noqa: E402


@pytest.fixture
def client():
    with TestClient(create_app(allowed_hosts=["testserver"])) as test_client:
        yield test_client


def new_session(client: TestClient, **settings) -> str:
    answer = client.post("/api/sessions", json=settings)
    assert answer.status_code == 200, answer.text
    assert answer.json()["error"] is None
    return answer.json()["id"]


def control(client: TestClient, key: str, action: str) -> dict:
    answer = client.post(f"/api/sessions/{key}/control", json={"action": action})
    assert answer.status_code == 200, answer.text
    return answer.json()


def math_value(document: dict, name: str) -> dict:
    return next(eq for s in document["sections"] for eq in s["equations"] if eq["name"] == name)


# ---- settings ------------------------------------------------------------------------------------


def test_options_offer_every_engine_activation_and_only_sound_output_pairs(client):
    from nnmath.activations import ACTIVATIONS

    options = client.get("/api/options").json()
    assert options["activations"] == list(ACTIVATIONS)
    assert set(options["data"]) == {"spirals", "moons", "circles", "xor", "blobs"}
    assert options["outputs"] == {
        "softmax/cross-entropy": "classification",
        "sigmoid/binary-cross-entropy": "classification",
        "identity/mse": "regression",
        "identity/squared-error": "regression",
    }
    assert options["bounds"]["width"] == [1, MAX_WIDTH]


def test_a_session_normalises_its_settings_and_the_address_round_trips(client):
    answer = client.post("/api/sessions", json={"lr": "0.3", "layers": "4relu-3tanh", "seed": "7"})
    settings = answer.json()["settings"]
    assert settings["lr"] == 0.3 and settings["layers"] == "4relu-3tanh" and settings["seed"] == 7
    assert parse_config(settings).to_query() == settings
    data = answer.json()["data"]
    assert data["train"]["count"] + data["test"]["count"] == 600


def test_a_bad_shared_address_starts_from_the_defaults_and_says_why(client):
    answer = client.post("/api/sessions", json={"lr": "-1"})
    assert answer.status_code == 200
    assert "learning rate" in answer.json()["error"]
    assert answer.json()["settings"] == Config().to_query()


@pytest.mark.parametrize(
    "change, words",
    [
        ({"layers": "0tanh"}, "width 0"),
        ({"layers": f"{MAX_WIDTH + 1}tanh"}, f"from 1 to {MAX_WIDTH}"),
        ({"layers": "-".join(["4tanh"] * 7)}, "at most 6"),
        ({"layers": "4softmax"}, "unknown activation"),
        ({"layers": "4tanh--2relu"}, "a width must be"),
        ({"lr": "-1"}, "learning rate"),
        ({"lr": "0"}, "learning rate"),
        ({"lr": "nan"}, "learning rate"),
        ({"lr": "inf"}, "learning rate"),
        ({"lr": "fast"}, "learning rate must be a number"),
        ({"batch": "0"}, "batch size"),
        ({"batch": "2.5"}, "whole number"),
        ({"noise": "5"}, "noise"),
        ({"test": "1"}, "test fraction"),
        ({"l2": "-0.1"}, "L2"),
        ({"seed": "-3"}, "seed"),
        ({"data": "mnist"}, "data set"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"output": "identity/mse"}, "regression"),
        ({"data": "blobs", "output": "sigmoid/binary-cross-entropy"}, "two classes"),
        ({"data": "upload"}, "upload the CSV file again"),
        ({"bogus": "1"}, "unknown setting"),
    ],
)
def test_a_bad_setting_gets_a_message_and_changes_nothing(client, change, words):
    key = new_session(client)
    before = control(client, key, "step")
    answer = client.post(f"/api/sessions/{key}/settings", json=change)
    assert answer.status_code == 400
    assert words in answer.json()["error"]
    after = control(client, key, "step")  # the session still trains, from where it was
    assert after["step"] == before["step"] + 1


def test_bad_request_bodies_are_refused_with_a_message(client):
    key = new_session(client)
    answer = client.post(f"/api/sessions/{key}/settings", content=b"{not json")
    assert answer.status_code == 400 and "not JSON" in answer.json()["error"]
    answer = client.post(f"/api/sessions/{key}/settings", content=b"x" * 20000)
    assert answer.status_code == 413
    answer = client.post(f"/api/sessions/{key}/control", json={"action": "explode"})
    assert answer.status_code == 400 and "unknown action" in answer.json()["error"]
    assert client.get("/api/sessions/nope/data").status_code == 404
    assert "reload the page" in client.get("/api/sessions/nope/data").json()["error"]


def test_only_the_loopback_host_names_are_answered():
    with TestClient(create_app()) as local:
        assert local.get("/api/options", headers={"host": "127.0.0.1:8000"}).status_code == 200
        assert local.get("/api/options", headers={"host": "evil.example:8000"}).status_code == 400


def test_a_live_setting_keeps_training_and_a_structural_one_starts_again(client):
    key = new_session(client)
    for _ in range(3):
        control(client, key, "step")
    live = client.post(f"/api/sessions/{key}/settings", json={"lr": "0.05", "batch": "20"})
    assert set(live.json()["changed"]) == {"learning_rate", "batch_size"}
    assert control(client, key, "pause")["step"] == 3
    client.post(f"/api/sessions/{key}/settings", json={"layers": "4relu"})
    frame = control(client, key, "pause")
    assert frame["step"] == 0 and frame["network"]["sizes"] == [2, 4, 2]


# ---- training --------------------------------------------------------------------------------------


def test_step_applies_exactly_the_gradient_on_screen(client):
    key = new_session(client, lr="0.3")
    shown = control(client, key, "pause")["network"]
    after = control(client, key, "step")["network"]
    for W, dW, new in zip(shown["W"], shown["dW"], after["W"], strict=True):
        np.testing.assert_allclose(new, np.array(W) - 0.3 * np.array(dW), rtol=1e-5, atol=1e-7)


def test_the_frames_gradient_equals_pytorch_on_the_same_weights_and_batch(client):
    torch = pytest.importorskip("torch")
    key = new_session(client, layers="5tanh-3relu", l2="0.01")
    for _ in range(20):
        control(client, key, "step")
    frame = control(client, key, "pause")
    data = client.get(f"/api/sessions/{key}/data").json()
    rows = frame["batch"]
    X = torch.tensor(np.array(data["train"]["X"])[rows])
    y = torch.tensor(np.array(data["train"]["y"])[rows])
    net = frame["network"]
    params = [
        torch.tensor(np.array(p), requires_grad=True)
        for pair in zip(net["W"], net["b"], strict=True)
        for p in pair
    ]
    A = X
    for index, activation in enumerate(("tanh", "relu", None)):
        A = A @ params[2 * index].T + params[2 * index + 1]
        A = torch.tanh(A) if activation == "tanh" else torch.relu(A) if activation else A
    cost = torch.nn.functional.cross_entropy(A, y)
    cost = cost + 0.005 * sum((params[2 * i] ** 2).sum() for i in range(3))
    cost.backward()
    for index in range(3):
        np.testing.assert_allclose(net["dW"][index], params[2 * index].grad, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            net["db"][index], params[2 * index + 1].grad, rtol=1e-5, atol=1e-7
        )
    assert net["batch_cost"] == pytest.approx(float(cost.detach()), rel=1e-5)


def test_the_same_settings_train_the_same_network_and_sessions_are_separate(client):
    first, second, other = new_session(client), new_session(client), new_session(client)
    for _ in range(25):
        control(client, first, "step")
        control(client, second, "step")
    one = control(client, first, "pause")["network"]["W"]
    two = control(client, second, "pause")["network"]["W"]
    assert one == two
    assert control(client, other, "pause")["step"] == 0


def test_reset_starts_again_from_the_seed(client):
    key = new_session(client)
    start = control(client, key, "pause")["network"]["W"]
    for _ in range(5):
        control(client, key, "step")
    frame = control(client, key, "reset")
    assert frame["step"] == 0 and frame["network"]["W"] == start


def test_step_through_walks_forward_cost_backward_and_the_update_takes_one_step(client):
    key = new_session(client)
    labels = [control(client, key, "stage")["stage"]["label"] for _ in range(8)]
    assert labels == [
        "forward, layer 1",
        "forward, layer 2",
        "forward, layer 3",
        "the cost",
        "backward, layer 3",
        "backward, layer 2",
        "backward, layer 1",
        "the update",
    ]
    assert control(client, key, "pause")["step"] == 1
    assert control(client, key, "stage")["stage"]["label"] == "forward, layer 1"


def test_the_stream_sends_frames_while_playing(client):
    key = new_session(client)
    with client.websocket_connect(f"/api/sessions/{key}/stream") as socket:
        assert socket.receive_json()["type"] == "frame"
        control(client, key, "play")
        steps = []
        deadline = time.monotonic() + 20
        while len(steps) < 4 and time.monotonic() < deadline:
            frame = socket.receive_json()
            steps.append(frame["step"])
        control(client, key, "pause")
    assert len(steps) == 4 and steps == sorted(steps) and steps[-1] > steps[0]
    assert frame["boundary"]["grid"] == 64 and len(frame["neurons"]["images"]) == 3


def test_playing_does_not_block_other_requests(client):
    key = new_session(client)
    control(client, key, "play")
    try:
        started = time.perf_counter()
        for _ in range(5):
            assert client.get("/api/options").status_code == 200
        assert time.perf_counter() - started < 5
    finally:
        control(client, key, "pause")


def test_an_unknown_session_stream_closes_with_a_reason(client):
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/api/sessions/nope/stream") as socket,
    ):
        socket.receive_json()
    assert closed.value.code == 4404


def test_a_diverging_session_stops_and_says_so():
    rows = "\n".join(f"{x},{1000 * x}" for x in np.linspace(-3, 3, 60))
    session = Session(parse_config({"lr": "10"}))
    from nnmath.playground.data import read_upload

    session.use_upload(read_upload(f"x,y\n{rows}\n".encode()))
    session.configure({"lr": "10", "layers": "8relu", "optimizer": "sgd"})
    session.step(500)
    assert session.message is not None and "diverged" in session.message
    assert session.step(1) == 0
    from nnmath.playground.frames import frame

    json.dumps(frame(session.snapshot(), playing=False), allow_nan=False)  # valid JSON for the page


# ---- the mathematics ------------------------------------------------------------------------------


def test_the_derivation_shows_every_equation_with_its_value_and_a_passed_check(client):
    key = new_session(client)
    for _ in range(10):
        control(client, key, "step")
    document = client.get(f"/api/sessions/{key}/math").json()
    assert document["summary"].startswith("All ") and document["checked"]
    equations = [eq for s in document["sections"] for eq in s["equations"]]
    assert len(equations) > 20 and all(eq["check"]["passed"] for eq in equations)
    assert all(eq["value"].startswith("<math") for eq in equations if eq["name"])
    assert math_value(document, "dW3")["shape"] == "8 × 2"
    assert {eq["stage"] for eq in equations} >= {"forward-1", "cost", "backward-3", "backward-1"}
    column = client.get(f"/api/sessions/{key}/math?notation=column").json()
    assert math_value(column, "dW3")["shape"] == "2 × 8"
    bad = client.get(f"/api/sessions/{key}/math?notation=diagonal")
    assert bad.status_code == 400 and "notation" in bad.json()["error"]


def test_a_large_network_is_checked_only_when_asked(client):
    key = new_session(client, layers="16tanh-16tanh-8tanh")
    quick = client.get(f"/api/sessions/{key}/math").json()
    assert not quick["checked"] and all(
        eq["check"] is None for s in quick["sections"] for eq in s["equations"]
    )
    full = client.get(f"/api/sessions/{key}/math?checks=all").json()
    assert full["checked"] and full["summary"].startswith("All ")
    assert client.get(f"/api/sessions/{key}/math?checks=some").status_code == 400


@pytest.mark.parametrize("output", ["softmax/cross-entropy", "sigmoid/binary-cross-entropy"])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_every_hidden_activation_and_output_pair_derives_checks_and_breaks_down(activation, output):
    session = Session(parse_config({"layers": f"3{activation}", "output": output, "batch": "4"}))
    session.step(5)
    snapshot = session.snapshot()
    assert mathpanel.document(snapshot, "column")["summary"].startswith("All ")
    answer = chainrule.weight(snapshot, "row", 1, 2, 0)
    products = [t["a"] * t["delta"] for t in answer["terms"]]
    assert sum(products) == pytest.approx(answer["gradient"], rel=1e-12, abs=1e-15)
    for t in answer["terms"]:
        assert t["dA"] * t["h_prime"] == pytest.approx(t["delta"], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("layer, unit, source", [(3, 1, 4), (2, 0, 7), (1, 5, 1)])
def test_one_weights_chain_rule_multiplies_out_to_its_gradient(client, layer, unit, source):
    key = new_session(client, l2="0.01")
    for _ in range(30):
        control(client, key, "step")
    frame = control(client, key, "pause")
    answer = client.get(
        f"/api/sessions/{key}/weight?layer={layer}&unit={unit}&input={source}"
    ).json()
    terms = answer["terms"]
    assert sum(t["a"] * t["delta"] for t in terms) == pytest.approx(answer["gradient"], rel=1e-12)
    if layer < 3:
        for t in terms:
            assert t["dA"] * t["h_prime"] == pytest.approx(t["delta"], rel=1e-12, abs=1e-300)
    w = frame["network"]["W"][layer - 1][unit][source]
    g_with_penalty = frame["network"]["dW"][layer - 1][unit][source]
    assert answer["gradient"] + 0.01 * answer["weight"] == pytest.approx(g_with_penalty, rel=1e-5)
    assert answer["update"]["new"] == pytest.approx(w - 0.1 * g_with_penalty, rel=1e-5)
    after = control(client, key, "step")["network"]["W"][layer - 1][unit][source]
    assert after == pytest.approx(answer["update"]["new"], rel=1e-6)


def test_a_weight_that_does_not_exist_gets_a_message(client):
    key = new_session(client)
    answer = client.get(f"/api/sessions/{key}/weight?layer=3&unit=5&input=0")
    assert answer.status_code == 400 and "has 2 units" in answer.json()["error"]
    answer = client.get(f"/api/sessions/{key}/weight?layer=x&unit=5&input=0")
    assert answer.status_code == 400 and "whole number" in answer.json()["error"]


def test_check_my_formula_names_a_flipped_sign_and_accepts_the_right_one(client):
    key = new_session(client)
    url = f"/api/sessions/{key}/check"
    wrong = client.post(url, json={"formula": "dZ3 = (Y - Yhat) / S"}).json()
    assert not wrong["correct"] and wrong["mistake"] == "flipped sign"
    assert wrong["correct_mathml"].startswith("<math")
    right = client.post(url, json={"formula": "dZ3 = (Yhat - Y) / S"}).json()
    assert right["correct"]
    missing = client.post(url, json={"formula": "dW3 = A2.T @ (Yhat - Y)"}).json()
    assert missing["mistake"] == "missing 1/S"
    column = client.post(url, json={"formula": "dW3 = dZ3 @ A2.T", "notation": "column"}).json()
    assert column["correct"]


@pytest.mark.parametrize(
    "formula, words",
    [
        ("dZ3 = __import__('os').system('echo hi')", "not allowed"),
        ("dZ3 = Yhat - Y" + " + Y" * 600, "at most 2000"),
        ("dQ = Y", "must be one of"),
    ],
)
def test_a_formula_the_evaluator_refuses_gets_its_message(client, formula, words):
    key = new_session(client)
    answer = client.post(f"/api/sessions/{key}/check", json={"formula": formula})
    assert answer.status_code == 400
    assert words in answer.json()["error"]


# ---- uploads and downloads ------------------------------------------------------------------------


def upload(client: TestClient, key: str, text: str, name: str = "mine.csv"):
    return client.post(
        f"/api/sessions/{key}/upload?name={name}",
        content=text.encode(),
        headers={"content-type": "text/csv"},
    )


def test_an_uploaded_csv_with_three_features_trains_with_curves_and_no_plane(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.where(X[:, 0] + X[:, 1] * X[:, 2] > 0, "yes", "no")
    text = "a,b,c,label\n" + "\n".join(
        f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, y, strict=True)
    )
    key = new_session(client)
    answer = upload(client, key, text)
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["data"] == "upload"
    assert answer.json()["data"]["classes"] == ["no", "yes"]
    frame = control(client, key, "step")
    assert frame["boundary"] is None and frame["network"]["sizes"][0] == 3
    assert "test_accuracy" in frame["metrics"]


def test_an_uploaded_regression_csv_draws_its_prediction_over_the_plane(client):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(80, 2))
    text = "u,v,height\n" + "\n".join(f"{a},{b},{a * a + b}" for a, b in X)
    key = new_session(client)
    assert upload(client, key, text).status_code == 200
    frame = control(client, key, "step")
    assert frame["boundary"]["kind"] == "value" and "test_r2" in frame["metrics"]
    document = client.get(f"/api/sessions/{key}/math").json()
    assert document["loss"] == "mse" and document["summary"].startswith("All ")


def test_a_bad_upload_is_refused_with_the_line_and_column_and_the_session_goes_on(client):
    key = new_session(client)
    answer = upload(client, key, "a,b,label\n1,2,x\n3,oops,y\n" + "1,2,x\n" * 20, name="bad.csv")
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert "bad.csv" in message and "line 3" in message and "'b'" in message
    assert "/tmp" not in message
    assert control(client, key, "step")["step"] == 1
    big = upload(client, key, "a,b,label\n" + "1,2,x\n" * (MAX_UPLOAD_BYTES // 6 + 10))
    assert big.status_code == 413 and "KiB" in big.json()["error"]


def test_downloads_give_a_loadable_model_and_the_documents_of_the_current_batch(client, tmp_path):
    key = new_session(client)
    for _ in range(15):
        control(client, key, "step")
    frame = control(client, key, "pause")
    answer = client.get(f"/api/sessions/{key}/download/model.nnm")
    assert "attachment" in answer.headers["content-disposition"]
    path = tmp_path / "model.nnm"
    path.write_bytes(answer.content)
    model = load_model(path)
    np.testing.assert_allclose(model.network.linears[0].W, frame["network"]["W"][0], rtol=1e-6)
    assert model.metadata["steps"] == 15
    markdown = client.get(f"/api/sessions/{key}/download/derivation.md").text
    assert markdown.startswith("# Backpropagation for 2-8tanh-8tanh-2softmax")
    n_equations = len(list(derive("2-8tanh-8tanh-2softmax", loss="cross-entropy").equations()))
    assert (
        f"All {n_equations} equations checked on the playground's network after 15 steps"
        in markdown
    )
    assert "\\documentclass" in client.get(f"/api/sessions/{key}/download/derivation.tex").text
    example = json.loads(client.get(f"/api/sessions/{key}/download/example.json").text)
    assert np.shape(example["inputs"]["X"]) == (10, 2)
    assert client.get(f"/api/sessions/{key}/download/example.md").text.startswith("# Worked")
    assert client.get(f"/api/sessions/{key}/download/passwords").status_code == 400


def test_the_page_and_its_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "nnmath playground" in page.text
    for asset in (
        "main.js",
        "api.js",
        "state.js",
        "controls.js",
        "network.js",
        "boundary.js",
        "curves.js",
        "math.js",
        "style.css",
    ):
        assert client.get(f"/static/{asset}").status_code == 200, asset
    assert "http" not in io.StringIO(page.text).read().replace("http://www.w3.org", "")
