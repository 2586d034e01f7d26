"""The FastAPI application of ``pconv serve``: the REST API and the web page.

Routes:

- ``POST /api/inpaint``: multipart form with the files ``image`` and ``mask`` (same
  size; white / 255 = hole unless ``mask_convention=black-hole``) and the optional
  fields ``mask_convention``, ``mask_channel``, ``refine`` (``true``: fills refined
  with patch synthesis, :mod:`pconv.inference.synthesis`) and ``format`` (``png``,
  ``jpeg`` or ``webp``); answers the inpainted image. Known pixels come back unchanged (exactly, in
  PNG and WebP, which are written lossless).
- ``GET /api/health``: version, model, device, limits and the number of pending requests.
- ``GET /``: the web page (``pconv/serve/static``); ``/docs`` and ``/redoc``: the OpenAPI
  docs, with Swagger UI and ReDoc served from the ``fastapi-offline`` package (no CDN).

Every error is JSON ``{"detail": "<one readable sentence>"}``: 400 for a corrupt
file, a mask of the wrong size or one that is all hole; 413 for a request body or an
image over the limits; 415 for a file that is not an image; 422 for a missing field
or an unknown option; 503 (with ``Retry-After``) when the queue is full or a request
waited longer than the request timeout; 504 when inpainting itself took longer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib.resources import files
from typing import Annotated, BinaryIO, Literal

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pconv.devices import precision_name
from pconv.heap import give_back_free_memory
from pconv.images import ImageTooLargeError, UnsupportedImageError, encode_picture
from pconv.inference import Inpainter, Picture
from pconv.inference.folders import read_image_and_hole
from pconv.masks.io import MaskChannel, MaskConvention, UnsupportedMaskError
from pconv.serve.queue import InferenceQueue, QueueFullError, Reservation
from pconv.version import __version__

__all__ = ["OUTPUT_FORMATS", "ServeLimits", "create_app"]

logger = logging.getLogger("pconv.serve")

#: ``format`` field → (Pillow format, content type).
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
STATIC = files("pconv.serve") / "static"
#: The page may load only what the server itself serves (and the images it makes).
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask of the server (``pconv serve --help`` names the flags).

    Attributes:
        max_upload_bytes: request body size, image + mask + form overhead (413 beyond).
        max_image_pixels: width × height of the image, read from its header before
            decoding (413 beyond). Images over the :class:`Inpainter`'s own
            ``max_pixels`` are inpainted window by window, not refused.
        request_timeout: seconds a request may wait for and use the model (503 if it
            was still waiting, 504 if inpainting itself took that long).
        queue_size: requests allowed to wait while one is inpainted (503 beyond).
        max_uploads: requests with a body that the server holds at once, being received,
            waiting or being inpainted; more get 503 with ``Retry-After`` before their
            body is read. With ``max_upload_bytes`` it bounds the memory uploads can take,
            whatever the number of clients.
    """

    max_upload_bytes: int = 50 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    request_timeout: float = 120.0
    queue_size: int = 8
    max_uploads: int = 16

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "queue_size" and value < 0:
                raise ValueError(f"queue_size must be at least 0, got {value}")
            if name != "queue_size" and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


