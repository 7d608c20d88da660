"""The agency registry: each partner agency's key, name, email domains and (on their own Microsoft 365)
tenant ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime


class Agency(SQLModel, table=True):
    """A partner agency; `key` is what people type (`--share social-care`)."""

    __tablename__ = "agency"

    key: str = Field(sa_column=Column(String(32), primary_key=True))
    name: str = Field(sa_column=Column(String(120), nullable=False))
    created_by: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class AgencyDomain(SQLModel, table=True):
    """An email domain of an agency's people."""

    __tablename__ = "agency_domain"

    agency: str = Field(sa_column=Column(String(32), ForeignKey("agency.key"), primary_key=True))
    domain: str = Field(sa_column=Column(String(255), primary_key=True))


class AgencyTenant(SQLModel, table=True):
    """An Entra tenant of an agency on its own Microsoft 365."""

    __tablename__ = "agency_tenant"

    agency: str = Field(sa_column=Column(String(32), ForeignKey("agency.key"), primary_key=True))
    tenant_id: str = Field(sa_column=Column(String(64), primary_key=True))
