# The throwaway test mail stack (issue 2): Dovecot + Postfix on loopback, standing in for the
# documented servers. Included by the Makefile. STACK_INSTANCE picks the 127.X.Y block,
# STACK_DIR the directory (default /tmp/mail_clients-stack-<instance>).
STACK_INSTANCE ?= 0
STACK_DIR ?=
STACK_PYTHON ?= /usr/bin/python3
STACK_ARGS = --instance $(STACK_INSTANCE) $(if $(STACK_DIR),--dir $(STACK_DIR))

.PHONY: stack-start stack-stop stack-status stack-test

stack-start: ## Start the test mail stack (JSON: addresses, ports, CA, users, logs)
	$(STACK_PYTHON) tests/mailstack start $(STACK_ARGS)

stack-stop: ## Stop the test mail stack (by PID files; no process left behind)
	$(STACK_PYTHON) tests/mailstack stop $(STACK_ARGS)

stack-status: ## Status of the test mail stack (exit 3 when it is not running)
	$(STACK_PYTHON) tests/mailstack status $(STACK_ARGS)

stack-test: venv collection-path ## The mail stack's own tests
	$(PY) -m pytest tests/mailstack -q $(PYTEST_ARGS)
