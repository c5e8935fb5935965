"""cnnserve's inference service: FastAPI on ONNX Runtime, reading the model repository.

``python -m service`` serves; ``service.app.create_app(settings)`` builds the app. This package
never imports torch: the runtime image has none.
"""

import os

# ONNX Runtime's Linux wheels (1.29 and later) send usage telemetry to Microsoft unless this is set
# before onnxruntime is imported: a thread of theirs looked up mobile.events.data.microsoft.com about
# ten seconds after start (seen with strace), and kept a device identifier under $HOME. A model server
# should not call home; set ORT_DISABLE_TELEMETRY=0 to allow it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
