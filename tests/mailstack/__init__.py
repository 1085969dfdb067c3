"""Throwaway Dovecot + Postfix on loopback standing in for the documented mail servers (tests only)."""

from __future__ import annotations

from .dovecot import LOGIN_LOGGED, NO_LOGIN_LOGGED
from .stack import MailStack, MailStackError

__all__ = ["LOGIN_LOGGED", "NO_LOGIN_LOGGED", "MailStack", "MailStackError"]
