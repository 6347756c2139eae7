"""The files the page offers: the model, the derivation (Markdown, LaTeX), the worked example.

Each is written by the library for the session's current network and batch: ``save_model`` (the
same .nnm file as ``nnmath train``), ``to_markdown``/``to_latex`` of the derivation verified on the
current batch (the same document as ``nnmath derive --verify``), ``example_markdown`` and
``example_json`` (``nnmath derive --example``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from nnmath.derivation import derive, example_json, example_markdown, to_latex, to_markdown, verify
from nnmath.modelfile import TrainedModel, save_model
from nnmath.playground import mathpanel
from nnmath.playground.session import Snapshot

DOWNLOADS = ("model.nnm", "derivation.md", "derivation.tex", "example.md", "example.json")


def model_bytes(snapshot: Snapshot) -> bytes:
    """The current network as a .nnm model file (written by ``save_model``, then read back)."""
    data = snapshot.data
    model = TrainedModel(
        network=snapshot.model,
        loss=snapshot.loss,
        task=data.task,
        class_names=data.train.class_names,
        feature_names=data.train.feature_names,
        target_name=data.train.target_name,
        standardizer=data.standardizer,
        target_standardizer=data.target_standardizer,
        metadata={"source": "nnmath playground", "steps": snapshot.step, "data": data.name},
    )
    with tempfile.TemporaryDirectory(prefix="nnmath-playground-") as folder:
        path = save_model(model, Path(folder) / "model.nnm")
        return path.read_bytes()


def documents(snapshot: Snapshot, notation: str, name: str) -> tuple[str, str]:
    """(text, media type) of a download: the derivation (md, tex) or the worked example (md, json)."""
    spec, loss = snapshot.model.spec, snapshot.loss
    command = f"nnmath derive {spec} --loss {loss.name}" + (
        " --notation column" if notation == "column" else ""
    )
    if name.startswith("derivation"):
        derivation = derive(spec, loss, notation)
        verify(derivation, mathpanel.problem_of(snapshot, derivation))
        if name.endswith(".tex"):
            return to_latex(derivation, command), "application/x-tex"
        return to_markdown(derivation, command), "text/markdown"
    _, example = mathpanel.evaluated(snapshot, notation)
    if name.endswith(".json"):
        return example_json(example), "application/json"
    return example_markdown(example, f"{command} --example"), "text/markdown"
