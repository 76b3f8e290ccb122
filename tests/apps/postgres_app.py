"""A FastAPI service on PostgreSQL through both drivers the ``postgres`` extra instruments, and SQLAlchemy's pools
over each.

``PG_DSN`` names the database. Nothing here mentions OpenTelemetry: the spans and metrics come from
``opentelemetry-instrument`` with the distro.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import psycopg
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

DSN = os.environ["PG_DSN"]
# A literal secret and e-mail in the statement text: what the redaction must catch on the way out.
CLOSE_ACCOUNT = "UPDATE accounts SET password = 'hunter2' WHERE email = 'alice@example.com'"

pool = create_engine(DSN.replace("postgresql://", "postgresql+psycopg://"), pool_size=2, max_overflow=0)
async_pool = create_async_engine(DSN.replace("postgresql://", "postgresql+asyncpg://"), pool_size=2, max_overflow=0)


@asynccontextmanager
async def create_tables(_app: FastAPI) -> AsyncIterator[None]:
    with psycopg.connect(DSN, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, email text, password text)")
        connection.execute("INSERT INTO accounts VALUES (1, 'alice@example.com', 'x') ON CONFLICT DO NOTHING")
    yield


app = FastAPI(lifespan=create_tables)


@app.get("/psycopg/accounts/{account_id}")
def with_psycopg(account_id: int) -> dict:
    with psycopg.connect(DSN, autocommit=True) as connection:
        row = connection.execute("SELECT email FROM accounts WHERE id = %s", (account_id,)).fetchone()
        connection.execute(CLOSE_ACCOUNT)
    return {"email": row[0] if row else None}


@app.get("/asyncpg/accounts/{account_id}")
async def with_asyncpg(account_id: int) -> dict:
    connection = await asyncpg.connect(DSN)
    try:
        email = await connection.fetchval("SELECT email FROM accounts WHERE id = $1", account_id)
    finally:
        await connection.close()
    return {"email": email}


@app.get("/pool/accounts")
def with_pool() -> dict:
    with pool.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM accounts")).scalar_one()
    return {"count": count}


@app.get("/async-pool/accounts")
async def with_async_pool() -> dict:
    async with async_pool.connect() as connection:
        newest = (await connection.execute(text("SELECT max(id) FROM accounts"))).scalar_one()
    return {"newest": newest}
