#!/usr/bin/python
# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_check
short_description: Check from a managed host that the college's mail servers are reachable, secure and usable
version_added: 0.1.0
author:
  - Middlebury College ITS (@middlebury)
description:
  - Connects from the managed host to each mail endpoint and checks it the way a correctly configured mail client
    would, then judges what the server offers. By default the endpoints are the four of the college documentation
    (IMAP implicit TLS, IMAP STARTTLS, POP3 implicit TLS, SMTP STARTTLS), taken from the collection's settings model.
  - Per endpoint, each step is timed in milliseconds - a DNS lookup with a time bound, TCP connect, TLS
    (implicit, or STARTTLS/STLS), greeting, capabilities before and after TLS, and an optional login.
  - The certificate must be trusted (system store, or only O(ca_path)) and valid for the configured server name;
    days until expiry of the certificate (and of the rest of the chain where this Python can tell) are compared
    with O(days_warning) and O(days_critical). Negotiated TLS version and cipher are reported.
  - These findings fail an endpoint - STARTTLS/STLS not offered; any way to log in offered before TLS (IMAP without
    C(LOGINDISABLED) or with C(AUTH=), POP3 C(USER) or C(SASL), SMTP C(AUTH)); no normal-password mechanism
    (PLAIN or LOGIN) after TLS, for example an NTLM-only server; bytes sent after the STARTTLS reply.
  - Credentials, when given, are sent only inside a TLS session whose certificate and name verified. A rejected
    password is reported as class C(auth), apart from connectivity problems.
  - All endpoints are checked concurrently under one overall O(deadline). The module never changes anything.
options:
  endpoints:
    description:
      - Endpoints to check instead of the documented ones.
      - Mutually exclusive with O(account).
    type: list
    elements: dict
    suboptions:
      name:
        description: Label in the results. Defaults to C(<protocol>_<security>_<port>). Names must be unique.
        type: str
      protocol:
        description: Mail protocol spoken on the port.
        type: str
        choices: [imap, pop3, smtp]
        required: true
      host:
        description: Server name, used for DNS, SNI and certificate name verification.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        required: true
      security:
        description: V(ssl) is implicit TLS from the first byte, V(starttls) upgrades a plaintext connection
          (STLS for POP3). Plaintext is never checked.
        type: str
        choices: [ssl, starttls]
        required: true
  account:
    description:
      - An account description with the keys of the collection's C(mail_clients_account) variable (all optional,
        documented values otherwise). It is validated like the roles validate it.
      - With O(endpoint_set=documented) the four documented endpoints are checked on the account's servers, with
        O(endpoint_set=account) only the two endpoints a client configured from this account uses.
    type: dict
  endpoint_set:
    description: Which endpoints O(account) stands for; see O(account).
    type: str
    choices: [documented, account]
    default: documented
  only:
    description: Check only the endpoints with these names (for example V(smtp_starttls)).
    type: list
    elements: str
  connect_to:
    description:
      - Like curl C(--resolve). Keys are C(name:port) or C(name) (any port), values an IP address or another host
        name. The TCP connection goes to that address, while SNI and certificate verification still use the
        endpoint's name. Use it to check one node behind a load balancer, or a stand-in server.
    type: dict
  ip_version:
    description:
      - V(any) tries the resolved addresses in resolver order and reports the first that connects.
      - V(4) or V(6) use only that family. V(both) checks each endpoint once per family and returns one result
        for each, so a broken IPv6 path is not hidden by a working IPv4 one.
    type: str
    choices: [any, '4', '6', both]
    default: any
  ca_path:
    description: CA certificate file (PEM) or directory (c_rehash layout) to trust instead of the system store.
    type: path
  min_tls_version:
    description: Oldest TLS version accepted.
    type: str
    choices: [TLSv1.2, TLSv1.3]
    default: TLSv1.2
  x509_strict:
    description: Apply strict RFC 5280 certificate checks (the default of Python 3.13 and later). Off by default so
      that every Python of the fleet gives the same verdict.
    type: bool
    default: false
  timeout:
    description:
      - Seconds each network step (DNS, connect, handshake, each reply) may take.
      - The reply to a login is awaited at least 18 seconds (within O(deadline)), since servers answer a wrong
        password late on purpose (Dovecot doubles its delay per failure from one address, up to 15 seconds).
    type: float
    default: 5
  deadline:
    description: Seconds the whole check may take, all endpoints together. An endpoint still running then fails
      with class C(timeout).
    type: float
    default: 20
  days_warning:
    description: Fewer days than this until a certificate expires is a warning.
    type: int
    default: 30
  days_critical:
    description: Fewer days than this until a certificate expires fails the endpoint.
    type: int
    default: 7
  username:
    description: Log in with this username on every endpoint. Requires O(password).
    type: str
  password:
    description: Password for O(username). Sent only over verified TLS.
    type: str
  auth:
    description:
      - V(password) checks the normal-password login (O(auth_mechanisms) must be offered after TLS).
      - V(oauth2) requires XOAUTH2 or OAUTHBEARER after TLS (finding C(no_oauth_mechanism)), and logs in with a token
        when O(access_token) or O(token_command) is given.
      - Default the auth of O(account) (a provider preset implies V(oauth2)), else V(password).
    type: str
    choices: [password, oauth2]
  access_token:
    description:
      - An OAuth2 access token for O(username), for an opt-in token login with O(auth=oauth2). Sent only over
        verified TLS, as XOAUTH2 (or OAUTHBEARER when only that is offered), then proven by a second command (Exchange
        Online can report success for a username that does not match the token). Never logged.
    type: str
  token_command:
    description:
      - A command run on the managed host (C(/bin/sh -c), at most 30 seconds) whose first line of output is the access
        token, instead of O(access_token), for example a client's own token helper.
    type: str
  token_command_user:
    description: Run O(token_command) as this user (the module must run as root to switch), for a token kept in that
      user's home.
    type: str
  auth_mechanisms:
    description:
      - Normal-password mechanisms that count, in order of preference. At least one must be offered after TLS.
      - The IMAP C(LOGIN) command and POP3 C(USER)/C(PASS) count as V(LOGIN), as they do for mail clients.
    type: list
    elements: str
    choices: [PLAIN, LOGIN]
    default: [PLAIN, LOGIN]
  ehlo_name:
    description: Name sent in SMTP C(EHLO). Defaults to the address literal of the local socket, which needs no DNS.
    type: str
  report_only:
    description: Never fail the task; only report. Use it to collect results from every host for a report.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same checks in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show.
