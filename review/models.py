"""The review store's tables (SQLAlchemy 2, declarative).

One ``ReviewItem`` per flag (keyed by the flag's stable ``flag_id``); each
council involved in a flag keeps its own part of the review (assignee,
outcome, amount, note) in ``CouncilReview``. Notes, amounts and evidence are stored
sealed (``*_sealed``: AES-GCM envelopes under the hub's at-rest data keys, see
``review.store.sealing``); nothing else here is read from them. ``ReviewItem.version`` is bumped
by every investigator change, so a save based on a stale page is refused
instead of silently overwriting someone else's decision.

The audit trail is append-only and hash-chained: each ``AuditEntry`` stores the
hash of its predecessor; ``AuditHead`` is the single row writers lock so that
concurrent appends cannot fork the chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class ReviewItem(Base):
    """A flag as published by the nightly run, plus its overall review status."""

    __tablename__ = "review_items"

    flag_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    match_type: Mapped[str] = mapped_column(String(64), index=True)
    match_title: Mapped[str | None] = mapped_column(String(200))
    match_reason: Mapped[str | None] = mapped_column(Text)
    left_council: Mapped[str] = mapped_column(String(16))
    left_dataset: Mapped[str] = mapped_column(String(40))
    left_record_id: Mapped[str] = mapped_column(String(100))
    right_council: Mapped[str] = mapped_column(String(16))
    right_dataset: Mapped[str] = mapped_column(String(40))
    right_record_id: Mapped[str] = mapped_column(String(100))
    match_probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    #: the comparison levels and weights (JSON), sealed for this flag (review.store.sealing)
    evidence_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    evidence_hash: Mapped[str] = mapped_column(String(80))
    priority: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[str] = mapped_column(String(32))
    last_seen: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="new")
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: keyed digest of the published content (``<key_id>:<hmac>``): an unchanged flag is not rewritten
    content_hash: Mapped[str | None] = mapped_column(String(80))
    #: when a publish last inserted or changed this flag (never touched by an unchanged night)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the run that no longer raised this flag (None while the latest publish raises it)
    retracted_in: Mapped[str | None] = mapped_column(String(64))

    reviews: Mapped[list["CouncilReview"]] = relationship(
        back_populates="item", lazy="selectin", order_by="CouncilReview.council"
    )

    __table_args__ = (
        Index("ix_items_left_queue", "left_council", "priority", "flag_id"),
        Index("ix_items_right_queue", "right_council", "priority", "flag_id"),
        Index("ix_items_status", "status"),
        Index("ix_items_run", "run_id"),
    )

    @property
    def councils(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.left_council, self.right_council)))


class CouncilReview(Base):
    """One council's part of a review: who has it, and what they decided.

    Created at publish for every involved council, it is also that council's
    queue entry: it repeats the flag's sort and filter keys (priority,
    probability, match type, run, status, first seen) so a council's queue is one
    index range scan instead of an OR over both sides of every flag.
    """

    __tablename__ = "council_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flag_id: Mapped[str] = mapped_column(ForeignKey("review_items.flag_id", ondelete="CASCADE"))
    council: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(80))
    outcome: Mapped[str | None] = mapped_column(String(20))
    #: the amount and the note, sealed for this flag and council (review.store.sealing)
    amount_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Queue keys, copied from the flag (publish) and its status (every change).
    priority: Mapped[int | None] = mapped_column(Integer)
    match_probability: Mapped[float | None] = mapped_column(Float)
    match_type: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(16))

    item: Mapped[ReviewItem] = relationship(back_populates="reviews")

    __table_args__ = (
        UniqueConstraint("flag_id", "council", name="uq_council_review"),
        Index("ix_council_reviews_council", "council", "outcome"),
        Index("ix_queue", "council", "priority", match_probability.desc(), "flag_id", "status", "match_type",
              "run_id"),
        Index("ix_queue_runs", "council", "run_id", "match_type", "first_seen"),
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    council: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserSession(Base):
    """A signed-in session, server-side so it can be ended (sign-out, deactivation, password change).

    The cookie carries a random token; only its SHA-256 is stored, so a copy of the
    database does not yield usable sessions.
    """

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_user_sessions_user", "user_id"),)


class LoginFailure(Base):
    """Failed sign-ins, kept in the database so the limit holds across workers."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    object: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's tip (one row, id=1); locked by each append."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
