"""Shared by the remote-tier tests: a real S3 API server (moto's server mode, started and
stopped by the tests, one bucket per test) and `file://` remotes.

A test module takes the fixtures by assigning them (`s3_remote = remote_helpers.s3_remote`),
which is how pytest finds fixtures defined elsewhere.
"""
from __future__ import annotations

import secrets

import pytest

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint of a moto S3 server on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def make_bucket(endpoint: str, *, public_read: bool = False) -> str:
    import boto3

    name = f"wanflow-{secrets.token_hex(6)}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=name)
    if public_read:
        client.put_bucket_policy(Bucket=name, Policy=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
            f'"Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::{name}", '
            f'"arn:aws:s3:::{name}/*"]}}]}}'))
    return name


@pytest.fixture
def s3_remote(s3_server, monkeypatch) -> str:
    """A fresh bucket; the URL of a remote under a prefix in it. The credentials are in
    this process's environment (obstore reads them there) and in `remote_env`."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = make_bucket(s3_server)
    return f"s3://{bucket}/team/wanflow?endpoint={s3_server}"


@pytest.fixture
def file_remote(tmp_path) -> str:
    return (tmp_path / "remote").as_uri()


@pytest.fixture(params=["s3", "file"])
def any_remote(request) -> str:
    """Each test that takes it runs against both kinds of remote."""
    return request.getfixturevalue(f"{request.param}_remote")


def remote_env(url: str, **more: str) -> dict[str, str]:
    """Environment for a wanflow subprocess using `url`, with short claim intervals."""
    env = {"WANFLOW_REMOTE": url, "WANFLOW_CLAIM_HEARTBEAT": "1", "WANFLOW_CLAIM_STALE": "3",
           **more}
    if url.startswith("s3://"):
        env.update(S3_ENV)
    return env

