#!/usr/bin/env python3
"""Seed a moto server with lakegate's sample data lake.

Usage: .venv/bin/python scripts/seed_moto.py http://127.0.0.1:5000

Creates (and leaves alone what already exists, so it can run repeatedly):
  - Glue databases sales and hr, tables sales.orders, sales.customers, hr.employees
  - S3 buckets lakegate-sample-datalake and lakegate-athena-results
  - IAM managed policy lakegate-boundary (the permissions boundary for request roles)
  - the data lake location registered with Lake Formation
"""

import json
import os
import sys

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:
    sys.exit("seed_moto.py needs boto3: run it with .venv/bin/python (scripts/lib.sh lg_ensure_venv installs it)")

REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
DATALAKE_BUCKET = "lakegate-sample-datalake"
RESULTS_BUCKET = "lakegate-athena-results"
BOUNDARY_NAME = "lakegate-boundary"

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}

DATABASES = {
    "sales": "Sales data: orders and the customers who placed them.",
    "hr": "Human resources data. Contains personal information; access is reviewed.",
}


def col(name, type_, comment):
    return {"Name": name, "Type": type_, "Comment": comment}


TABLES = [
    {
        "database": "sales",
        "name": "orders",
        "description": "One row per customer order, partitioned by order date.",
        "columns": [
            col("order_id", "bigint", "Unique order identifier."),
            col("customer_id", "bigint", "The customer who placed the order (sales.customers.customer_id)."),
            col("amount", "decimal(10,2)", "Order total in USD."),
            col("status", "string", "One of placed, shipped, delivered, cancelled."),
        ],
        "partition_keys": [col("dt", "string", "Order date, YYYY-MM-DD.")],
    },
    {
        "database": "sales",
        "name": "customers",
        "description": "Customer master data.",
        "columns": [
            col("customer_id", "bigint", "Unique customer identifier."),
            col("name", "string", "Full name (personal data)."),
            col("email", "string", "Contact e-mail address (personal data)."),
            col("country", "string", "ISO 3166-1 alpha-2 country code."),
        ],
        "partition_keys": [],
    },
    {
        "database": "hr",
        "name": "employees",
        "description": "Current employees.",
        "columns": [
            col("employee_id", "bigint", "Unique employee identifier."),
            col("name", "string", "Full name (personal data)."),
            col("department", "string", "Department name."),
            col("salary", "decimal(12,2)", "Annual base salary in USD (confidential)."),
            col("national_id", "string", "Government-issued ID number (sensitive personal data)."),
        ],
        "partition_keys": [],
    },
]

# What a request role may do at most, whatever its inline policy says.
BOUNDARY_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Athena", "Effect": "Allow", "Action": "athena:*", "Resource": "*"},
        {"Sid": "GlueCatalogRead", "Effect": "Allow", "Action": "glue:Get*", "Resource": "*"},
        {
            "Sid": "LakeFormationCredentialVending",
            "Effect": "Allow",
            "Action": "lakeformation:GetDataAccess",
            "Resource": "*",
        },
        {
            "Sid": "AthenaResultsBucket",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:ListBucket",
                "s3:GetBucketLocation",
                "s3:ListMultipartUploadParts",
                "s3:AbortMultipartUpload",
            ],
            "Resource": [f"arn:aws:s3:::{RESULTS_BUCKET}", f"arn:aws:s3:::{RESULTS_BUCKET}/*"],
        },
    ],
}


def error_code(err):
    return err.response.get("Error", {}).get("Code", "")


def ignore_exists(codes, fn, **kwargs):
    """Call fn; return True if it created something, False if it already existed."""
    try:
        fn(**kwargs)
        return True
    except ClientError as err:
        if error_code(err) in codes:
            return False
        raise


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} ENDPOINT_URL   (e.g. http://127.0.0.1:5000)")
    endpoint = sys.argv[1]

    # Only the emulator's fixed test keys: keep the caller's profiles and
    # config files (which may hold real accounts) out of this process.
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    # Few retries: moto answers unimplemented calls with 500s that retrying won't fix.
    config = Config(retries={"total_max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"})

    def client(service):
        return session.client(service, endpoint_url=endpoint, config=config)

    glue, s3, iam, lf = client("glue"), client("s3"), client("iam"), client("lakeformation")

    for name, description in DATABASES.items():
        ignore_exists(
            {"AlreadyExistsException"},
            glue.create_database,
            DatabaseInput={"Name": name, "Description": description},
        )

    for t in TABLES:
        location = f"s3://{DATALAKE_BUCKET}/{t['database']}/{t['name']}/"
        ignore_exists(
            {"AlreadyExistsException"},
            glue.create_table,
            DatabaseName=t["database"],
            TableInput={
                "Name": t["name"],
                "Description": t["description"],
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
                "PartitionKeys": t["partition_keys"],
                "StorageDescriptor": {"Columns": t["columns"], "Location": location, **PARQUET},
            },
        )

    for bucket in (DATALAKE_BUCKET, RESULTS_BUCKET):
        ignore_exists({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}, s3.create_bucket, Bucket=bucket)

    ignore_exists(
        {"EntityAlreadyExists"},
        iam.create_policy,
        PolicyName=BOUNDARY_NAME,
        Description="Permissions boundary for lakegate's per-request roles (sample)",
        PolicyDocument=json.dumps(BOUNDARY_DOCUMENT),
    )

    ignore_exists(
        {"AlreadyExistsException"},
        lf.register_resource,
        ResourceArn=f"arn:aws:s3:::{DATALAKE_BUCKET}",
        UseServiceLinkedRole=True,
    )

    # Summary, read back from the emulator.
    account = session.client("sts", endpoint_url=endpoint, config=config).get_caller_identity()["Account"]
    print(f"moto at {endpoint} (account {account}, region {REGION}) holds:")
    for db in glue.get_databases()["DatabaseList"]:
        for table in glue.get_tables(DatabaseName=db["Name"])["TableList"]:
            cols = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
            parts = [c["Name"] for c in table.get("PartitionKeys", [])]
            extra = f"; partitioned by {', '.join(parts)}" if parts else ""
            print(f"  glue table  {db['Name']}.{table['Name']} ({', '.join(cols)}{extra})")
    for bucket in s3.list_buckets()["Buckets"]:
        print(f"  s3 bucket   {bucket['Name']}")
    policy_arn = f"arn:aws:iam::{account}:policy/{BOUNDARY_NAME}"
    iam.get_policy(PolicyArn=policy_arn)
    print(f"  iam policy  {policy_arn}")
    for res in lf.list_resources().get("ResourceInfoList", []):
        print(f"  lakeformation location  {res['ResourceArn']}")


if __name__ == "__main__":
    main()
