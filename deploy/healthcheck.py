"""The images' HEALTHCHECK: exit 0 when the service on this machine reports ready, 1 otherwise.

Standard library only (the slim images have no curl). Asks the readiness endpoint of the
Open Inference Protocol, ``/v2/health/ready``, on ``CNNSERVE_PORT`` (default 8000), the port the
container's start command listens on. ``python healthcheck.py [URL]`` checks another address.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def ready_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('CNNSERVE_PORT', '8000')}/v2/health/ready"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else ready_url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:  # refused, timed out, reset: not (yet) serving
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
