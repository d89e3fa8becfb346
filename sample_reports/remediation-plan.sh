#!/usr/bin/env bash
# rdsaudit remediation runbook for account 123456789012
# From rdsaudit-report.json: scan finished 2026-11-27T09:00:04Z, accounts 123456789012, 444455556666.
# Review every step before running it. rdsaudit never runs this script.
# Steps marked MANUAL are comments: do them by hand when the step before is verified.
# Deletions run only after the cut-over, and only with RDSAUDIT_CONFIRM_DELETE=1.
set -euo pipefail

# ── Account check: every command below is for this account only
expected_account=123456789012
actual_account="$(aws sts get-caller-identity --query Account --output text)"
if [ "$actual_account" != "$expected_account" ]; then
  printf '%s\n' 'This runbook is for AWS account 123456789012: switch credentials (AWS_PROFILE) and run it again.' >&2
  exit 1
fi

# ── [critical] encryption-credentials-inaccessible · db-instance payments-db (us-east-1, account 123456789012)
# db-instance payments-db is inaccessible-encryption-credentials-recoverable: the KMS key cannot be accessed; RDS keeps it recoverable for seven days: make the key usable again, then start it within that window
# Restore access to the key, then start the database within seven days of losing access.
# Step 1: Enable the key (in account 123456789012, which owns the key)
aws kms enable-key --region us-east-1 --key-id arn:aws:kms:us-east-1:123456789012:key/0a41499a-3eb2-4c1e-b535-bb4b79cf5a6a
# Step 2: Start payments-db within the seven-day recoverable window
aws rds start-db-instance --region us-east-1 --db-instance-identifier payments-db

# ── [critical] key-unusable · db-instance payments-db (us-east-1, account 123456789012)
# db-instance payments-db depends on storage key KMS key arn:aws:kms:us-east-1:123456789012:key/0a41499a-3eb2-4c1e-b535-bb4b79cf5a6a, which is Disabled: the database storage, its snapshots and backups cannot be decrypted
# Make KMS key(s) arn:aws:kms:us-east-1:123456789012:key/0a41499a-3eb2-4c1e-b535-bb4b79cf5a6a (storage) usable again before RDS loses access for good.
# Step 1: Enable the key (in account 123456789012, which owns the key)
# already done above: aws kms enable-key --region us-east-1 --key-id arn:aws:kms:us-east-1:123456789012:key/0a41499a-3eb2-4c1e-b535-bb4b79cf5a6a
# Step 2: Start payments-db within the seven-day recoverable window
# already done above: aws rds start-db-instance --region us-east-1 --db-instance-identifier payments-db

# ── [high] instance-unencrypted · db-instance legacy-reporting-mysql (us-east-1, account 123456789012)
# db-instance legacy-reporting-mysql (mysql) is not encrypted at rest
# Encryption can only be chosen at creation: re-create the instance from an encrypted snapshot copy. No target key is configured for us-east-1: the plan uses the account's default RDS key (alias/aws/rds); pass --target-key to use a customer managed key.
# Step 1: Snapshot legacy-reporting-mysql (the snapshot inherits its encryption state)
aws rds create-db-snapshot --region us-east-1 --db-instance-identifier legacy-reporting-mysql --db-snapshot-identifier legacy-reporting-mysql-pre-encryption
# Step 2: Wait until legacy-reporting-mysql-pre-encryption is available
aws rds wait db-snapshot-available --region us-east-1 --db-snapshot-identifier legacy-reporting-mysql-pre-encryption
# Step 3: Copy the snapshot, encrypting it with alias/aws/rds
aws rds copy-db-snapshot --region us-east-1 --source-db-snapshot-identifier legacy-reporting-mysql-pre-encryption --target-db-snapshot-identifier legacy-reporting-mysql-encrypted --kms-key-id alias/aws/rds --copy-tags
# Step 4: Wait until legacy-reporting-mysql-encrypted is available
aws rds wait db-snapshot-available --region us-east-1 --db-snapshot-identifier legacy-reporting-mysql-encrypted
# Step 5: Restore a new encrypted instance legacy-reporting-mysql-enc from the encrypted copy, with legacy-reporting-mysql's configuration (VPC security groups, port, storage type, copy tags to snapshots, license model, tags, backup retention)
aws rds restore-db-instance-from-db-snapshot --region us-east-1 --db-instance-identifier legacy-reporting-mysql-enc --db-snapshot-identifier legacy-reporting-mysql-encrypted --db-instance-class db.m6g.large --vpc-security-group-ids sg-36b5e34f09de78064 --port 3306 --storage-type gp2 --copy-tags-to-snapshot --license-model general-public-license --tags '[{"Key":"owner","Value":"frank@example.com"},{"Key":"environment","Value":"production"},{"Key":"team","Value":"finance"}]' --backup-retention-period 7
# Step 6: Wait until legacy-reporting-mysql-enc is available
aws rds wait db-instance-available --region us-east-1 --db-instance-identifier legacy-reporting-mysql-enc
# Step 7: Re-create read replica legacy-reporting-mysql-ro as legacy-reporting-mysql-ro-enc from legacy-reporting-mysql-enc (same region: it uses the source's key)
aws rds create-db-instance-read-replica --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro-enc --source-db-instance-identifier legacy-reporting-mysql-enc --db-instance-class db.m6g.large --vpc-security-group-ids sg-36b5e34f09de78064 --port 3306 --storage-type gp2 --copy-tags-to-snapshot --tags '[{"Key":"owner","Value":"frank@example.com"},{"Key":"environment","Value":"production"},{"Key":"team","Value":"finance"}]'
# Step 8: Wait until legacy-reporting-mysql-ro-enc is available
aws rds wait db-instance-available --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro-enc
# Step 9: Set on legacy-reporting-mysql-ro-enc what the replica call cannot (license model)
aws rds modify-db-instance --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro-enc --license-model general-public-license --apply-immediately
# Step 10: Wait until legacy-reporting-mysql-ro-enc is available
aws rds wait db-instance-available --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro-enc
# Step 11 (MANUAL): Cut applications over to legacy-reporting-mysql-enc (or rename: modify-db-instance --new-db-instance-identifier) and verify the data
# Step 12: Delete the intermediate snapshot legacy-reporting-mysql-pre-encryption (unencrypted copy of legacy-reporting-mysql) (in the clean-up section below)
# Step 13: Delete the old read replica legacy-reporting-mysql-ro (in the clean-up section below)
# Step 14: Wait until legacy-reporting-mysql-ro is deleted (in the clean-up section below)
# Step 15: Delete the old unencrypted instance legacy-reporting-mysql, keeping a final snapshot legacy-reporting-mysql-final (in the clean-up section below)
# Step 16: Wait until legacy-reporting-mysql is deleted (in the clean-up section below)
# Step 17: Wait until legacy-reporting-mysql-final is available (in the clean-up section below)
# Step 18: Keep the final snapshot only as an encrypted copy legacy-reporting-mysql-final-encrypted (alias/aws/rds) (in the clean-up section below)
# Step 19: Wait until legacy-reporting-mysql-final-encrypted is available (in the clean-up section below)
# Step 20: Delete the final snapshot legacy-reporting-mysql-final now that its encrypted copy exists (in the clean-up section below)

