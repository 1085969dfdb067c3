"""A playbook using the collection's filters and module: runs on every ansible-core line we claim."""

from __future__ import annotations

from ansible_runner import run_playbook


def test_filter_and_module_in_a_playbook(tmp_path):
    target = tmp_path / "out.txt"
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"account": "{{ {'protocol': 'pop3'} | middlebury.mail_clients.mail_account([{'login': 'alice'}]) }}"},
        "tasks": [
            {"name": "Write what the model derived", "vars": {
                "ports": "{{ account | middlebury.mail_clients.mail_endpoints | map(attribute='port') | join(',') }}"},
             "middlebury.mail_clients.managed_files": {"files": [{
                 "path": str(target),
                 "content": "{{ account.incoming.port }} {{ account.users[0].email }} {{ ports }}\n",
             }]}},
            {"name": "Refuse NTLM", "ansible.builtin.set_fact": {
                "bad": "{{ {'auth': 'ntlm'} | middlebury.mail_clients.mail_account }}"},
             "ignore_errors": True, "register": "refused"},
            {"name": "The refusal names the field", "ansible.builtin.assert": {"that": [
                "refused is failed", "'mail_clients_account.auth' in refused.msg"]}},
        ],
    }]
    result = run_playbook(play)
    assert result.rc == 0, result
    assert target.read_text() == "995 alice@middlebury.edu 993,143,995,25\n"
