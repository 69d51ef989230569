"""An S3-compatible server on localhost for the tests of media on object storage.

``media_bucket`` starts moto's S3 server in its own thread on a free port, creates
a bucket and makes ``common.media_storage.MediaStorage`` the default storage with
the options ``core.settings`` builds from the S3_* variables. The app talks to it
over real HTTP through boto3, as it would to AWS, MinIO or R2; tests read the
bucket back with their own boto3 client (``MediaBucket.client``).
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "eu-west-1"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
URL_EXPIRE_SECONDS = 120


@dataclass
class MediaBucket:
    """The running bucket: where it answers, its name, and a client to inspect it."""

    endpoint: str
    name: str
    client: Any
    expire_seconds: int

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when the bucket has no such object."""
        try:
            return dict(self.client.head_object(Bucket=self.name, Key=key))
        except self.client.exceptions.ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise

    def body(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def media_bucket(settings: Any) -> Iterator[MediaBucket]:
    """A fresh bucket on a local S3 server, used as the default (media) storage."""
    # Imported here: every test run loads this plugin, few use the fixture (moto: 0.3 s).
    import boto3  # type: ignore[import-untyped]
    from moto.server import ThreadedMotoServer

    from common.bucket_urls import bucket_origin, policy_with_image_origin

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    name = f"media-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "common.media_storage.MediaStorage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": endpoint,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "querystring_expire": URL_EXPIRE_SECONDS,
            },
        },
    }
    # As core.settings does with S3_BUCKET set: pages may load images from the bucket.
    settings.CONTENT_SECURITY_POLICY = policy_with_image_origin(
        settings.CONTENT_SECURITY_POLICY,
        bucket_origin(bucket=name, endpoint_url=endpoint, region=REGION),
    )
    try:
        yield MediaBucket(endpoint, name, client, URL_EXPIRE_SECONDS)
    finally:
        # moto keeps its buckets in this process, across servers: forget them all.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()
        server.stop()
