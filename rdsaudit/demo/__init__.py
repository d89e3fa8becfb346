"""The built-in demo: an emulated AWS on 127.0.0.1 and the estate seeded into it.

Optional (the `demo` extra: moto, werkzeug). The core never imports this package: a scan, an
evaluation and every report work without it (tests/e2e/test_core_without_demo.py shows it).

* `emulator` — `FakeAWS`: moto's server with the AWS behaviours moto lacks patched in, paged
  answers, latency and injected faults; also the benchmarks' server.
* `estate` — the demo estate: a small, realistic RDS estate that trips every rule.
* `samples` — `make samples`: regenerate sample_reports/ from the demo estate.
"""
