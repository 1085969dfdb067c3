"""unit_word_refusals: values a systemd unit cannot carry as one word are refused, each naming its variable."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.middlebury.mail_clients.plugins.filter.unit_word_refusals import unit_word_refusals

PATH = "^/[A-Za-z0-9._/-]*$"


def _check(value, name="lab_pull_directory"):
    return {"name": name, "value": value, "pattern": PATH, "why": "an absolute path"}


def test_plain_values_pass():
    assert unit_word_refusals([_check("/var/lib/mail-clients"), _check("/")]) == []


@pytest.mark.parametrize("value", ["/srv/lab repo", "/srv/%h", "/srv/lab\n", "/srv/\"x\"", "relative", "", 5, None,
                                   ["/srv"]])
def test_each_value_a_unit_would_read_differently_is_refused_naming_the_variable(value):
    (refusal,) = unit_word_refusals([_check("/ok"), _check(value, "lab_pull_lock_file")])
    assert refusal.startswith("lab_pull_lock_file: ") and "an absolute path" in refusal, refusal


def test_refusals_keep_the_order_of_the_checks():
    refusals = unit_word_refusals([_check("a", "first"), _check("/ok"), _check("b", "second")])
    assert [r.split(":")[0] for r in refusals] == ["first", "second"]


def test_not_a_list_is_an_error():
    with pytest.raises(AnsibleFilterError, match="list of checks"):
        unit_word_refusals({"name": "x"})
