"""Every rule of the settings model, each with a bad value whose message must name the field."""

from __future__ import annotations

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model as model
from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
    AccountError,
    documented_endpoints,
    normalize_account,
)


def test_defaults_are_the_documented_settings():
    account = normalize_account()
    assert account["incoming"] == {"protocol": "imap", "host": "mail.middlebury.edu", "port": 993, "security": "ssl"}
    assert account["smtp"] == {"host": "ssmtp.middlebury.edu", "port": 25, "security": "starttls"}
    assert account["auth"] == "password"
    assert account["save_password"] is False
    assert account["pop_leave_on_server"] is True
    assert account["imap_subscriptions"] is True
    assert account["mail_domain"] == "middlebury.edu"
    assert account["lab_mode"] is True
    assert account["users"] == []


@pytest.mark.parametrize(("given", "port"), [
    ({"protocol": "imap", "incoming_security": "starttls"}, 143),
    ({"protocol": "pop3"}, 995),
    ({"protocol": "pop3", "incoming_security": "starttls"}, 110),
    ({"incoming_port": 10993}, 10993),
    ({"incoming_port": "1993"}, 1993),
])
def test_incoming_port_derived_from_protocol_and_security(given, port):
    assert normalize_account(given)["incoming"]["port"] == port


def test_smtp_port_derived():
    assert normalize_account({"smtp_security": "ssl"})["smtp"]["port"] == 465
    assert normalize_account({"smtp_port": 587})["smtp"]["port"] == 587


def test_security_aliases():
    assert normalize_account({"incoming_security": "TLS"})["incoming"]["security"] == "ssl"
    assert normalize_account({"auth": "normal"})["auth"] == "password"


def test_display_name_follows_the_account():
    assert normalize_account({})["display_name"] == "Middlebury College"
    assert normalize_account({"mail_domain": "example.edu"})["display_name"] == "example.edu"
    assert normalize_account({"mail_domain": "example.edu", "display_name": "Physics"})["display_name"] == "Physics"


def test_folder_names_with_dots_inside_are_kept():
    folders = normalize_account({"folders": {"sent": "Sent.2026", "trash": "...Trash", "drafts": "a.b/c",
                                             "junk": "Junk Email"}})["folders"]
    assert folders == {"sent": "Sent.2026", "trash": "...Trash", "drafts": "a.b/c", "junk": "Junk Email"}
    assert normalize_account({})["folders"]["junk"] == "Junk"


def test_documented_endpoints():
    names = [(e["name"], e["host"], e["port"], e["security"]) for e in documented_endpoints()]
    assert names == [
        ("imaps", "mail.middlebury.edu", 993, "ssl"),
        ("imap_starttls", "mail.middlebury.edu", 143, "starttls"),
        ("pop3s", "mail.middlebury.edu", 995, "ssl"),
        ("smtp_starttls", "ssmtp.middlebury.edu", 25, "starttls"),
    ]
    other = normalize_account({"incoming_host": "imap.example.org", "smtp_host": "smtp.example.org"})
    assert {e["host"] for e in documented_endpoints(other)} == {"imap.example.org", "smtp.example.org"}


def test_account_endpoints_follow_the_account():
    account = normalize_account({"protocol": "pop3"})
    assert [(e["protocol"], e["port"]) for e in model.account_endpoints(account)] == [("pop3", 995), ("smtp", 25)]


def test_users_derive_username_and_email():
    account = normalize_account({}, [
        {"login": "alice"},
        {"login": "bob", "username": "rsmith", "full_name": "Bob O'Brien"},
        {"login": "carol", "email": "carol.x@middlebury.edu"},
        {"login": "dave", "username": "dave@example.org"},
    ])
    assert account["lab_mode"] is False
    assert account["users"][0] == {"login": "alice", "username": "alice", "email": "alice@middlebury.edu",
                                   "full_name": ""}
    assert account["users"][1]["email"] == "rsmith@middlebury.edu"
    assert account["users"][1]["full_name"] == "Bob O'Brien"
    assert account["users"][2]["email"] == "carol.x@middlebury.edu"
    assert account["users"][3]["email"] == "dave@example.org"