def create_app(inpainter: Inpainter, limits: ServeLimits | None = None) -> FastAPI:
    """The application serving ``inpainter`` (loaded once, shared by all requests)."""
    limits = limits or ServeLimits()
    inference = InferenceQueue(limits.queue_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        inference.close()

    # FastAPIOffline serves Swagger UI and ReDoc from its own package instead of a CDN,
    # so /docs and /redoc work on a machine without internet access.
    app = FastAPIOffline(
        title="pconv",
        version=__version__,
        summary="Image inpainting with partial convolutions: fill the holes of an image.",
        lifespan=lifespan,
    )
    app.add_middleware(
        UploadLimit,
        max_bytes=limits.max_upload_bytes,
        max_bodies=limits.max_uploads,
        retry_after=inference.retry_after,
    )
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/api/health", summary="Version, model, device, limits and pending requests")
    def health() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "model": _model_description(inpainter),
            "device": str(inpainter.device),
            "limits": asdict(limits),
            "pending": inference.pending,
        }

    @app.post(
        "/api/inpaint",
        summary="Fill the holes of an image",
        response_class=Response,
        responses={
            200: {"content": {content_type: {} for _, content_type in OUTPUT_FORMATS.values()},
                  "description": "The inpainted image, of the image's size, mode and metadata."},
            **{code: {"description": what} for code, what in _ERRORS.items()},
        },
    )  # fmt: skip
    async def inpaint(
        image: Annotated[UploadFile, File(description="the image: PNG, JPEG, WebP, TIFF or BMP")],
        mask: Annotated[UploadFile, File(description="the mask, of the image's size; white/255 = hole")],
        mask_convention: Annotated[MaskConvention, Form(description="black-hole: black/0 = hole")] = (
            "white-hole"
        ),
        mask_channel: Annotated[MaskChannel, Form(description="read the mask's alpha or luminance")] = "auto",
        refine: Annotated[
            bool, Form(description="refine the fill with patch synthesis: texture in large holes, slower")
        ] = False,
        format: Annotated[Literal["png", "jpeg", "webp"], Form(description="of the answer")] = "png",
    ) -> Response:
        pillow_format, content_type = OUTPUT_FORMATS[format]
        reservation = _reserve(inference)  # before decoding: decoded images are bounded by the queue
        try:
            picture, hole = await run_in_threadpool(
                _read_upload, image, mask, mask_convention, mask_channel, limits.max_image_pixels
            )
            pixel = Picture(picture.pixels[:1, :1].copy(), picture.info)
            await run_in_threadpool(_encode, pixel, pillow_format)  # can the format hold it?
            headers = {"Content-Disposition": f'inline; filename="inpainted.{format}"'}
            if hole.any():
                future = reservation.submit(lambda: inpainter.inpaint(picture, hole, refine=refine))
                picture = await _result(future, inference, limits.request_timeout)
            else:
                headers["X-Pconv-Notice"] = "the mask has no hole: the image is returned unchanged"
        finally:
            reservation.release()
        data = await run_in_threadpool(_encode, picture, pillow_format)
        return Response(data, media_type=content_type, headers=headers)

    return app


_ERRORS = {
    400: "A corrupt file, a mask of another size than the image, or a mask that is all hole.",
    413: "The request body or the image is larger than the server's limits.",
    415: "A file that is not an image.",
    422: "A missing field or an unknown option.",
    503: "The queue is full, or the request waited too long for the model (see Retry-After).",
    504: "Inpainting took longer than the request timeout.",
}


def _read_upload(
    image: UploadFile, mask: UploadFile, convention: MaskConvention, channel: MaskChannel, max_pixels: int
) -> tuple[Picture, np.ndarray]:
    """The image and its hole (bool ``(H, W)``, True = hole), checked; errors become 4xx."""
    try:
        picture, hole = read_image_and_hole(
            _rewound(image),
            _rewound(mask),
            convention,
            channel,
            max_pixels=max_pixels,
            image_name=_upload_name(image),
            mask_name=_upload_name(mask),
        )
    except ImageTooLargeError as error:
        raise HTTPException(413, str(error)) from None
    except (UnsupportedImageError, UnsupportedMaskError) as error:
        raise HTTPException(415, f"{error}; send a PNG, JPEG, WebP, TIFF or BMP file") from None
    except ValueError as error:  # ImageReadError, MaskError
        raise HTTPException(400, str(error)) from None
    return picture, hole


def _rewound(upload: UploadFile) -> BinaryIO:
    upload.file.seek(0)
    return upload.file


def _upload_name(upload: UploadFile) -> str:
    return repr(upload.filename) if upload.filename else "(unnamed upload)"


def _encode(picture: Picture, pillow_format: str) -> bytes:
    """The file's bytes; a mode the format cannot store is a 400 (checked on one pixel before inpainting)."""
    try:
        return encode_picture(picture, pillow_format)
    except ValueError as error:  # ImageWriteError: e.g. alpha in JPEG
        raise HTTPException(400, str(error)) from None


