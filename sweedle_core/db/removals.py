"""The record of asset files that must leave the store, so that none is orphaned for ever.

A deletion records its asset's prefix in the transaction that deletes the rows (the asset is gone
from the API at once); an upload records its prefix before the file is written, due a grace
period later, and the transaction that creates the asset's rows drops the record. A sweep claims
each due record whose asset does not exist, removes the files, and looks once more a while later
(a write that was under way when the asset went, an export say, lands after the first pass).
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sweedle_core.db.models import Asset, StorageRemoval, utcnow

SWEEP_BATCH = 200  # prefixes handled per sweep pass; the next pass takes the rest
# How long an upload may take from its file being stored to its rows being created; an upload
# whose rows do not exist by then was abandoned (its process died) and is removed.
UPLOAD_GRACE = timedelta(minutes=15)
# When the files of a removed prefix are looked for once more.
SECOND_PASS_AFTER = timedelta(minutes=10)
# A claim older than this was left by a sweeper that died: another may take the record.
CLAIM_EXPIRES = timedelta(minutes=10)


class Claim(NamedTuple):
    """A removal a sweeper holds: the prefix, and how often it was looked at before."""

    prefix: str
    passes: int


class UploadSwept(Exception):
    """The upload's record was claimed by a sweep before the asset's rows came: the file is
    being removed, and the rows must not be created (they would name a missing file)."""


async def record_removal(session: AsyncSession, prefix: str) -> None:
    """Within the caller's transaction: the files under ``prefix`` must go, from now."""
    await session.merge(StorageRemoval(prefix=prefix, not_before=utcnow(), claimed_at=None))


async def drop_upload_record(session: AsyncSession, prefix: str) -> None:
    """Within the caller's transaction: the upload under ``prefix`` is an asset's now. Raises
    `UploadSwept` when a sweep already claimed it."""
    result = await session.execute(
        delete(StorageRemoval).where(
            StorageRemoval.prefix == prefix,
            StorageRemoval.claimed_at.is_(None),  # never touched by a sweep
            StorageRemoval.passes == 0,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise UploadSwept(prefix)


class Removals:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    async def expect_upload(self, prefix: str, grace: timedelta = UPLOAD_GRACE) -> None:
        """An upload is about to be stored under ``prefix``: remove it after ``grace`` unless
        its asset's rows are created by then."""
        async with self.sessions.begin() as session:
            session.add(StorageRemoval(prefix=prefix, not_before=utcnow() + grace))

    async def claim_due(self) -> list[Claim]:
        """Claim the records whose files should go now (no asset row holds them)."""
        async with self.sessions.begin() as session:
            rows = await session.scalars(
                select(StorageRemoval.prefix)
                .where(*_claimable())
                .order_by(StorageRemoval.not_before)
                .limit(SWEEP_BATCH)
            )
            claims = [await _claim(session, prefix) for prefix in rows.all()]
        return [claim for claim in claims if claim is not None]

    async def claim(self, prefix: str) -> Claim | None:
        """Claim the record of ``prefix`` if it is due (an asset just deleted)."""
        async with self.sessions.begin() as session:
            return await _claim(session, prefix)

    async def removed(self, claim: Claim) -> None:
        """The files are gone: look once more later, or, after the second look, forget it."""
        async with self.sessions.begin() as session:
            if claim.passes:
                await session.execute(
                    delete(StorageRemoval).where(StorageRemoval.prefix == claim.prefix)
                )
            else:
                await session.execute(
                    update(StorageRemoval)
                    .where(StorageRemoval.prefix == claim.prefix)
                    .values(
                        passes=1,
                        claimed_at=utcnow() - CLAIM_EXPIRES,  # claimable, never "untouched"
                        not_before=utcnow() + SECOND_PASS_AFTER,
                    )
                )

    async def release(self, prefix: str) -> None:
        """The removal failed: the record waits for the next sweep (its claim is left expired,
        not cleared, so an upload a sweep touched can never become an asset)."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(StorageRemoval)
                .where(StorageRemoval.prefix == prefix)
                .values(claimed_at=utcnow() - CLAIM_EXPIRES)
            )

    async def pending(self) -> list[str]:
        """Every recorded prefix (for tests and the operator's eye)."""
        async with self.sessions() as session:
            return list((await session.scalars(select(StorageRemoval.prefix))).all())


def _claimable() -> tuple[ColumnElement[bool], ...]:
    now = utcnow()
    return (
        StorageRemoval.not_before <= now,
        or_(StorageRemoval.claimed_at.is_(None), StorageRemoval.claimed_at < now - CLAIM_EXPIRES),
        ~exists().where(Asset.id == StorageRemoval.prefix),
    )


async def _claim(session: AsyncSession, prefix: str) -> Claim | None:
    """One conditional update: of two sweepers, one gets the claim."""
    result = await session.execute(
        update(StorageRemoval)
        .where(StorageRemoval.prefix == prefix, *_claimable())
        .values(claimed_at=utcnow())
        .returning(StorageRemoval.passes)
    )
    passes = result.scalar_one_or_none()
    return None if passes is None else Claim(prefix, passes)
