"""HTTP API of ``dfnet serve``: success in both formats and every refusal (400, 413, 415, 422, 503)."""

from __future__ import annotations

import base64
import io
import logging
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, JpegImagePlugin

from dfnet.exemplar import ExemplarDetail
from dfnet.inference import Inpainter
from dfnet.web import ServerSettings, create_app
from dfnet.web.responses import webp_is_lossless


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def mask_png(hole: np.ndarray) -> bytes:
    return png_bytes(hole.astype(np.uint8) * 255)


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def upload(image: bytes, mask: bytes, **fields: str) -> dict:
    """Keyword arguments for ``client.post`` sending a multipart form like the page does."""
    return {
        "files": {"image": ("photo.png", image, "image/png"), "mask": ("mask.png", mask, "image/png")},
        "data": fields,
    }


@pytest.fixture
def inpainter(tiny_model) -> Inpainter:
    return Inpainter(tiny_model, device="cpu")


@pytest.fixture
def client(inpainter):
    with TestClient(create_app(inpainter, ServerSettings(max_upload_bytes=2 * 1024 * 1024))) as test_client:
        yield test_client


@pytest.fixture
def form(photo_256, hole_256) -> dict:
    return upload(png_bytes(photo_256), mask_png(hole_256))


class BlockingInpainter:
    """Stands in for the model: returns the input, but only once the test lets it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        self.entered.set()
        assert self.release.wait(30), "test never released the fake model"
        return image.copy()

    def describe(self) -> dict:
        return {"name": "blocking-fake", "device": "cpu"}


class RefusingInpainter(BlockingInpainter):
    """A model that rejects every request the way the onnxruntime engine rejects a request for details."""

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        raise ValueError(
            "the onnxruntime engine computes only the result; use engine='torch' for raw and alpha"
        )


# ---------- success ----------


def test_png_result_keeps_known_pixels_and_fills_the_hole(client, form, photo_256, hole_256):
    response = client.post("/api/inpaint", **form)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"
    result = decode_png(response.content)
    assert result.shape == (256, 256, 3)
    assert np.array_equal(result[~hole_256], photo_256[~hole_256])
    assert not np.array_equal(result[hole_256], photo_256[hole_256])


def test_json_result_matches_png_and_carries_alpha_and_raw(client, form, hole_256):
    png = client.post("/api/inpaint", **form).content
    form["data"] = {"return": "json", "alpha": "true", "raw": "true"}
    response = client.post("/api/inpaint", **form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (256, 256)
    assert body["hole_ratio"] == pytest.approx(hole_256.mean())
    assert body["media_type"] == "image/png"
    assert np.array_equal(decode_png(base64.b64decode(body["result"])), decode_png(png))
    for name in ("alpha", "raw"):
        picture = decode_png(base64.b64decode(body[name]))
        assert picture.shape[:2] == (256, 256)
    raw = decode_png(base64.b64decode(body["raw"]))
    result = decode_png(png)
    assert not np.array_equal(raw, result)  # the raw completion is not the composited result


def encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_jpeg_input_comes_back_as_jpeg_with_its_own_quantization_tables(client, photo_256, hole_256):
    source = encoded(photo_256, "JPEG", quality=60, subsampling=2)
    response = client.post("/api/inpaint", **upload(source, mask_png(hole_256), **{"return": "image"}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert float(response.headers["x-dfnet-hole-ratio"]) == pytest.approx(hole_256.mean(), abs=1e-6)
    with Image.open(io.BytesIO(source)) as original, Image.open(io.BytesIO(response.content)) as result:
        assert result.format == "JPEG" and result.size == (256, 256)
        assert result.quantization == original.quantization  # quality 60, not the encoder's default
        assert JpegImagePlugin.get_sampling(result) == JpegImagePlugin.get_sampling(original) == 2
    default = client.post("/api/inpaint", **upload(source, mask_png(hole_256)))  # PNG unless asked
    assert default.headers["content-type"] == "image/png"
    assert decode_png(default.content).shape == (256, 256, 3)


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_input_comes_back_as_webp_lossless_or_lossy_like_the_input(
    client, photo_256, hole_256, lossless
):
    options = {"lossless": True} if lossless else {"quality": 80}
    source = encoded(photo_256, "WEBP", **options)
    assert webp_is_lossless(source) is lossless
    response = client.post("/api/inpaint", **upload(source, mask_png(hole_256), **{"return": "image"}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert webp_is_lossless(response.content) is lossless
    result = decode_png(response.content)  # Pillow reads any format
    if lossless:  # known pixels survive exactly only without lossy compression
        assert np.array_equal(result[~hole_256], decode_png(source)[~hole_256])


def test_alpha_and_raw_alone_are_the_pngs_the_json_answer_carries(client, form):
    form["data"] = {"return": "json", "alpha": "true", "raw": "true"}
    body = client.post("/api/inpaint", **form).json()
    for name in ("alpha", "raw"):
        form["data"] = {"return": name}
        response = client.post("/api/inpaint", **form)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        assert np.array_equal(decode_png(response.content), decode_png(base64.b64decode(body[name])))
    assert decode_png(client.post("/api/inpaint", **form).content).shape == (256, 256, 3)  # raw is RGB


def test_json_without_details_has_only_the_result(client, form):
    form["data"] = {"return": "json"}
    body = client.post("/api/inpaint", **form).json()
    assert "result" in body and "alpha" not in body and "raw" not in body


def test_texture_field_switches_the_exemplar_detail_per_request(tiny_model, photo_256, hole_256):
    textured = Inpainter(tiny_model, device="cpu", texture=ExemplarDetail())
    plain = Inpainter(tiny_model, device="cpu").inpaint(photo_256, hole_256)
    detailed = textured.inpaint(photo_256, hole_256)
    assert not np.array_equal(detailed, plain)
    with TestClient(create_app(textured)) as client:
        assert client.get("/api/model").json()["texture"]["strength"] == ExemplarDetail().strength
        form = upload(png_bytes(photo_256), mask_png(hole_256))
        assert np.array_equal(decode_png(client.post("/api/inpaint", **form).content), detailed)
        form["data"] = {"texture": "false"}
        assert np.array_equal(decode_png(client.post("/api/inpaint", **form).content), plain)
        form["data"] = {"texture": "coarse"}  # a preset instead of the model's own setting
        coarse = textured.inpaint(photo_256, hole_256, add_texture="coarse")
        assert not np.array_equal(coarse, detailed)
        assert np.array_equal(decode_png(client.post("/api/inpaint", **form).content), coarse)
        form["data"] = {"texture": "maybe"}
        response = client.post("/api/inpaint", **form)
        assert response.status_code == 422 and "texture" in response.json()["detail"]


def test_any_size_works_and_an_unknown_strategy_is_422(client):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    hole = np.zeros((200, 300), dtype=bool)
    hole[50:90, 120:200] = True
    response = client.post("/api/inpaint", **upload(png_bytes(photo), mask_png(hole), strategy="crop"))
    assert response.status_code == 200, response.text
    result = decode_png(response.content)
    assert result.shape == (200, 300, 3)
    assert np.array_equal(result[~hole], photo[~hole])
    response = client.post("/api/inpaint", **upload(png_bytes(photo), mask_png(hole), strategy="sideways"))
    assert response.status_code == 422
    assert response.json() == {
        "detail": "strategy: unknown value 'sideways' (use auto, original, resize, crop)"
    }


def test_rgba_input_keeps_its_alpha_channel(client, photo_256, hole_256):
    alpha = np.full((256, 256), 200, dtype=np.uint8)
    rgba = np.dstack([photo_256, alpha])
    response = client.post("/api/inpaint", **upload(png_bytes(rgba), mask_png(hole_256)))
    assert response.status_code == 200, response.text
    result = decode_png(response.content)
    assert result.shape == (256, 256, 4)
    assert np.array_equal(result[:, :, 3], alpha)
    assert np.array_equal(result[~hole_256][:, :3], photo_256[~hole_256])


# ---------- 413 ----------


def test_body_over_the_byte_limit_is_413(inpainter, form):
    with TestClient(create_app(inpainter, ServerSettings(max_upload_bytes=4000))) as small:
        response = small.post("/api/inpaint", **form)
    assert response.status_code == 413
    assert response.json()["detail"] == "upload too large: image and mask together may be at most 3.91 KB"


def test_streamed_body_without_length_is_cut_at_the_limit(inpainter):
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b"x" * 1000

    with TestClient(create_app(inpainter, ServerSettings(max_upload_bytes=5000))) as small:
        response = small.post(
            "/api/inpaint", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}


def test_image_over_the_pixel_limit_is_413(inpainter, form):
    with TestClient(create_app(inpainter, ServerSettings(max_pixels=256 * 255))) as small:
        response = small.post("/api/inpaint", **form)
    assert response.status_code == 413
    assert response.json()["detail"] == "image: 256x256 = 65,536 pixels, over the limit of 65,280"


# ---------- 415 ----------


def test_non_multipart_request_is_415(client):
    response = client.post("/api/inpaint", json={"image": "x"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


def test_part_declared_as_text_is_415(client, hole_256):
    files = {
        "image": ("notes.txt", b"hello", "text/plain"),
        "mask": ("mask.png", mask_png(hole_256), "image/png"),
    }
    response = client.post("/api/inpaint", files=files)
    assert response.status_code == 415
    assert response.json()["detail"] == "image: expected an image file, got text/plain"


def test_bytes_that_are_not_an_image_are_415(client, photo_256):
    response = client.post("/api/inpaint", **upload(png_bytes(photo_256), b"<svg></svg>"))
    assert response.status_code == 415
    assert response.json()["detail"].startswith("mask: not a supported image")


# ---------- 400 / 422 ----------


def test_size_mismatch_is_400_naming_both_sizes(client, photo_256):
    small_mask = np.zeros((128, 96), dtype=bool)
    small_mask[10:20, 10:20] = True
    response = client.post("/api/inpaint", **upload(png_bytes(photo_256), mask_png(small_mask)))
    assert response.status_code == 400
    assert response.json()["detail"] == "mask is 96x128 but the image is 256x256: they must be the same size"


def test_empty_mask_is_400(client, photo_256):
    response = client.post(
        "/api/inpaint", **upload(png_bytes(photo_256), mask_png(np.zeros((256, 256), bool)))
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "mask has no hole: paint the area to fill (white = hole)"


def test_truncated_image_is_400(client, photo_256, hole_256):
    data = png_bytes(photo_256)
    response = client.post("/api/inpaint", **upload(data[: len(data) // 2], mask_png(hole_256)))
    assert response.status_code == 400
    assert "truncated" in response.json()["detail"]


def test_empty_file_is_400(client, hole_256):
    response = client.post("/api/inpaint", **upload(b"", mask_png(hole_256)))
    assert response.status_code == 400
    assert response.json()["detail"] == "image: empty file"


def test_value_error_from_the_model_is_400(form):
    with TestClient(create_app(RefusingInpainter())) as test_client:
        form["data"] = {"return": "alpha"}
        response = test_client.post("/api/inpaint", **form)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("the onnxruntime engine computes only the result")


def test_malformed_multipart_is_400(client):
    for content_type, body in [
        ("multipart/form-data; boundary=abc", b"garbage"),
        ("multipart/form-data", b"--x"),
    ]:
        response = client.post("/api/inpaint", content=body, headers={"content-type": content_type})
        assert response.status_code == 400
        assert "multipart" in response.json()["detail"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    image=st.binary(max_size=300),
    mask=st.binary(max_size=300),
    declared=st.sampled_from(["image/png", "", "x/y"]),
)
def test_arbitrary_bytes_never_cause_a_server_error(image, mask, declared):
    fake = BlockingInpainter()
    fake.release.set()
    files = {"image": ("a", image, declared), "mask": ("b", mask, "image/png")}
    with TestClient(create_app(fake)) as test_client:
        response = test_client.post("/api/inpaint", files=files)
    assert response.status_code in (400, 413, 415), response.text
    assert isinstance(response.json()["detail"], str)


def test_missing_mask_and_bad_option_are_422_with_the_same_shape_as_other_errors(client, photo_256, form):
    response = client.post("/api/inpaint", files={"image": ("a.png", png_bytes(photo_256), "image/png")})
    assert response.status_code == 422
    assert response.json() == {"detail": "mask: Field required"}
    form["data"] = {"return": "xml", "alpha": "maybe"}
    response = client.post("/api/inpaint", **form)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("return: Input should be 'image', 'png', 'json', 'alpha' or 'raw'")
    assert "; alpha: " in detail and "\n" not in detail


# ---------- queue and worker thread ----------


def test_full_queue_is_503_while_the_event_loop_keeps_answering(form):
    fake = BlockingInpainter()
    settings = ServerSettings(queue_size=1, worker_threads=1)
    with TestClient(create_app(fake, settings)) as test_client:
        first: dict = {}
        worker = threading.Thread(
            target=lambda: first.update(response=test_client.post("/api/inpaint", **form))
        )
        worker.start()
        try:
            assert fake.entered.wait(30), "the first request never reached the model"
            health = test_client.get("/api/health")  # answered while inference blocks its worker thread
            assert health.json() == {"status": "ok", "in_flight": 1, "queue_size": 1}
            busy = test_client.post("/api/inpaint", **form)
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "2"
            assert "server busy" in busy.json()["detail"]
        finally:
            fake.release.set()
            worker.join(30)
        assert first["response"].status_code == 200
        assert test_client.get("/api/health").json()["in_flight"] == 0
        assert test_client.post("/api/inpaint", **form).status_code == 200  # the slot was given back


def test_slot_is_returned_after_a_refusal(inpainter, photo_256):
    with TestClient(create_app(inpainter, ServerSettings(queue_size=1))) as test_client:
        empty = mask_png(np.zeros((256, 256), bool))
        for _ in range(3):
            assert test_client.post("/api/inpaint", **upload(png_bytes(photo_256), empty)).status_code == 400
        assert test_client.get("/api/health").json()["in_flight"] == 0


# ---------- other endpoints ----------


def test_health(client):
    assert client.get("/api/health").json() == {"status": "ok", "in_flight": 0, "queue_size": 4}


def test_model_describes_the_network_and_the_limits(client, inpainter):
    body = client.get("/api/model").json()
    described = inpainter.describe()
    assert body["name"] == described["name"]
    assert body["config"]["width"] == 0.125
    assert body["device"] == "cpu"
    assert body["strategies"][0] == "auto" and "crop" in body["strategies"]
    assert body["limits"] == {
        "max_upload_bytes": 2 * 1024 * 1024,
        "max_pixels": 25_000_000,
        "queue_size": 4,
        "worker_threads": 1,
        "body_timeout_s": 30.0,
        "requests_per_client": 4,
    }


def test_openapi_documents_the_form(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/inpaint"]["post"]
    form_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][form_ref.rsplit("/", 1)[1]]
    assert set(fields["required"]) == {"image", "mask"}
    assert {"strategy", "return", "alpha", "raw"} <= set(fields["properties"])
    assert {"200", "400", "413", "415", "422", "503"} <= set(operation["responses"])
    assert {"image/png", "image/jpeg", "image/webp", "application/json"} <= set(
        operation["responses"]["200"]["content"]
    )
    assert {"/api/health", "/api/model"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_page_and_static_files_are_served_without_external_urls(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200
        assert "http://" not in response.text and "https://" not in response.text
    assert "https://" not in page.text and 'src="/static/app.js"' in page.text


def test_logs_carry_sizes_but_no_image_content(client, form, caplog):
    form["data"] = {"return": "json"}
    with caplog.at_level(logging.DEBUG, logger="dfnet.web"):
        body = client.post("/api/inpaint", **form).json()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "inpaint 256x256" in text
    assert body["result"][:64] not in text and len(text) < 1000


# ---------- dfnet serve ----------


def test_serve_binds_loopback_by_default(monkeypatch, inpainter):
    import uvicorn

    from dfnet.cli import main
    from dfnet.inference import Inpainter as InpainterClass

    calls = {}
    monkeypatch.setattr(
        InpainterClass,
        "from_pretrained",
        classmethod(
            lambda cls, name, device="auto", engine="torch", texture="auto": (
                calls.update(engine=engine, texture=texture) or inpainter
            )
        ),
    )

    def run(server, sockets):
        calls.update(app=server.config.app, address=sockets[0].getsockname())

    monkeypatch.setattr(uvicorn.Server, "run", run)
    assert main(["serve", "--max-upload-mb", "1.5", "--queue-size", "2", "--port", "0"]) == 0
    assert calls["address"][0] == "127.0.0.1" and calls["address"][1] > 0  # port 0: any free port
    assert calls["engine"] == "optimized"  # a long-lived process prepares the fast graph once
    assert calls["texture"] == "auto"  # the bundled model gets its exemplar detail, other weights do not
    assert calls["app"].state.settings == ServerSettings(
        max_upload_bytes=1536 * 1024, max_pixels=25_000_000, queue_size=2, worker_threads=1
    )


def test_serve_rejects_a_zero_queue(capsys):
    from dfnet.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--queue-size", "0"])
    assert exit_info.value.code == 2
    assert "argument --queue-size: must be in 1..1,024, got 0" in capsys.readouterr().err
