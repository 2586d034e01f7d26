"""The REST API of ``pconv serve``, through FastAPI's TestClient: answers, errors, limits, queue."""

from __future__ import annotations

import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="pconv serve needs the serve extra: pip install 'pconv[serve]'")
from fastapi.testclient import TestClient

import pconv
from pconv.inference import Inpainter, Picture
from pconv.serve import InferenceQueue, QueueFullError, ServeLimits, create_app
from pconv.serve.app import STATIC


class WatchedInpainter(Inpainter):
    """An :class:`Inpainter` that counts its calls, the most it ran at once, and can be held at a gate."""

    def __init__(self, weights) -> None:
        super().__init__(weights, "cpu")
        self.gate = threading.Event()
        self.gate.set()
        self.calls = self.running = self.most_running = 0
        self._lock = threading.Lock()

    def inpaint(self, *args, **kwargs):
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            assert self.gate.wait(timeout=30), "the test never opened the gate"
            return super().inpaint(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def inpainter(tiny_weights):
    return WatchedInpainter(tiny_weights)


def serve(inpainter, **limits) -> TestClient:
    return TestClient(create_app(inpainter, ServeLimits(**limits)))


def photo(height=48, width=64, seed=0, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def hole_of(height=48, width=64):
    hole = np.zeros((height, width), bool)
    hole[10:30, 20:45] = True
    return hole


def encode(array, format="PNG", mode=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=format)
    return buffer.getvalue()


def mask_png(hole) -> bytes:
    return encode(np.where(hole, 255, 0).astype(np.uint8))


def upload(image: bytes, mask: bytes | None, **fields):
    files = {"image": ("photo.png", image, "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return {"files": files, "data": fields}


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_inpaint_answers_the_libraries_result_as_png(inpainter):
    image, hole = photo(), hole_of()
    with serve(inpainter) as client:
        response = client.post("/api/inpaint", **upload(encode(image), mask_png(hole)))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    result = decode(response.content)
    expected = inpainter.inpaint(Picture(image.copy()), hole).pixels
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).any(axis=-1).mean() > 0.9


def test_the_refine_field_answers_the_libraries_refined_result(inpainter):
    image, hole = photo(), hole_of()
    with serve(inpainter) as client:
        refined = client.post("/api/inpaint", **upload(encode(image), mask_png(hole), refine="true"))
        plain = client.post("/api/inpaint", **upload(encode(image), mask_png(hole), refine="false"))
    assert refined.status_code == plain.status_code == 200
    expected = inpainter.inpaint(Picture(image.copy()), hole, refine=True).pixels
    np.testing.assert_array_equal(decode(refined.content), expected)
    np.testing.assert_array_equal(
        decode(plain.content), inpainter.inpaint(Picture(image.copy()), hole).pixels
    )
    assert not np.array_equal(decode(refined.content), decode(plain.content))


@pytest.mark.parametrize(("format", "content_type"), [("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_output_formats(inpainter, format, content_type):
    image, hole = photo(), hole_of()
    with serve(inpainter) as client:
        response = client.post("/api/inpaint", **upload(encode(image), mask_png(hole), format=format))
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    assert Image.open(io.BytesIO(response.content)).format == format.upper()
    assert decode(response.content).shape == image.shape
    if format == "webp":  # written lossless
        np.testing.assert_array_equal(decode(response.content)[~hole], image[~hole])


def test_mask_convention_and_alpha_channel_fields(inpainter):
    image, hole = photo(), hole_of()
    black_hole = encode(np.where(hole, 0, 255).astype(np.uint8))
    painted_alpha = np.zeros((*hole.shape, 4), np.uint8)
    painted_alpha[..., 3] = np.where(hole, 255, 0)
    with serve(inpainter) as client:
        white = client.post("/api/inpaint", **upload(encode(image), mask_png(hole))).content
        black = client.post(
            "/api/inpaint", **upload(encode(image), black_hole, mask_convention="black-hole")
        ).content
        alpha = client.post(
            "/api/inpaint", **upload(encode(image), encode(painted_alpha), mask_channel="alpha")
        ).content
    np.testing.assert_array_equal(decode(black), decode(white))
    np.testing.assert_array_equal(decode(alpha), decode(white))


def test_alpha_and_grey_images_keep_their_layout(inpainter):
    rgba, grey, hole = photo(channels=4), photo(seed=1)[..., 0], hole_of()
    with serve(inpainter) as client:
        rgba_result = decode(client.post("/api/inpaint", **upload(encode(rgba), mask_png(hole))).content)
        grey_result = decode(client.post("/api/inpaint", **upload(encode(grey), mask_png(hole))).content)
    assert rgba_result.shape == rgba.shape and grey_result.shape == grey.shape
    np.testing.assert_array_equal(rgba_result[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(grey_result[~hole], grey[~hole])


def test_a_mask_without_hole_returns_the_image_unchanged_with_a_notice(inpainter):
    image = photo()
    with serve(inpainter) as client:
        response = client.post("/api/inpaint", **upload(encode(image), mask_png(np.zeros((48, 64), bool))))
    assert response.status_code == 200
    assert "no hole" in response.headers["x-pconv-notice"]
    np.testing.assert_array_equal(decode(response.content), image)
    assert inpainter.calls == 0


def truncated(data: bytes) -> bytes:
    return data[:200]


BAD_INPUTS = {
    "corrupt image": (
        lambda i, m: upload(truncated(encode(i)), m),
        400,
        r"cannot read image 'photo\.png'.*trunc",
    ),
    "not an image": (lambda i, m: upload(b"%PDF-1.4 a document", m), 415, "not an image format"),
    "corrupt mask": (
        lambda i, m: upload(encode(i), m[: len(m) // 2]),
        400,
        r"cannot read mask 'mask\.png'.*trunc",
    ),
    "mask not an image": (
        lambda i, m: upload(encode(i), b"%PDF-1.4 a document"),
        415,
        r"^cannot read mask 'mask\.png': not an image format pconv reads; send a PNG",
    ),
    "size mismatch": (
        lambda i, m: upload(encode(i), mask_png(np.zeros((40, 64), bool))),
        400,
        "mask 'mask.png' is 64×40 but image is 64×48",
    ),
    "all hole": (lambda i, m: upload(encode(i), mask_png(np.ones((48, 64), bool))), 400, "whole image"),
    "missing mask": (lambda i, m: upload(encode(i), None), 422, "^mask: field required$"),
    "missing image": (
        lambda i, m: {"files": {"mask": ("mask.png", m, "image/png")}},
        422,
        "^image: field required$",
    ),
    "unknown format": (lambda i, m: upload(encode(i), m, format="gif"), 422, "format: input should be"),
    "unknown convention": (
        lambda i, m: upload(encode(i), m, mask_convention="red-hole"),
        422,
        "mask_convention: input should be",
    ),
    "image as a text field": (
        lambda i, m: {"data": {"image": "photo.png"}, "files": {"mask": ("mask.png", m, "image/png")}},
        422,
        "image: ",
    ),
    "alpha as jpeg": (
        lambda i, m: upload(encode(photo(channels=4)), m, format="jpeg"),
        400,
        "JPEG cannot store this 8-bit RGBA image",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_json_4xx_with_a_specific_detail(inpainter, case):
    make, status, detail = BAD_INPUTS[case]
    with serve(inpainter) as client:
        response = client.post("/api/inpaint", **make(photo(), mask_png(hole_of())))
        assert client.get("/api/health").json()["pending"] == 0  # its place in the queue was given back
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
    assert re.search(detail, response.json()["detail"]), response.json()["detail"]
    assert inpainter.calls == 0


def test_request_body_limit(inpainter):
    image, mask = encode(photo()), mask_png(hole_of())
    limit = len(image) + len(mask) + 1000  # room for the multipart framing (about 300 bytes)
    with serve(inpainter, max_upload_bytes=limit) as client:
        assert client.post("/api/inpaint", **upload(image, mask)).status_code == 200
        big = encode(photo(height=96, width=128))
        response = client.post("/api/inpaint", **upload(big, mask))
        assert response.status_code == 413
        assert f"over the server's limit of {limit:,} bytes" in response.json()["detail"]
        chunks = iter([b"x" * 4096] * (limit // 4096 + 2))  # no Content-Length: counted as it arrives
        response = client.post(
            "/api/inpaint", content=chunks, headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert response.status_code == 413
        assert (
            response.json()["detail"]
            == f"the request body is larger than the server's limit of {limit:,} bytes"
        )
    assert inpainter.calls == 1


def test_an_image_over_pillows_own_limit_is_a_413_in_pconvs_words(inpainter):
    huge = io.BytesIO()
    Image.new("1", (30000, 30000)).save(huge, "PNG")  # 900 M pixels in 112 kB: Pillow refuses it at open
    with serve(inpainter) as client:
        response = client.post("/api/inpaint", **upload(huge.getvalue(), mask_png(hole_of())))
    assert response.status_code == 413
    assert re.fullmatch(
        r"image 'photo\.png' has more than [\d,]+ pixels, more than the limit of [\d,]+",
        response.json()["detail"],
    )
    assert "decompression bomb" not in response.text


def test_image_pixel_limit_is_checked_before_decoding(inpainter):
    with serve(inpainter, max_image_pixels=48 * 64 - 1) as client:
        response = client.post("/api/inpaint", **upload(truncated(encode(photo())), mask_png(hole_of())))
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "image 'photo.png' is 64×48 = 3,072 pixels, more than the limit of 3,071"
    )


def test_twenty_concurrent_requests_run_one_at_a_time_and_each_gets_its_own_result(inpainter):
    images, hole = [photo(seed=seed) for seed in range(20)], hole_of()
    with serve(inpainter, queue_size=20, max_uploads=21) as client:

        def send(image):
            return client.post("/api/inpaint", **upload(encode(image), mask_png(hole)))

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(send, images))
    assert [response.status_code for response in responses] == [200] * 20
    assert inpainter.calls == 20 and inpainter.most_running == 1
    for image, response in zip(images, responses, strict=True):
        expected = inpainter.inpaint(Picture(image.copy()), hole).pixels
        np.testing.assert_array_equal(decode(response.content), expected)


def test_uploads_held_at_once_are_bounded_and_the_next_gets_503_before_its_body_is_read(inpainter):
    inpainter.gate.clear()
    with serve(inpainter, queue_size=8, max_uploads=2) as client, ThreadPoolExecutor(2) as pool:
        request = upload(encode(photo()), mask_png(hole_of()))
        held = [pool.submit(client.post, "/api/inpaint", **request) for _ in range(2)]
        wait_until(lambda: client.get("/api/health").json()["pending"] == 2)  # GETs are not uploads
        refused = client.post("/api/inpaint", **request)
        inpainter.gate.set()
        statuses = [future.result().status_code for future in held]
        assert client.post("/api/inpaint", **request).status_code == 200  # places are given back
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["detail"] == "the server is busy: it holds 2 uploads, its limit; try again later"
    assert statuses == [200, 200] and inpainter.calls == 3


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_a_full_queue_answers_503_with_retry_after(inpainter):
    inpainter.gate.clear()
    with serve(inpainter, queue_size=2) as client, ThreadPoolExecutor(3) as pool:
        request = upload(encode(photo()), mask_png(hole_of()))
        accepted = [pool.submit(client.post, "/api/inpaint", **request) for _ in range(3)]
        wait_until(lambda: client.get("/api/health").json()["pending"] == 3)
        refused = client.post("/api/inpaint", **request)
        inpainter.gate.set()
        statuses = [future.result().status_code for future in accepted]
    assert refused.status_code == 503
    assert "2 requests are waiting" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert statuses == [200, 200, 200] and inpainter.calls == 3


def test_request_timeout_answers_504_while_running_and_503_while_waiting(inpainter):
    inpainter.gate.clear()
    with serve(inpainter, request_timeout=0.5) as client, ThreadPoolExecutor(2) as pool:
        request = upload(encode(photo()), mask_png(hole_of()))
        running = pool.submit(client.post, "/api/inpaint", **request)
        wait_until(lambda: inpainter.calls == 1)
        waiting = client.post("/api/inpaint", **request)
        slow = running.result()
        inpainter.gate.set()
        wait_until(lambda: client.get("/api/health").json()["pending"] == 0)
    assert slow.status_code == 504 and "request timeout" in slow.json()["detail"]
    assert waiting.status_code == 503 and "waited 0.5 s" in waiting.json()["detail"]
    assert "retry-after" in waiting.headers
    assert inpainter.calls == 1  # the request that timed out while waiting never ran


def test_health_describes_version_model_device_and_limits(inpainter):
    with serve(inpainter, queue_size=3) as client:
        health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["version"] == pconv.__version__
    assert health["model"] == {
        "backend": "torch",
        "file": "tiny.safetensors",
        "preset": "tiny",
        "depth": inpainter.model.depth,
        "precision": "fp32",
    }
    assert health["device"] == "cpu" and health["pending"] == 0
    assert health["limits"] == {
        "max_upload_bytes": 50 * 1024 * 1024,
        "max_image_pixels": 4096 * 4096,
        "request_timeout": 120.0,
        "queue_size": 3,
        "max_uploads": 16,
    }


def test_page_and_its_assets_come_from_the_package_only(inpainter):
    with serve(inpainter) as client:
        page = client.get("/")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert sorted(assets) == ["/static/app.js", "/static/icon.svg", "/static/style.css"]
        for asset in assets:
            assert client.get(asset).status_code == 200
        assert client.get("/static/nothing.js").status_code == 404
    for path in STATIC.iterdir():
        text = re.sub(r'xmlns="[^"]*"', "", path.read_text())  # an SVG namespace is a name, not a link
        assert not re.search(r"https?://", text), f"{path.name} refers to another site"


def test_api_docs_load_their_assets_from_the_server_itself(inpainter):
    with serve(inpainter) as client:
        pages = {name: client.get(name).text for name in ("/docs", "/redoc")}
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", pages["/docs"] + pages["/redoc"])
        assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
        assert any(asset.endswith("redoc.standalone.js") for asset in assets)
        for asset in assets:
            assert asset.startswith("/"), f"the docs load {asset} from another site"
            assert client.get(asset).status_code == 200, asset


def test_openapi_documents_the_form(inpainter):
    with serve(inpainter) as client:
        schema = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    operation = schema["paths"]["/api/inpaint"]["post"]
    form = next(iter(operation["requestBody"]["content"].values()))["schema"]
    if "$ref" in form:
        form = schema["components"]["schemas"][form["$ref"].rsplit("/", 1)[1]]
    assert set(form["properties"]) == {"image", "mask", "mask_convention", "mask_channel", "refine", "format"}
    assert set(form["required"]) == {"image", "mask"}
    assert {"200", "400", "413", "415", "422", "503", "504"} <= set(operation["responses"])
    assert "/api/health" in schema["paths"]


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="request_timeout must be positive"):
        ServeLimits(request_timeout=0)
    with pytest.raises(ValueError, match="queue_size must be at least 0, got -1"):
        ServeLimits(queue_size=-1)


def test_queue_runs_jobs_in_order_and_cancelled_waiting_jobs_never_run():
    queue, ran, gate = InferenceQueue(max_waiting=2), [], threading.Event()
    first = queue.reserve().submit(lambda: gate.wait(10) and ran.append("first"))
    second = queue.reserve().submit(lambda: ran.append("second"))
    third = queue.reserve().submit(lambda: ran.append("third"))
    with pytest.raises(QueueFullError, match="2 requests are waiting") as refused:
        queue.reserve()
    assert refused.value.retry_after >= 1 and queue.pending == 3
    assert second.cancel() and queue.pending == 2
    gate.set()
    first.result(10), third.result(10)
    queue.close()
    assert ran == ["first", "third"] and queue.pending == 0
    single, gate = InferenceQueue(max_waiting=1), threading.Event()
    running = single.reserve().submit(lambda: gate.wait(10))
    waiting = single.reserve()
    with pytest.raises(QueueFullError, match="the server is busy: 1 request is waiting for the model"):
        single.reserve()
    waiting.release(), gate.set(), running.result(10), single.close()


def test_a_reservation_holds_its_place_until_released_or_its_job_is_done():
    queue = InferenceQueue(max_waiting=0)
    unused = queue.reserve()
    with pytest.raises(QueueFullError):
        queue.reserve()
    unused.release()
    unused.release()  # a second release gives back nothing more
    assert queue.pending == 0
    used = queue.reserve()
    used.submit(lambda: None).result(10)
    used.release()  # no-op after submit: the finished job gave the place back
    assert queue.pending == 0
    with pytest.raises(RuntimeError, match="already used"):
        used.submit(lambda: None)
    queue.close()