notes:
  - Runs on the managed host with the Python standard library. When C(cryptography) is installed it is used to
    describe certificates that failed verification if the standard library cannot.
  - Error classes are C(dns), C(refused), C(timeout), C(unreachable), C(network), C(tls_verify), C(tls_protocol),
    C(protocol), C(policy), C(cert_expiry) and C(auth).
seealso:
  - name: RFC 8314 (implicit TLS for mail)
    description: Why implicit TLS ports are preferred and what a client must verify.
    link: https://www.rfc-editor.org/rfc/rfc8314
  - name: RFC 7817 (certificate name checks for mail)
    description: Which name a mail client verifies in the server certificate.
    link: https://www.rfc-editor.org/rfc/rfc7817
"""

EXAMPLES = r"""
- name: Check the documented mail servers from every lab machine
  middlebury.mail_clients.mail_check:

- name: Check with a test login, trusting only the college CA
  middlebury.mail_clients.mail_check:
    ca_path: /etc/ssl/certs/middlebury-ca.pem
    username: "{{ mail_check_username }}"
    password: "{{ mail_check_password }}"

- name: Check one node of the IMAP cluster while verifying the public name
  middlebury.mail_clients.mail_check:
    only: [imaps, imap_starttls]
    connect_to:
      mail.middlebury.edu: 10.1.2.3

- name: Report IPv4 and IPv6 separately, never fail, and collect the results
  middlebury.mail_clients.mail_check:
    ip_version: both
    report_only: true
  register: mail_check

- name: Check a custom endpoint list
  middlebury.mail_clients.mail_check:
    endpoints:
      - name: submission
        protocol: smtp
        host: smtp.example.org
        port: 587
        security: starttls