def _reserve(inference: InferenceQueue) -> Reservation:
    try:
        return inference.reserve()
    except QueueFullError as error:
        raise HTTPException(503, str(error), headers={"Retry-After": str(error.retry_after)}) from None


async def _result(future: Future, inference: InferenceQueue, timeout: float):
    """The queued job's result, or a 503/504 after ``timeout`` seconds."""
    done, _ = await asyncio.wait({asyncio.wrap_future(future)}, timeout=timeout)
    if done:
        return done.pop().result()
    if future.cancel():  # still waiting: it will never run
        raise HTTPException(
            503,
            f"the request waited {timeout:g} s for the model without reaching it; try again later",
            headers={"Retry-After": str(inference.retry_after())},
        )
    raise HTTPException(
        504,
        f"inpainting took longer than the server's {timeout:g} s request timeout; "
        "send a smaller image or raise the limit (pconv serve --request-timeout)",
    )


def _model_description(inpainter: Inpainter) -> dict:
    metadata = inpainter.metadata
    description = {
        "backend": inpainter.backend,
        "file": inpainter.weights.name,
        "preset": inpainter.model.preset,
        "depth": inpainter.model.depth,
        "precision": precision_name(inpainter.dtype),
    }
    if "images_seen" in metadata:
        description["images_seen"] = int(metadata["images_seen"])
    return description


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": str(error.detail)}, error.status_code, headers=error.headers)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with one sentence: ``mask: field required; format: input should be 'png', ...``."""
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"] if part not in ("body", "query"))
        message = problem["msg"][:1].lower() + problem["msg"][1:]
        problems.append(f"{where}: {message}" if where else message)
    return JSONResponse({"detail": "; ".join(problems)}, 422)


async def _server_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("error while answering %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": f"internal server error ({type(error).__name__}): {error}"}, 500)


class UploadLimit:
    """ASGI middleware bounding request bodies: their size and how many are held at once.

    A declared ``Content-Length`` over ``max_bytes`` gets a 413 at once; a body that grows
    over it while it arrives (chunked) gets a 413 then. While ``max_bodies`` requests with
    a body are held (received, waiting or being inpainted), another gets a 503 with
    ``Retry-After`` (``retry_after()`` seconds) before its body is read. A body is read
    whole, then handed on to the app. When the last held request is done, the heap's
    free memory goes back to the system (:func:`pconv.heap.give_back_free_memory`).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_bodies: int, retry_after: Callable[[], int]) -> None:
        self.app, self.max_bytes, self.max_bodies, self.retry_after = app, max_bytes, max_bodies, retry_after
        self.held = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send, int(declared))
        if not (declared.isdigit() and int(declared) > 0) and b"transfer-encoding" not in headers:
            return await self.app(scope, receive, send)  # no body (GET /api/health, the page)
        if self.held >= self.max_bodies:
            return await self._busy(scope, receive, send)
        self.held += 1
        try:
            return await self._read_then_call(scope, receive, send)
        finally:
            self.held -= 1
            if self.held == 0:  # the server is idle: what the uploads and their work freed goes back
                await run_in_threadpool(give_back_free_memory)

    async def _read_then_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(scope, receive, send, None)
        pending = [{"type": "http.request", "body": bytes(body), "more_body": False}]
        del body  # one copy of the body, handed over once

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        return await self.app(scope, replay, send)

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        held = self.held
        detail = (
            f"the server is busy: it holds {held} upload{'' if held == 1 else 's'}, its limit; "
            "try again later"
        )
        headers = {"Retry-After": str(self.retry_after())}
        await JSONResponse({"detail": detail}, 503, headers=headers)(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int | None) -> None:
        if size is None:  # a chunked body, counted as it arrived
            detail = f"the request body is larger than the server's limit of {self.max_bytes:,} bytes"
        else:
            detail = f"the request is {size:,} bytes, over the server's limit of {self.max_bytes:,} bytes"
        await JSONResponse({"detail": detail}, 413)(scope, receive, send)
