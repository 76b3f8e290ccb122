"""The smallest FastAPI service, for servers that run it in several worker processes."""

import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/work")
async def work() -> dict:
    return {"pid": os.getpid()}
