#!/usr/bin/env bash
# rdsaudit remediation runbook
# From rdsaudit-report.json: scan finished 2026-11-27T09:00:04Z, accounts 123456789012.
# Review every step before running it. rdsaudit never runs this script.
# Steps marked MANUAL are comments: do them by hand when the step before is verified.
set -euo pipefail

# ── [critical] encryption-credentials-inaccessible · db-instance payments-db (us-east-1, account 123456789012)
# db-instance payments-db is inaccessible-encryption-credentials-recoverable: the KMS key cannot be accessed; RDS keeps it recoverable for seven days: make the key usable again, then start it within that window
# Restore access to the key, then start the database within seven days of losing access.
# Step 1: Enable the key (run in account 123456789012, which owns the key)
aws kms enable-key --region us-east-1 --key-id arn:aws:kms:us-east-1:123456789012:key/8a3f563a-c0f7-4dbd-88a0-2b36df59b462
# Step 2: Start payments-db within the seven-day recoverable window
aws rds start-db-instance --region us-east-1 --db-instance-identifier payments-db

# ── [critical] key-unusable · db-instance payments-db (us-east-1, account 123456789012)
# db-instance payments-db depends on storage key KMS key arn:aws:kms:us-east-1:123456789012:key/8a3f563a-c0f7-4dbd-88a0-2b36df59b462, which is Disabled: the database storage, its snapshots and backups cannot be decrypted
# Make KMS key(s) arn:aws:kms:us-east-1:123456789012:key/8a3f563a-c0f7-4dbd-88a0-2b36df59b462 (storage) usable again before RDS loses access for good.
# Step 1: Enable the key (run in account 123456789012, which owns the key)
# already done above: aws kms enable-key --region us-east-1 --key-id arn:aws:kms:us-east-1:123456789012:key/8a3f563a-c0f7-4dbd-88a0-2b36df59b462
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
# Step 5: Restore a new encrypted instance legacy-reporting-mysql-enc from the encrypted copy (add your subnet group, security groups, parameter and option groups)
aws rds restore-db-instance-from-db-snapshot --region us-east-1 --db-instance-identifier legacy-reporting-mysql-enc --db-snapshot-identifier legacy-reporting-mysql-encrypted --db-instance-class db.m6g.large
# Step 6: Wait until legacy-reporting-mysql-enc is available
aws rds wait db-instance-available --region us-east-1 --db-instance-identifier legacy-reporting-mysql-enc
# Step 7: Re-create read replica legacy-reporting-mysql-ro from the encrypted primary (same region: it uses the primary's key)
aws rds create-db-instance-read-replica --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro-enc --source-db-instance-identifier legacy-reporting-mysql-enc
# Step 8: Wait until legacy-reporting-mysql-ro-enc is available
aws rds wait db-instance-available --region us-east-1 --db-instance-identifier legacy-reporting-mysql-ro-enc
# Step 9 (MANUAL): Cut applications over to legacy-reporting-mysql-enc (or rename: modify-db-instance --new-db-instance-identifier) and verify the data
# Step 10 (MANUAL): After verification, delete the old unencrypted instance legacy-reporting-mysql and its replicas
# aws rds delete-db-instance --region us-east-1 --db-instance-identifier legacy-reporting-mysql --final-db-snapshot-identifier legacy-reporting-mysql-final
