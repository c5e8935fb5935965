"""cnnserve's inference service: FastAPI on ONNX Runtime, reading the model repository.

``python -m service`` serves; ``service.app.create_app(settings)`` builds the app. This package
never imports torch: the runtime image has none.
"""

__version__ = "0.1.0"
