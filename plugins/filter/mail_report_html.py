# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report (mail_report's result) as one HTML page, every value escaped."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mail_report_html
version_added: 0.1.0
short_description: The fleet report as one self-contained HTML page, every value escaped
description:
  - Renders a P(middlebury.mail_clients.mail_report#filter) result with the text of a Jinja template
    (C(playbooks/templates/mail_report.html.j2) in this collection), with HTML autoescaping on for the whole
    page and in Jinja's sandbox.
  - Use it instead of M(ansible.builtin.template), which ignores C({% autoescape %}); server greetings,
    capabilities, certificate subjects and host names then reach the page as text, never as markup.
options:
  _input:
    description: The result of P(middlebury.mail_clients.mail_report#filter).
    type: dict
    required: true
  template:
    description: The template's text, for example C(lookup('ansible.builtin.file', 'templates/mail_report.html.j2')).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Write the HTML report
  ansible.builtin.copy:
    content: "{{ report | middlebury.mail_clients.mail_report_html(page) }}"
  vars:
    page: "{{ lookup('ansible.builtin.file', 'mail_report.html.j2') }}"
    dest: /tmp/mail_check.html
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The HTML page.
  type: str
"""

import jinja2
import jinja2.sandbox
from ansible.errors import AnsibleFilterError


def mail_report_html(report, template):
    """The report as an HTML page, from the text of a Jinja template, with every value HTML-escaped.

    ansible.builtin.template ignores ``{% autoescape %}`` (ansible-core 2.19 and 2.21), and a server's
    greeting, a certificate subject or a host name would become markup. This renders with autoescape
    on for the whole page, in Jinja's sandbox, so escaping never depends on a template remembering it."""
    if not isinstance(report, dict) or "hosts" not in report:
        raise AnsibleFilterError("mail_report_html: the input must be a mail_report result")
    if not isinstance(template, str):
        raise AnsibleFilterError("mail_report_html: the template must be its text (lookup('file', ...))")
    env = jinja2.sandbox.SandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined,
                                              keep_trailing_newline=True)
    try:
        return env.from_string(template).render(report=report)
    except jinja2.TemplateError as exc:
        raise AnsibleFilterError("mail_report_html: the template failed: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"mail_report_html": mail_report_html}
