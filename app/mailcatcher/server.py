"""An aiosmtpd server that stores each message it receives as an .eml file."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller


class FolderHandler:
    """Accepts every message and writes it to `folder/<time>-<uuid>.eml`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(envelope.original_content or envelope.content)
        os.replace(tmp, self.folder / name)
        return "250 Message accepted for delivery"


def serve(folder: str, host: str = "127.0.0.1", port: int = 8025) -> None:
    """Run until interrupted."""
    controller = Controller(FolderHandler(folder), hostname=host, port=port)
    controller.start()
    print(f"mail catcher: smtp://{host}:{port} → {folder}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
