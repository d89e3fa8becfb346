"""A fake AWS on 127.0.0.1 for the demo, the end-to-end tests and the benchmarks.

moto answers the AWS calls; a small WSGI layer in front of it does what moto cannot:

* **faults**: AWS-shaped errors (XML for the query services, JSON for KMS), timeouts,
  truncated bodies and extra latency, scoped by service, region, action, request body and
  page, so the collector's error handling can be exercised through a real HTTP stack;
* **pagination** for the RDS listings and KMS calls moto answers in one page (moto-fidelity
  §6/§11.11), so the collector's paging code runs against it;
* **DescribeDBClusterAutomatedBackups**, which moto does not implement (HTTP 500);
* **DescribeDBInstanceAutomatedBackups enrichment**: moto returns only the identifier and
  status; the layer adds the encryption facts from moto's own backend (moto-fidelity §5);
* **overlays**: per-ARN field patches for states moto cannot hold, e.g. an Aurora cluster
  encrypted with an AWS owned key (`StorageEncryptionType=sse-rds`, no `KmsKeyId`) or an
  AWS managed KMS key (`KeyManager=AWS`);
* **call accounting**: every AWS request is recorded, so tests and benchmarks can assert on
  the API calls a scan made.

Tests that run rdsaudit as a subprocess cannot call Python methods, so everything is also
reachable over HTTP under `/_fault`, `/_calls`, `/_overlay` and `/_cluster_automated_backup`.

The layer runs in the same process as moto on purpose: seeding in-process and then serving
beats seeding over HTTP (through boto3 in-process, as the demo seeds, ~3x; straight into
moto's backends, as the benchmarks seed, ~36x: moto-fidelity §9), and the enrichment reads
moto's backend objects directly.
"""

from rdsaudit.demo.emulator.faults import Call, Fault
from rdsaudit.demo.emulator.server import FakeAWS, instance_automated_backup_arn

__all__ = ["Call", "FakeAWS", "Fault", "instance_automated_backup_arn"]
