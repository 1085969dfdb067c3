"""What every client plan promises: absent removes exactly what present writes, and refusals name the field."""

from __future__ import annotations

import pytest
from plan_support import by_state, run_plan

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
    AccountError,
    normalize_account,
)
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import evolution, mutt

USERS = [{"login": "alice"}, {"login": "bob", "full_name": "Bob O'Brien"}]
STATE = {"mutt": "mutt_state", "thunderbird": "thunderbird_state", "evolution": "evolution_state"}
EVERYTHING = {"evolution_dconf_settings": {"org/gnome/evolution/mail": {"image-loading-policy": "'never'"}},
              "evolution_dconf_locks": ["/org/gnome/evolution/mail/image-loading-policy"]}


def _options(client, state):
    options = {STATE[client]: state}
    if client == "evolution":
        options.update(EVERYTHING)
    if client == "thunderbird":
        options["thunderbird_cleanup_profiles"] = False
    return options


@pytest.mark.parametrize("client", sorted(STATE))
@pytest.mark.parametrize("users", [[], USERS], ids=["lab", "users"])
def test_absent_removes_exactly_what_present_writes(client, users):
    present, _rendered = run_plan(client, _options(client, "present"), users=users)
    absent, rendered = run_plan(client, _options(client, "absent"), users=users)
    wrote = by_state(present)[0]
    kept, removed = by_state(absent)
    assert wrote and not kept and not rendered
    # The dconf profile may list other databases: written, never removed.
    assert wrote - removed <= {"/etc/dconf/profile/user"}, wrote - removed


@pytest.mark.parametrize("client", sorted(STATE))
def test_every_present_file_has_content_and_a_path_the_module_accepts(client):
    files, _rendered = run_plan(client, _options(client, "present"), users=USERS)
    for entry in files:
        assert entry["path"].startswith(("/", "~")), entry
        if entry["state"] == "present":
            assert entry["content"], entry


@pytest.mark.parametrize(("client", "options", "field"), [
    ("mutt", {"mutt_clients": ["elm"]}, "mutt_clients"),
    ("mutt", {"mutt_ca_file": "relative.pem"}, "mutt_ca_file"),
    ("mutt", {"mutt_state": "gone"}, "mutt_state"),
    ("thunderbird", {"thunderbird_ca_certificates": ["/ok.pem", "rel.pem"]}, "thunderbird_ca_certificates[1]"),
    ("thunderbird", {"thunderbird_tls_min": "ssl3"}, "thunderbird_tls_min"),
    ("evolution", {"evolution_uid_prefix": "local"}, "evolution_uid_prefix"),
    ("evolution", {"evolution_refresh_minutes": -1}, "evolution_refresh_minutes"),
    ("evolution", {"evolution_dconf_db": "a/b"}, "evolution_dconf_db"),
    ("evolution", {"evolution_dconf_settings": {"org/x": {"k": "two\nlines"}}},
     'evolution_dconf_settings["org/x"]["k"]'),
    ("evolution", {"evolution_dconf_locks": ["relative/key"]}, "evolution_dconf_locks[0]"),
])
def test_refusals_name_the_option(client, options, field):
    with pytest.raises(AccountError) as refused:
        run_plan(client, options)
    assert refused.value.field == field, str(refused.value)
    assert str(refused.value).startswith(field + ":")


def test_thunderbird_without_a_registration_for_the_identity_provider_is_refused():
    with pytest.raises(AccountError, match=r"^mail_clients_account\.oauth2\.client_id:"):
        run_plan("thunderbird", account={"auth": "oauth2"})
    files, _rendered = run_plan("thunderbird", account={"provider": "microsoft365"})
    assert files


def test_the_oauth2_refusals_name_the_field():
    # mutt has no registration of its own: our helper needs the organisation's app (or a helper of the site's).
    with pytest.raises(AccountError, match=r"^mail_clients_account\.oauth2\.client_id:"):
        run_plan("mutt", account={"auth": "oauth2"})
    with pytest.raises(AccountError, match=r"^mail_clients_account\.oauth2\.client_id:"):
        run_plan("mutt", account={"provider": "microsoft365"})
    with pytest.raises(AccountError, match=r"^mail_clients_account\.auth:"):
        run_plan("evolution", account={"auth": "oauth2"})


def test_a_client_secret_goes_with_a_client_id_and_reaches_every_client_that_sends_one():
    with pytest.raises(AccountError, match=r"^mail_clients_account\.oauth2\.client_secret:"):
        normalize_account({"provider": "google", "oauth2": {"client_secret": "s3"}})
    with pytest.raises(AccountError, match=r"^mail_clients_account\.oauth2\.client_secret:"):
        normalize_account({"provider": "google", "oauth2": {"client_id": "app", "client_secret": "two words"}})
    account = normalize_account({"provider": "google", "oauth2": {"client_id": "app", "client_secret": "s3"}})
    assert normalize_account({"provider": "google"})["oauth2"]["client_secret"] is None
    # Evolution: the registry's GSettings (GVariant strings); mutt: the helper's settings.
    assert evolution.dconf_settings({"evolution_dconf_settings": {}, "evolution_state": "present"}, account) == {
        "org/gnome/evolution-data-server": {"oauth2-google-client-id": "'app'",
                                            "oauth2-google-client-secret": "'s3'"}}
    assert mutt.helper_settings(account, {"mutt_ca_file": ""})["client_secret"] == "s3"
    without = normalize_account({"provider": "google", "oauth2": {"client_id": "app"}})
    assert "client_secret" not in mutt.helper_settings(without, {"mutt_ca_file": ""})
    # Thunderbird: the plan hands it to the provider extension's manifest (rendered by the integration tests).
    given = {"provider": "google", "oauth2": {"client_id": "app", "client_secret": "s3"}}
    _files, rendered = run_plan("thunderbird", account=given)
    assert {v["__thunderbird_account"]["oauth2"]["client_secret"] for _n, v in rendered} == {"s3"}
