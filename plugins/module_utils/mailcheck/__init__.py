# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_check engine: probe IMAP/POP3/SMTP endpoints over verified TLS, judge what they offer.

Split by domain: ``clock`` (deadlines, phase timings), ``resolve`` (bounded DNS, connect_to),
``connect`` (TCP), ``tls`` (contexts, certificate facts), ``wire`` (line I/O), ``imap``/``pop3``/
``smtp`` (dialogues), ``findings`` (classes and helpdesk messages), ``probe`` (one endpoint) and
``runner`` (all endpoints concurrently, summary). Standard library only; ``cryptography`` is used
when present to describe a certificate that failed verification.
"""
