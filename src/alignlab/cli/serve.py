"""``alignlab serve``: a model behind an OpenAI-compatible API."""

from __future__ import annotations

from alignlab.cli.common import batch_size_option, console, quiet_hf, target_option, user_errors


def serve(model: str = target_option("Model spec to serve."),
          host: str = "127.0.0.1", port: int = 8000,
          batch_size: int = batch_size_option()) -> None:
    """Serve a model over an OpenAI-compatible API (for other tools, or another alignlab)."""
    quiet_hf()
    from alignlab.models import load_model
    from alignlab.models.server import serve as serve_model

    with user_errors(RuntimeError, FileNotFoundError):
        m = load_model(model, batch_size=batch_size)
    handle = serve_model(m, host=host, port=port, model_name=model)
    console.print(f"serving {model} at {handle.url} (Ctrl-C to stop)")
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        handle.stop()