"""

RETURN = r"""
endpoints:
  description: One entry per endpoint (per address family with O(ip_version=both)), in the order checked.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Endpoint label.
      type: str
      sample: imap_starttls
    protocol:
      description: V(imap), V(pop3) or V(smtp).
      type: str
    host:
      description: Server name checked (DNS, SNI, certificate).
      type: str
    port:
      description: TCP port.
      type: int
    security:
      description: V(ssl) or V(starttls).
      type: str
    ip_version:
      description: The O(ip_version) this entry is for (V(4) or V(6) with O(ip_version=both)).
      type: str
    family:
      description: Address family actually used, V(4) or V(6).
      type: str
    address:
      description: IP address connected to.
      type: str
      sample: 192.0.2.10
    connect_to:
      description: The O(connect_to) target used for this endpoint, if any.
      type: str
    status:
      description: V(pass), V(warn) or V(fail).
      type: str
    error_class:
      description: Class of the first failing finding, or null.
      type: str
      sample: tls_verify
    message:
      description: Plain-language verdict a helpdesk can act on.
      type: str
    findings:
      description: Everything noticed, each with C(code), C(severity) (V(fail), V(warn), V(info)), C(class)
        and C(message).
      type: list
      elements: dict
      sample:
        - code: auth_before_tls
          severity: fail
          class: policy
          message: The server offers to log in before TLS (AUTH PLAIN).
    failed_phase:
      description: Step that failed (V(dns), V(tcp), V(greeting), V(capabilities), V(starttls), V(tls),
        V(capabilities_tls), V(auth)).
      type: str
      returned: when a step raised an error
    reachable:
      description: Whether a TCP connection was made.
      type: bool
    tls_ok:
      description: Whether a verified TLS session was established.
      type: bool
    timings_ms:
      description: Milliseconds per step, plus C(total).
      type: dict
      sample: {dns: 0.4, tcp: 1.2, greeting: 3.1, capabilities: 0.8, starttls: 0.9, tls: 12.5,
               capabilities_tls: 1.0, auth: 8.2, total: 29.7}
    connect_attempts:
      description: Each address tried, with C(ms) and C(error) (null on success).
      type: list
      elements: dict
    tls:
      description: C(version), C(cipher), C(bits) and C(verified); on a verification failure C(verify_code) and
        C(verify_message) from OpenSSL.
      type: dict
    certificate:
      description:
        - The server certificate - C(subject_cn), C(issuer_cn), C(sans), C(serial), C(not_before), C(not_after),
          C(days_left), C(sha256), C(chain_checked), and where known C(chain) and C(chain_min_days_left). After a
          verification failure it describes what was presented, with C(verified=false).
        - C(chain_checked=false) means only the server's own certificate was checked for expiry, not the rest of
          the chain (Python 3.9 on the managed host cannot show the verified chain).
      type: dict
    greeting:
      description: First server line (after TLS for implicit TLS).
      type: str
    capabilities:
      description: C(before_tls) and C(after_tls) capability lists (IMAP CAPABILITY, POP3 CAPA, SMTP EHLO).
      type: dict
    auth:
      description: C(offered) mechanisms after TLS, C(attempted), C(success), C(mechanism) and the server's C(reply).
      type: dict
    transcript:
      description: The dialogue, with credentials replaced by C(<credentials hidden>).
      type: list
      elements: str
summary:
  description: Counts and overall verdict.
  returned: always
  type: dict
  contains:
    status:
      description: V(pass), V(warn) or V(fail) - the worst endpoint status.
      type: str
    total:
      description: Number of results.
      type: int
    passed:
      description: Results with status V(pass).
      type: int
    warned:
      description: Results with status V(warn).
      type: int
    failed:
      description: Results with status V(fail).
      type: int
    failed_endpoints:
      description: Names of failed endpoints.
      type: list
      elements: str
    warned_endpoints:
      description: Names of endpoints with warnings.
      type: list
      elements: str
    error_classes:
      description: Distinct error classes of the failed endpoints.
      type: list
      elements: str
    min_days_left:
      description: Fewest days until a verified certificate expires.
      type: float
    wall_ms:
      description: Wall-clock milliseconds for all endpoints together.
      type: float
    slowest_ms:
      description: Total of the slowest single endpoint.
      type: float
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import runner

ENDPOINT_SPEC = {
    "name": {"type": "str"},
    "protocol": {"type": "str", "required": True, "choices": ["imap", "pop3", "smtp"]},
    "host": {"type": "str", "required": True},
    "port": {"type": "int", "required": True},
    "security": {"type": "str", "required": True, "choices": ["ssl", "starttls"]},
}

