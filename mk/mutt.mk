# mutt role (issue 4): its filter's unit tests, then the role in a sandbox and against the test mail stack.
.PHONY: test-mutt

test-mutt: venv collection-path ## mutt role: muttrc_quote unit tests, sandbox read-back, real clients vs the stack
	$(PY) -m pytest -q -rfE tests/unit/plugins/filter/test_muttrc.py tests/integration/mutt $(PYTEST_ARGS)
