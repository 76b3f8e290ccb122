"""The inventory's shared parts: a SQLAlchemy (sqlite) table of items and a Redis counter."""

from __future__ import annotations

import os

import redis
from sqlalchemy import Column, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Session


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    name = Column(String, nullable=False)
    price_cents = Column(Integer, nullable=False)


engine = create_engine(f"sqlite:///{os.environ.get('INVENTORY_DB', 'inventory.db')}")
cache = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


def seed() -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        if session.get(Item, 1) is None:
            session.add(Item(id=1, name="kettle", price_cents=2450))


def find(item_id: int) -> Item | None:
    with Session(engine) as session:
        return session.scalars(select(Item).where(Item.id == item_id)).first()


def count_view(item_id: int) -> int:
    return int(cache.incr(f"views:{item_id}"))