ARGUMENT_SPEC = {
    "endpoints": {"type": "list", "elements": "dict", "options": ENDPOINT_SPEC},
    "account": {"type": "dict"},
    "endpoint_set": {"type": "str", "default": "documented", "choices": ["documented", "account"]},
    "only": {"type": "list", "elements": "str"},
    "connect_to": {"type": "dict"},
    "ip_version": {"type": "str", "default": "any", "choices": ["any", "4", "6", "both"]},
    "ca_path": {"type": "path"},
    "min_tls_version": {"type": "str", "default": "TLSv1.2", "choices": ["TLSv1.2", "TLSv1.3"]},
    "x509_strict": {"type": "bool", "default": False},
    "timeout": {"type": "float", "default": 5},
    "deadline": {"type": "float", "default": 20},
    "days_warning": {"type": "int", "default": 30},
    "days_critical": {"type": "int", "default": 7},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "auth": {"type": "str", "choices": ["password", "oauth2"]},
    "access_token": {"type": "str", "no_log": True},
    # A command and a login name, not secrets (the token they produce is hidden from the output).
    "token_command": {"type": "str", "no_log": False},
    "token_command_user": {"type": "str", "no_log": False},
    "auth_mechanisms": {"type": "list", "elements": "str", "default": ["PLAIN", "LOGIN"],
                        "choices": ["PLAIN", "LOGIN"]},
    "ehlo_name": {"type": "str"},
    "report_only": {"type": "bool", "default": False},
}


TOKEN_COMMAND_TIMEOUT = 30


def _token_from_command(module):
    """The first line token_command prints, run as token_command_user when given. The token is never logged."""
    params = module.params
    argv = ["timeout", str(TOKEN_COMMAND_TIMEOUT), "/bin/sh", "-c", params["token_command"]]
    user = params["token_command_user"]
    if user:
        if os.geteuid() != 0:
            module.fail_json(msg="token_command_user needs the module to run as root (become: true)")
        argv = ["runuser", "-u", user, "--", *argv]
    rc, out, err = module.run_command(argv)
    lines = out.strip().splitlines()
    if rc != 0 or not lines:
        module.fail_json(msg="token_command failed (rc=%d) and printed no token: %s" % (rc, err.strip()[:300]))
    token = lines[0].strip()
    module.no_log_values.add(token)
    return token


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[("endpoints", "account"), ("password", "access_token"),
                                               ("password", "token_command"), ("access_token", "token_command")],
                           required_by={"password": "username", "access_token": "username",
                                        "token_command": "username", "token_command_user": "token_command"})
    params = module.params
    if params["timeout"] <= 0 or params["deadline"] <= 0:
        module.fail_json(msg="timeout and deadline must be positive")
    if params["ca_path"] and not os.path.exists(params["ca_path"]):
        module.fail_json(msg="ca_path %s does not exist on this host" % params["ca_path"])
    try:
        params["auth"] = params["auth"] or (account_model.normalize_account(params["account"])["auth"]
                                            if params["account"] is not None else "password")
        params["token"] = params["access_token"] or (_token_from_command(module) if params["token_command"] else None)
        if params["token"] is not None and params["auth"] != "oauth2":
            module.fail_json(msg="access_token and token_command need auth: oauth2")
        endpoints = runner.select_endpoints(account_model, params["endpoints"], params["account"],
                                            params["endpoint_set"], params["only"])
        results, summary = runner.run_checks(endpoints, params)
    except (ValueError, account_model.AccountError) as exc:
        module.fail_json(msg=str(exc))
    msg = "%d of %d mail endpoint checks failed: %s" % (summary["failed"], summary["total"], "; ".join(
        "%s: %s" % (r["name"], r["message"]) for r in results if r["status"] == "fail")) if summary["failed"] \
        else "all %d mail endpoint checks passed%s" % (
            summary["total"], " (%d with warnings)" % summary["warned"] if summary["warned"] else "")
    if summary["failed"] and not params["report_only"]:
        module.fail_json(msg=msg, endpoints=results, summary=summary, changed=False)
    module.exit_json(msg=msg, endpoints=results, summary=summary, changed=False)


if __name__ == "__main__":
    main()
