"""A service whose endpoints each do about 5 ms of work: for bench/bench_latency.py.

GET /sleep awaits asyncio.sleep(0.005) (I/O-like work: the event loop is free);
GET /busy spins the CPU for 5 ms (CPU-bound work in the handler).
"""

import asyncio
import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/sleep/{n}")
async def sleep(n: int) -> dict:
    await asyncio.sleep(0.005)
    return {"n": n}


@app.get("/busy/{n}")
async def busy(n: int) -> dict:
    end = time.perf_counter() + 0.005
    while time.perf_counter() < end:
        pass
    return {"n": n}
