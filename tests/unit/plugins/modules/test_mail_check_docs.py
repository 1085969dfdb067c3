"""DOCUMENTATION and the argument spec describe the same options (what validate-modules checks)."""

from __future__ import annotations

import yaml

from ansible_collections.middlebury.mail_clients.plugins.modules import mail_check


def _compare(documented, spec, where):
    assert set(documented) == set(spec), where
    for name, doc in documented.items():
        arg = spec[name]
        here = "%s.%s" % (where, name)
        assert doc.get("type", "str") == arg.get("type", "str"), here
        assert doc.get("default") == arg.get("default"), here
        assert doc.get("choices") == arg.get("choices"), here
        assert bool(doc.get("required")) == bool(arg.get("required")), here
        assert doc.get("elements") == arg.get("elements"), here
        assert doc.get("description"), here
        if "suboptions" in doc or "options" in arg:
            _compare(doc["suboptions"], arg["options"], here)


def test_documented_options_match_the_argument_spec():
    doc = yaml.safe_load(mail_check.DOCUMENTATION)
    _compare(doc["options"], mail_check.ARGUMENT_SPEC, "options")


def test_password_is_never_logged():
    assert mail_check.ARGUMENT_SPEC["password"]["no_log"] is True


def test_examples_and_return_parse():
    assert yaml.safe_load(mail_check.EXAMPLES)
    returned = yaml.safe_load(mail_check.RETURN)
    assert {"endpoints", "summary"} <= set(returned)
