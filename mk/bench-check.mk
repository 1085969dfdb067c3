# mail_check benchmark (issue 3): the module against the sequential check_* suite and openssl s_client,
# on loopback and through a 20 ms RTT relay, against its own test mail stack. Not a timed test:
# it prints medians and ratios. BENCH_ARGS="--runs 9 --rtt 40 --json out.json" to vary it.
BENCH_ARGS ?=

.PHONY: bench-check
bench-check: apt venv collection-path ## mail_check vs check_* suite and openssl s_client: medians and ratios
	$(PY) tests/bench/bench_mail_check.py $(BENCH_ARGS)
