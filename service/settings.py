"""The service's configuration: one pydantic-settings class read from ``CNNSERVE_*`` variables.

A bad value fails at start-up with a message naming the variable, never at the first request.
``python -m service --repository DIR --host H --port P`` overrides the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from repository import Precision

__all__ = ["PROVIDER_ALIASES", "LogFormat", "Settings"]

# Short names accepted in CNNSERVE_PROVIDERS ("cuda,cpu"); full ONNX Runtime names pass through.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


LogFormat = Literal["text", "json"]


class Settings(BaseSettings):
    """Every setting has an environment variable: the field name, upper case, prefixed ``CNNSERVE_``."""

    model_config = SettingsConfigDict(env_prefix="CNNSERVE_", frozen=True, extra="ignore")

    repository: Path = Field(Path("model_repository"), description="the model repository to serve")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="port to listen on (0: any free port)")
    grpc_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="port of the Open Inference Protocol over gRPC, on the same host (0: no gRPC); 8001 as Triton's",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: LogFormat = Field(
        "text",
        description="json: one object a line (time, level, worker, request id, trace id, and for the access log the "
        "model, version, variant, status and duration)",
    )
    access_log: bool = Field(
        False,
        description="log every request (uvicorn's access log): a line costs about as much CPU as a quarter of "
        "a small inference request; the metrics count requests anyway",
    )
    graceful_shutdown_s: int = Field(30, ge=0, description="seconds in-flight requests get to finish on shutdown")
    workers: int = Field(
        0,
        ge=0,
        description="server processes on the port, each with its own sessions "
        "(0: one per usable CPU, from the affinity and the cgroup's CPU quota)",
    )
    fast_path: bool = Field(
        True,
        description="answer the inference routes before FastAPI's routing and dependency injection "
        "(same responses, a fraction of the CPU); false: through FastAPI like every other route",
    )

    providers: Annotated[list[str], NoDecode] = Field(
        ["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="ONNX Runtime execution providers, preferred first (comma list; cuda, cpu, ... or full names)",
    )
    intra_op_threads: int = Field(
        0, ge=0, description="threads inside one operator, per worker (0: the usable CPUs divided among the workers)"
    )
    inter_op_threads: int = Field(0, ge=0, description="threads across operators (0: ONNX Runtime's default)")
    ort_spinning: bool = Field(
        False,
        description="let ONNX Runtime's pool threads (more than one thread per worker) spin between the "
        "operators of a run, never after it: a little lower latency on an idle machine, much less throughput "
        "on a busy one",
    )
    inference_workers: int = Field(
        2, ge=1, description="threads running session.run; each model runs one batch at a time"
    )
    variants: Annotated[list[Precision], NoDecode] = Field(
        ["fp32", "int8", "fp16"], description="precisions to load when the card publishes them (comma list)"
    )
    version_policy: Literal["latest", "all"] = Field(
        "latest", description="serve the newest loadable version (Triton's latest 1) or every version"
    )
    warmup: bool = Field(True, description="run one batch through each session before the model reports ready")
    default_model: str | None = Field(None, description="model for /predict without a model (default: the only one)")

    max_batch_size: int | None = Field(None, ge=1, description="override the cards' max_batch_size")
    max_queue_delay_microseconds: int | None = Field(None, ge=0, description="override the cards' queue delay")
    max_queue_size: int = Field(256, ge=1, description="requests waiting per model before 503 + Retry-After")
    batch_regroup: bool = Field(
        True,
        description="after a batch that ran 2 ms or more, let the next one wait up to a quarter of that run for "
        "the requests it answered to come back, so closed-loop clients keep filling batches instead of splitting "
        "into two alternating groups (false: Triton's queue delay only)",
    )

    max_body_bytes: int = Field(32 * 2**20, ge=1024, description="largest request body (413 above)")
    max_image_pixels: int = Field(40_000_000, ge=1, description="largest decoded image, width x height (413 above)")
    max_images: int = Field(64, ge=1, description="images in one /predict request")
    api_key: SecretStr | None = Field(None, description="when set, required as 'Authorization: Bearer' or 'X-API-Key'")
    poll_interval_s: float = Field(5.0, ge=0, description="seconds between repository scans (0: load once, no polling)")

    # The views (feature maps, filters, occlusion): service/visualize.
    max_view_layers: int = Field(64, ge=1, description="layers one /activations request may ask for (422 above)")
    max_view_channels: int = Field(
        64, ge=1, description="channel images per layer in /activations, filters in /filters (422 above)"
    )
    max_view_bytes: int = Field(
        8 * 2**20,
        ge=4096,
        description="image bytes in one view's answer; past it, images are left out (and it says so)",
    )
    max_occlusion_copies: int = Field(
        1024, ge=1, description="occluded copies one /occlusion request may run (422 above)"
    )
    view_sessions: int = Field(
        4, ge=1, description="ONNX Runtime sessions kept for /activations, one per model version (least recent dropped)"
    )

    @field_validator("providers", mode="before")
    @classmethod
    def _providers(cls, value: object) -> object:
        value = _split(value)
        if isinstance(value, list):
            value = [PROVIDER_ALIASES.get(str(v).lower(), v) for v in value]
            if not value:
                raise ValueError("name at least one execution provider, e.g. 'cuda,cpu'")
        return value

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, value: object) -> object:
        value = _split(value)
        if isinstance(value, list) and not value:
            raise ValueError("name at least one precision among fp32, int8, fp16")
        return value

    @field_validator("api_key", "default_model", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
