# Thunderbird role (issue 5): its unit and integration tests alone (headless Debian Thunderbird against
# the test mail stack; a few minutes). Included by the Makefile, which provides $(PY) and `make venv`.
.PHONY: test-thunderbird

test-thunderbird: venv collection-path ## Thunderbird role: js_literal unit tests and headless-Thunderbird integration tests
	$(PY) -m pytest tests/unit/plugins/filter/test_js_literal.py tests/integration/thunderbird -q -rfE $(PYTEST_ARGS)
