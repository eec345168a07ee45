"""``dfnet.web.pool``: several served models, each request naming one, each model with its own threads."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dfnet.web import ServerSettings, create_app
from dfnet.web.parsing import ApiError
from dfnet.web.pool import ModelPool


class FillingInpainter:
    """Fills the hole with one grey level, optionally only once the test lets it."""

    def __init__(self, name: str, level: int, blocking: bool = False) -> None:
        self.name, self.level = name, level
        self.entered, self.release = threading.Event(), threading.Event()
        if not blocking:
            self.release.set()

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        self.entered.set()
        assert self.release.wait(30), "the test never released the model"
        result = image.copy()
        result[hole_mask] = self.level
        return result

    def describe(self) -> dict:
        return {"name": self.name, "device": "cpu"}


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def form(**fields: str) -> dict:
    hole = np.zeros((16, 16), np.uint8)
    hole[4:8, 4:8] = 255
    files = {
        "image": ("a.png", png(np.zeros((16, 16, 3), np.uint8)), "image/png"),
        "mask": ("m.png", png(hole), "image/png"),
    }
    return {"files": files, "data": fields}


def filled_level(response) -> int:
    assert response.status_code == 200, response.text
    return int(np.asarray(Image.open(io.BytesIO(response.content)))[5, 5, 0])


def test_choose_defaults_to_the_first_model_and_refuses_unknown_names():
    pool = ModelPool({"default": FillingInpainter("a", 1), "places2": FillingInpainter("b", 2)}, 1)
    try:
        assert pool.choose("") == "default" and pool.choose("places2") == "places2"
        with pytest.raises(ApiError) as refused:
            pool.choose("celeba")
        assert refused.value.status == 422
        assert refused.value.message == "model: 'celeba' is not served here (served: default, places2)"
        assert [entry["id"] for entry in pool.describe()] == ["default", "places2"]
    finally:
        pool.shutdown()


def test_each_request_names_its_model_and_api_model_lists_them():
    models = {
        "default": FillingInpainter("dfnet-a", 100),
        "other.safetensors": FillingInpainter("dfnet-b", 200),
    }
    with TestClient(create_app(models)) as client:
        assert filled_level(client.post("/api/inpaint", **form())) == 100
        assert filled_level(client.post("/api/inpaint", **form(model="other.safetensors"))) == 200
        unknown = client.post("/api/inpaint", **form(model="nope"))
        described = client.get("/api/model").json()
    assert unknown.status_code == 422 and "served: default, other.safetensors" in unknown.json()["detail"]
    assert described["name"] == "dfnet-a" and described["default_model"] == "default"
    assert [(m["id"], m["name"]) for m in described["models"]] == [
        ("default", "dfnet-a"),
        ("other.safetensors", "dfnet-b"),
    ]


def test_a_busy_model_does_not_hold_up_another():
    slow = FillingInpainter("slow", 10, blocking=True)
    models = {"slow": slow, "quick": FillingInpainter("quick", 20)}
    with TestClient(create_app(models, ServerSettings(worker_threads=1, queue_size=4))) as client:
        first: dict = {}
        waiting = threading.Thread(
            target=lambda: first.update(r=client.post("/api/inpaint", **form(model="slow")))
        )
        waiting.start()
        try:
            assert slow.entered.wait(30)
            assert filled_level(client.post("/api/inpaint", **form(model="quick"))) == 20  # its own thread
        finally:
            slow.release.set()
            waiting.join(30)
    assert filled_level(first["r"]) == 10


def test_serve_loads_every_model_given_and_refuses_a_repeat(monkeypatch, capsys):
    import uvicorn

    from dfnet.cli import main
    from dfnet.inference import Inpainter

    loaded: list[str] = []
    monkeypatch.setattr(
        Inpainter,
        "from_pretrained",
        classmethod(lambda cls, name, **_: loaded.append(name) or FillingInpainter(f"net-{name}", 1)),
    )
    apps = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: apps.append(server.config.app))
    assert main(["serve", "--port", "0", "--model", "default", "--model", "b.safetensors"]) == 0
    assert loaded == ["default", "b.safetensors"]
    assert [m["id"] for m in apps[0].state.pool.describe()] == ["default", "b.safetensors"]
    assert main(["serve", "--port", "0", "--model", "x", "--model", "x"]) == 1
    assert "dfnet serve: error: --model x is given more than once" in capsys.readouterr().err
