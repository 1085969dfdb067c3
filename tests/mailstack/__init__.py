"""Throwaway Dovecot + Postfix on loopback standing in for the documented mail servers (tests only)."""

from __future__ import annotations

from .stack import MailStack, MailStackError

__all__ = ["MailStack", "MailStackError"]
