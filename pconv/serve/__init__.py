"""``pconv serve``: a REST API and a web page for inpainting, on one model loaded once.

Needs the ``serve`` extra: ``pip install "pconv[serve]"`` (FastAPI, uvicorn,
python-multipart).
"""

from pconv.serve.app import OUTPUT_FORMATS, ServeLimits, create_app
from pconv.serve.queue import InferenceQueue, QueueFullError, Reservation

__all__ = ["OUTPUT_FORMATS", "InferenceQueue", "QueueFullError", "Reservation", "ServeLimits", "create_app"]