@pytest.mark.parametrize("name", ["O'Brien", 'Zoë "Z" Ångström', "`id`", "$(id)", "a;b", "back\\slash", "李 小龍"])
def test_hostile_but_printable_names_are_kept_byte_exact(name):
    account = normalize_account({"display_name": name}, [{"login": "u1", "full_name": name}])
    assert account["users"][0]["full_name"] == name
    assert account["display_name"] == name


# (account, users, field named in the message, a word the message must contain)
BAD = [
    ({"protocol": "smtp"}, None, "mail_clients_account.protocol", "imap, pop3"),
    ({"incoming_security": "none"}, None, "mail_clients_account.incoming_security", "plaintext"),
    ({"smtp_security": "plain"}, None, "mail_clients_account.smtp_security", "plaintext"),
    ({"incoming_security": "ssl3"}, None, "mail_clients_account.incoming_security", "ssl, starttls"),
    ({"incoming_port": 0}, None, "mail_clients_account.incoming_port", "1-65535"),
    ({"incoming_port": 70000}, None, "mail_clients_account.incoming_port", "1-65535"),
    ({"smtp_port": "25x"}, None, "mail_clients_account.smtp_port", "1-65535"),
    ({"smtp_port": True}, None, "mail_clients_account.smtp_port", "boolean"),
    ({"incoming_host": "mail server"}, None, "mail_clients_account.incoming_host", "valid host name"),
    ({"incoming_host": "-bad.example"}, None, "mail_clients_account.incoming_host", "valid host name"),
    ({"smtp_host": "a" * 64 + ".example"}, None, "mail_clients_account.smtp_host", "valid host name"),
    ({"smtp_host": "300.1.1.1"}, None, "mail_clients_account.smtp_host", "IPv4"),
    ({"smtp_host": ""}, None, "mail_clients_account.smtp_host", "non-empty"),
    ({"mail_domain": "exa mple.org"}, None, "mail_clients_account.mail_domain", "valid host name"),
    ({"auth": "ntlm"}, None, "mail_clients_account.auth", "secure password authentication"),
    ({"auth": "SPA"}, None, "mail_clients_account.auth", "never"),
    ({"auth": "kerberos"}, None, "mail_clients_account.auth", "normal password"),
    ({"auth": "magic"}, None, "mail_clients_account.auth", "password, oauth2"),
    ({"save_password": "yes"}, None, "mail_clients_account.save_password", "true or false"),
    ({"protocol": "pop3", "pop_leave_on_server": False}, None, "mail_clients_account.pop_leave_on_server",
     "leave mail on the server"),
    ({"imap_subscriptions": 1}, None, "mail_clients_account.imap_subscriptions", "true or false"),
    ({"display_name": "a\nb"}, None, "mail_clients_account.display_name", "control"),
    ({"display_name": ""}, None, "mail_clients_account.display_name", "empty"),
    ({"folders": {"sent": "Sent*"}}, None, "mail_clients_account.folders.sent", "folder name"),
    ({"folders": {"trash": "Tr\x00ash"}}, None, "mail_clients_account.folders.trash", "control"),
    ({"folders": {"spam": "Spam"}}, None, "mail_clients_account.folders", "unknown key"),
    ({"folders": {"sent": "../../etc"}}, None, "mail_clients_account.folders.sent", "'..' segment"),
    ({"folders": {"drafts": "Work/./Drafts"}}, None, "mail_clients_account.folders.drafts", "'..' segment"),
    ({"folders": {"trash": ".."}}, None, "mail_clients_account.folders.trash", "'..' segment"),
    ({"folders": {"junk": "Junk\nEmail"}}, None, "mail_clients_account.folders.junk", "control"),
    ({"folders": {"sent": "a//b"}}, None, "mail_clients_account.folders.sent", "'//'"),
    ({"folders": ["Sent"]}, None, "mail_clients_account.folders", "mapping"),
    ({"provider": "office365"}, None, "mail_clients_account.provider", "must be one of"),
    ({"oauth2": {"client_id": "x"}}, None, "mail_clients_account.oauth2.client_id", "only with auth: oauth2"),
    ({"auth": "oauth2", "oauth2": {"secret": "x"}}, None, "mail_clients_account.oauth2", "unknown key"),
    ({"auth": "oauth2", "oauth2": {"client_id": "a b"}}, None, "mail_clients_account.oauth2.client_id", "client id"),
    ({"auth": "oauth2", "oauth2": {"tenant": "x"}}, None, "mail_clients_account.oauth2.tenant", "only Microsoft"),
    ({"provider": "microsoft365", "oauth2": {"tenant": "a/b"}}, None, "mail_clients_account.oauth2.tenant",
     "not a tenant"),
    ({"auth": "oauth2", "oauth2": {"token_endpoint": "http://idp.example.edu/token"}}, None,
     "mail_clients_account.oauth2.token_endpoint", "https://"),
    ({"auth": "oauth2", "oauth2": {"authorization_endpoint": "https://u:p@idp.example.edu/a"}}, None,
     "mail_clients_account.oauth2.authorization_endpoint", "credentials"),
    ({"auth": "oauth2", "oauth2": {"device_authorization_endpoint": "https://idp.example.edu/a'b"}}, None,
     "mail_clients_account.oauth2.device_authorization_endpoint", "https://"),
    ({"auth": "oauth2", "oauth2": {"scopes": ["ok", 'bad"quote']}}, None, "mail_clients_account.oauth2.scopes",
     "scopes"),
    ({"imap_server": "x"}, None, "mail_clients_account", "unknown key"),
    ("imap", None, "mail_clients_account", "mapping"),
    ({}, "alice", "mail_clients_users", "list"),
    ({}, [{"username": "x"}], "mail_clients_users[0].login", "required"),
    ({}, ["alice"], "mail_clients_users[0]", "mapping"),
    ({}, [{"login": "-rf"}], "mail_clients_users[0].login", "valid login"),
    ({}, [{"login": "a b"}], "mail_clients_users[0].login", "valid login"),
    ({}, [{"login": "ok", "username": "x:y"}], "mail_clients_users[0].username", "mail username"),
    ({}, [{"login": "ok", "email": "no-at-sign"}], "mail_clients_users[0].email", "local@domain"),
    ({}, [{"login": "ok", "email": "a b@x.org"}], "mail_clients_users[0].email", "local part"),
    ({}, [{"login": "ok", "email": "a@x y.org"}], "mail_clients_users[0].email", "valid host name"),
    ({}, [{"login": "ok", "full_name": "Eve\rEvil"}], "mail_clients_users[0].full_name", "control"),
    ({}, [{"login": "ok", "full_name": "Eve\u202eEvil"}], "mail_clients_users[0].full_name", "control"),
    ({}, [{"login": "ok", "full_name": " Eve"}], "mail_clients_users[0].full_name", "white space"),
    ({}, [{"login": "ok", "full_name": "x" * 300}], "mail_clients_users[0].full_name", "longer"),
    ({}, [{"login": "ok", "full_name": 5}], "mail_clients_users[0].full_name", "string"),
    ({}, [{"login": "ok", "shell": "/bin/sh"}], "mail_clients_users[0]", "unknown key"),
    ({}, [{"login": "ok"}, {"login": "ok"}], "mail_clients_users[1].login", "twice"),
]


@pytest.mark.parametrize(("account", "users", "field", "word"), BAD)
def test_bad_values_are_refused_naming_the_field(account, users, field, word):
    with pytest.raises(AccountError) as info:
        normalize_account(account, users)
    assert info.value.field == field
    assert str(info.value).startswith(field + ": ")
    assert word in str(info.value)


def test_every_key_has_a_refusal_tested():
    account_keys = {key for account, _users, _field, _word in BAD if isinstance(account, dict) for key in account}
    user_keys = {key for _account, users, _field, _word in BAD if isinstance(users, list)
                 for item in users if isinstance(item, dict) for key in item}
    assert set(model.ACCOUNT_KEYS) <= account_keys
    assert set(model.USER_KEYS) <= user_keys