# ── Clean-up after the cut-over: deletes what the steps above replaced
# Set RDSAUDIT_CONFIRM_DELETE=1 only once applications use the new databases and you have
# verified their data. Unset, these deletions are skipped and the old (unencrypted or
# wrongly keyed) resources remain: the next scan still reports them.
if [ "${RDSAUDIT_CONFIRM_DELETE:-}" = 1 ]; then
  # instance-unencrypted · legacy-reporting-mysql: Delete the intermediate snapshot legacy-reporting-mysql-pre-encryption (unencrypted copy of legacy-reporting-mysql)
  aws rds delete-db-snapshot --region us-east-1 --db-snapshot-identifier legacy-reporting-mysql-pre-encryption
  # instance-unencrypted · legacy-reporting-mysql: Delete the old read replica legacy-reporting-mysql-ro
  aws rds delete-db-instance --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro --skip-final-snapshot
  # instance-unencrypted · legacy-reporting-mysql: Wait until legacy-reporting-mysql-ro is deleted
  aws rds wait db-instance-deleted --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro
  # instance-unencrypted · legacy-reporting-mysql: Delete the old unencrypted instance legacy-reporting-mysql, keeping a final snapshot legacy-reporting-mysql-final
  aws rds delete-db-instance --region us-east-1 --db-instance-identifier legacy-reporting-mysql --final-db-snapshot-identifier legacy-reporting-mysql-final
  # instance-unencrypted · legacy-reporting-mysql: Wait until legacy-reporting-mysql is deleted
  aws rds wait db-instance-deleted --region us-east-1 --db-instance-identifier legacy-reporting-mysql
  # instance-unencrypted · legacy-reporting-mysql: Wait until legacy-reporting-mysql-final is available
  aws rds wait db-snapshot-available --region us-east-1 --db-snapshot-identifier legacy-reporting-mysql-final
  # instance-unencrypted · legacy-reporting-mysql: Keep the final snapshot only as an encrypted copy legacy-reporting-mysql-final-encrypted (alias/aws/rds)
  aws rds copy-db-snapshot --region us-east-1 --source-db-snapshot-identifier legacy-reporting-mysql-final --target-db-snapshot-identifier legacy-reporting-mysql-final-encrypted --kms-key-id alias/aws/rds --copy-tags
  # instance-unencrypted · legacy-reporting-mysql: Wait until legacy-reporting-mysql-final-encrypted is available
  aws rds wait db-snapshot-available --region us-east-1 --db-snapshot-identifier legacy-reporting-mysql-final-encrypted
  # instance-unencrypted · legacy-reporting-mysql: Delete the final snapshot legacy-reporting-mysql-final now that its encrypted copy exists
  aws rds delete-db-snapshot --region us-east-1 --db-snapshot-identifier legacy-reporting-mysql-final
else
  printf '%s\n' 'RDSAUDIT_CONFIRM_DELETE is not 1: skipped 5 deletion(s); these remain until you rerun with it set:' >&2
  printf '%s\n' '  - Delete the intermediate snapshot legacy-reporting-mysql-pre-encryption (unencrypted copy of legacy-reporting-mysql)' >&2
  printf '%s\n' '  - Delete the old read replica legacy-reporting-mysql-ro' >&2
  printf '%s\n' '  - Delete the old unencrypted instance legacy-reporting-mysql, keeping a final snapshot legacy-reporting-mysql-final' >&2
  printf '%s\n' '  - Keep the final snapshot only as an encrypted copy legacy-reporting-mysql-final-encrypted (alias/aws/rds)' >&2
  printf '%s\n' '  - Delete the final snapshot legacy-reporting-mysql-final now that its encrypted copy exists' >&2
fi
