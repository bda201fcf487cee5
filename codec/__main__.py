"""`python -m codec`: the codec server on CODEC_HOST:CODEC_PORT (default 127.0.0.1:8081)."""

from __future__ import annotations

import sys


def main() -> int:
    import uvicorn

    from codec.server import create_codec_app
    from settings import get_settings
    from workflows.codec import MissingKey

    s = get_settings()
    try:
        app = create_codec_app(s)
    except MissingKey as err:
        print(f"paysaga codec server: {err}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=s.codec_host, port=s.codec_port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
