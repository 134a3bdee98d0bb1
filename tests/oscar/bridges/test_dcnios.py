"""The DCNiOS converter: both layouts, every source kind, warnings, names, credentials, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from oscar.bridges.dcnios import DcniosError, convert, describe, load
from oscar.models.bridge import MASK, parse_bridge

SECRETS = ("nifi-pw", "dcache-pw", "kafka-pw", "p12-pw", "oscar-pw", "oscar-token", "SKfile")

# The layout of DCNiOS's code (cli/description.yaml): Source/Destination groups.
CODE_LAYOUT = """\
nifi:
  endpoint: https://nifi.example.org
  user: admin
  password: nifi-pw
  Source:
    dCache:
      - name: dcache
        endpoint: https://dcache.example.org:3880/api/v1
        user: duser
        password: dcache-pw
        folder: /data/in
        statefile: state-file
        components:
          - name: GetFile
            seconds: 2
    Kafka:
      - name: kafka
        bootstrap_servers: kafka.example.org:9092
        topic: uploads
        group_id: "1"
        sasl_username: kuser
        sasl_password: kafka-pw
        separate_by_key: "true"
        message_demarcator: ";"
        ssl_context:
          Truststore_Filename: kafka-ca.p12
          Truststore_Password: p12-pw
        alterations:
          - action: Encode
            Encoding: base64
          - action: Merge
            maxMessages: 10
            windowSeconds: 7
    GetSQS:
      - name: SQS-events
        AWS_DEFAULT_REGION: eu-west-1
        queue_name: my-queue
    GetS3:
      - name: S3_download
        AWS_ACCESS_KEY_ID: AKfile
        AWS_SECRET_ACCESS_KEY: SKfile
        AWS_DEFAULT_REGION: us-east-2
        AWS_S3_BUCKET: my-bucket
  Destination:
    OSCAR:
      - name: invoke
        endpoint: https://oscar.example.org
        service: grayify
        token: oscar-token
        user: oscar
        password: oscar-pw
  generic:
    - name: custom
      file: flow.json
      variables: {secret: oscar-pw}
  connection:
    - from: dcache
      to: invoke
    - from: kafka
      to: invoke
    - from: SQS-events
      to: invoke
    - from: S3_download
      to: invoke
    - from: custom
      to: invoke
"""

# The flat layout of DCNiOS's documentation (Users.md), with its SQS/S3 spellings.
DOCS_LAYOUT = """\
nifi:
 endpoint: https://nifi.example.org
 user: admin
 password: nifi-pw
 dCache:
   - name: dcache
     endpoint: https://dcache.example.org:3880/api/v1
     user: duser
     password: dcache-pw
     folder: /data/in
     statefile: state
 SQS:
   - name: sqs
     AWS_DEFAULT_REGION: eu-west-1
     queue_name: q1
 S3:
   - name: s3
     AWS_DEFAULT_REGION: eu-west-1
     AWS_S3_BUCKET: b1
 OSCAR:
   - name: edgan3
     endpoint: https://oscar.example.org
     service: edgan
     token: oscar-token
 connection:
   - from: dcache
     to: edgan3
   - from: sqs
     to: edgan3
   - from: s3
     to: edgan3
"""


def by_name(bridges: list[dict]) -> dict[str, dict]:
    return {b["name"]: b for b in bridges}


def messages(conversion) -> str:
    return "\n".join(describe(w, "f.yaml") for w in conversion.warnings)


def test_code_layout_every_source_kind() -> None:
    conversion = convert(CODE_LAYOUT)
    bridges = by_name(conversion.bridges)
    assert set(bridges) == {"dcache", "kafka", "sqs-events", "s3-download"}
    for bridge in bridges.values():
        parse_bridge(bridge)  # each is a definition the API accepts
        assert bridge["service"] == "grayify"
    assert bridges["dcache"] == {
        "name": "dcache",
        "type": "dcache",
        "service": "grayify",
        "endpoint": "https://dcache.example.org:3880/api/v1",
        "folder": "/data/in",
        "credentials": {"user": "duser", "password": "dcache-pw"},
    }
    kafka = bridges["kafka"]
    assert kafka["type"] == "kafka" and kafka["payload"] == "raw"
    assert kafka["bootstrap_servers"] == "kafka.example.org:9092" and kafka["topic"] == "uploads"
    assert kafka["group_id"] == "1"
    # DCNiOS's defaults when the file names none.
    assert kafka["security_protocol"] == "SASL_SSL" and kafka["sasl_mechanism"] == "PLAIN"
    assert kafka["credentials"] == {"sasl_username": "kuser", "sasl_password": "kafka-pw"}
    sqs = bridges["sqs-events"]
    assert (sqs["type"], sqs["queue"], sqs["region"], sqs["payload"]) == (
        "sqs",
        "my-queue",
        "eu-west-1",
        "raw",
    )
    assert "credentials" not in sqs  # none anywhere: the server's own are used
    s3 = bridges["s3-download"]
    assert (s3["type"], s3["queue"], s3["region"], s3["payload"]) == (
        "sqs",
        "my-bucket_events",
        "us-east-2",
        "s3",
    )
    assert s3["credentials"] == {"access_key": "AKfile", "secret_key": "SKfile"}
    assert conversion.origins["kafka"] == "nifi.Source.Kafka[0] → nifi.Destination.OSCAR[0]"


def test_docs_layout_and_spellings() -> None:
    bridges = by_name(convert(DOCS_LAYOUT).bridges)
    assert set(bridges) == {"dcache", "sqs", "s3"}
    assert {b["service"] for b in bridges.values()} == {"edgan"}
    assert bridges["sqs"]["queue"] == "q1" and bridges["sqs"]["payload"] == "raw"
    assert bridges["s3"]["queue"] == "b1_events" and bridges["s3"]["payload"] == "s3"
    assert bridges["dcache"]["credentials"] == {"user": "duser", "password": "dcache-pw"}


def test_everything_left_out_is_a_warning_with_its_path_and_line() -> None:
    conversion = convert(CODE_LAYOUT)
    text = messages(conversion)
    expected = [
        "f.yaml:1: nifi: endpoint, user, password: there is no NiFi here",
        "nifi.Source.dCache[0].statefile: not needed",
        "nifi.Source.dCache[0].components: NiFi processor scheduling",
        "nifi.Source.Kafka[0].alterations[0]: Encode is not done",
        "nifi.Source.Kafka[0].alterations[1]: Merge",
        "nifi.Source.Kafka[0].separate_by_key:",
        "nifi.Source.Kafka[0].group_id: the bridge consumes in group '1'",
        "`openssl pkcs12 -in kafka-ca.p12 -nokeys -out kafka-ca.pem`",
        "`ssl_cafile: /path/to/kafka-ca.pem`",
        "DCNiOS created queue 'my-queue' on apply",
        "DCNiOS created queue 'my-bucket_events'",
        "s3 input on bucket 'my-bucket'",
        "nifi.Destination.OSCAR[0]: endpoint, token, user, password: not used",
        "nifi.generic[0]: generic element 'custom'",
        "stop (or delete) the DCNiOS flow",
    ]
    for piece in expected:
        assert piece in text, piece
    statefile = next(w for w in conversion.warnings if w.field.endswith("statefile"))
    assert statefile.line == 12
    lines = [w.line or 0 for w in conversion.warnings]
    assert lines == sorted(lines)  # in file order


def test_no_secret_appears_in_warnings_or_errors() -> None:
    text = messages(convert(CODE_LAYOUT))
    broken = CODE_LAYOUT.replace("        topic: uploads\n", "")
    with pytest.raises(DcniosError) as excinfo:
        convert(broken)
    for secret in (*SECRETS, "AKfile", "kuser"):
        assert secret not in text
        assert secret not in str(excinfo.value)


def test_masked_definitions_hide_every_credential() -> None:
    conversion = convert(CODE_LAYOUT)
    masked = by_name(conversion.masked())
    assert masked["kafka"]["credentials"] == {"sasl_username": MASK, "sasl_password": MASK}
    assert masked["s3-download"]["credentials"] == {"access_key": MASK, "secret_key": MASK}
    assert "kafka-pw" not in repr(masked)
    # The definitions to send keep them in clear.
    assert by_name(conversion.bridges)["kafka"]["credentials"]["sasl_password"] == "kafka-pw"


def test_names_become_dns_labels_and_collisions_are_renamed() -> None:
    text = """\
nifi:
  Source:
    GetSQS:
      - {name: Events_Q, AWS_DEFAULT_REGION: r, queue_name: a}
      - {name: events-q, AWS_DEFAULT_REGION: r, queue_name: b}
  Destination:
    OSCAR:
      - {name: one, service: s1}
      - {name: two, service: s2}
  connection:
    - {from: Events_Q, to: one}
    - {from: events-q, to: one}
    - {from: events-q, to: two}
"""
    conversion = convert(text)
    names = [b["name"] for b in conversion.bridges]
    # One connection: the source's name; several: source-destination.
    assert names == ["events-q", "events-q-one", "events-q-two"]
    assert {b["name"]: b["service"] for b in conversion.bridges} == {
        "events-q": "s1",
        "events-q-one": "s1",
        "events-q-two": "s2",
    }
    warned = messages(conversion)
    assert "'Events_Q' is not a DNS label" in warned and "named 'events-q'" in warned

    clash = text.replace("    - {from: events-q, to: two}\n", "").replace(
        "    - {from: events-q, to: one}\n", "    - {from: events-q, to: two}\n"
    )
    conversion = convert(clash)
    assert [b["name"] for b in conversion.bridges] == ["events-q", "events-q-2"]
    assert "bridge name 'events-q' is already taken: this one is named 'events-q-2'" in (
        messages(conversion)
    )


def test_long_and_odd_names_are_cut_to_a_label() -> None:
    text = f"""\
nifi:
  Kafka:
    - {{name: "{"Ünïcode Topic." * 8}", bootstrap_servers: "k:1", topic: t,
        security_protocol: PLAINTEXT}}
  OSCAR: [{{name: o, service: s}}]
  connection: [{{from: "{"Ünïcode Topic." * 8}", to: o}}]
"""
    name = convert(text).bridges[0]["name"]
    assert len(name) <= 63 and name == name.strip("-")
    parse_bridge(convert(text).bridges[0])


@pytest.mark.parametrize(
    ("environ", "home_file", "expected", "origin"),
    [
        (
            {"AWS_ACCESS_KEY_ID": "AKenv", "AWS_SECRET_ACCESS_KEY": "SKenv"},
            True,
            ("AKenv", "SKenv"),
            "from the environment",
        ),
        ({"AWS_ACCESS_KEY_ID": "AKenv"}, True, ("AKhome", "SKhome"), "from ~/.aws/credentials"),
        ({}, False, ("AKfile", "SKfile"), "from the workflow file"),
    ],
)
def test_aws_credentials_are_looked_up_as_dcnios_does(
    tmp_path: Path,
    environ: dict[str, str],
    home_file: bool,
    expected: tuple[str, str],
    origin: str,
) -> None:
    if home_file:
        (tmp_path / ".aws").mkdir()
        (tmp_path / ".aws" / "credentials").write_text(
            "[other]\naws_access_key_id = AKother\naws_secret_access_key = SKother\n"
            "[default]\naws_access_key_id = AKhome\naws_secret_access_key = SKhome\n"
        )
    conversion = convert(CODE_LAYOUT, environ={**environ, "HOME": str(tmp_path)})
    bridges = by_name(conversion.bridges)
    # Only the GetS3 element has keys of its own in the file.
    names = (
        ("s3-download",) if origin == "from the workflow file" else ("sqs-events", "s3-download")
    )
    for name in names:
        credentials = bridges[name]["credentials"]
        assert (credentials["access_key"], credentials["secret_key"]) == expected
    text = messages(conversion)
    assert f"AWS credentials taken {origin}" in text
    for secret in ("AKenv", "SKenv", "AKhome", "SKhome", "SKfile"):
        assert secret not in text


def test_a_credentials_file_without_default_falls_back_to_the_workflow(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[other]\naws_access_key_id = AKother\n")
    conversion = convert(CODE_LAYOUT, environ={"HOME": str(tmp_path)})
    assert by_name(conversion.bridges)["s3-download"]["credentials"]["access_key"] == "AKfile"
    assert "has no [default]" in messages(conversion)


def test_an_unparsable_credentials_file_never_leaks_its_lines(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("aws_secret_access_key = SKbroken\n")
    conversion = convert(CODE_LAYOUT, environ={"HOME": str(tmp_path)})
    text = messages(conversion)
    assert "~/.aws/credentials cannot be read" in text and "SKbroken" not in text


def test_sqs_endpoint_for_a_non_aws_queue_needs_no_region() -> None:
    text = """\
nifi:
  SQS: [{name: local, endpoint: "http://127.0.0.1:9324", queue_name: jobs}]
  OSCAR: [{name: o, service: s}]
  connection: [{from: local, to: o}]
"""
    bridge = convert(text).bridges[0]
    assert bridge["endpoint"] == "http://127.0.0.1:9324" and bridge["queue"] == "jobs"
    parse_bridge(bridge)


def test_kafka_without_sasl_drops_unused_credentials() -> None:
    text = """\
nifi:
  Kafka:
    - name: plain
      bootstrap_servers: [k1:9092, k2:9092]
      topic: t
      security_protocol: plaintext
      sasl_username: u
      sasl_password: kafka-pw
  OSCAR: [{name: o, service: s}]
  connection: [{from: plain, to: o}]
"""
    conversion = convert(text)
    bridge = conversion.bridges[0]
    assert bridge["security_protocol"] == "PLAINTEXT"
    assert bridge["bootstrap_servers"] == "k1:9092,k2:9092"
    assert "credentials" not in bridge
    text = messages(conversion)
    assert "not used with PLAINTEXT" in text and "no group_id" in text


def test_unsupported_elements_and_connections_are_warned_not_fatal() -> None:
    text = """\
nifi:
  Source:
    RUCIO: [{name: rucio, host: h, password: oscar-pw}]
    dCache: [{name: lonely, endpoint: "https://d/api/v1", folder: /f}]
    Kafka: [{name: k, bootstrap_servers: "k:1", topic: t, security_protocol: SSL, bogus: 1}]
    Mystery: []
  Destination:
    OSCAR: [{name: o, service: s}]
    PutS3: [{name: put, AWS_S3_BUCKET: out}]
  extra_section: 1
  connection:
    - {from: rucio, to: o}
    - {from: k, to: put}
    - {from: o, to: k}
    - {from: k, to: o}
    - {from: k, to: o}
"""
    conversion = convert(text)
    assert [b["name"] for b in conversion.bridges] == ["k"]
    warned = messages(conversion)
    for piece in (
        "nifi.Source.RUCIO[0]: RUCIO source 'rucio'",
        "nifi.Destination.PutS3[0]: PutS3 destination 'put'",
        "nifi.Source.Mystery: not a DCNiOS kind here",
        "nifi.extra_section: not a DCNiOS source",
        "nifi.Source.Kafka[0]: bogus: not a DCNiOS key",
        "nifi.connection[2]: o → k is not a source → OSCAR connection",
        "nifi.connection[4]: repeats the connection k → o",
        "nifi.Source.dCache[0]: 'lonely' is connected to no OSCAR destination",
    ):
        assert piece in warned, piece
    assert "oscar-pw" not in warned


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        ("other: 1\n", "nifi", "is required", 1),
        (
            "nifi:\n  Source:\n    Kafka:\n      - name: k\n        bootstrap_servers: b:1\n"
            "        sasl_username: u\n        sasl_password: p\n",
            "nifi.Source.Kafka[0].topic",
            "is required",
            4,
        ),
        (
            "nifi:\n  Kafka:\n    - {name: k, bootstrap_servers: 'b:1', topic: t}\n",
            "nifi.Kafka[0].sasl_username",
            "is required with security_protocol SASL_SSL",
            3,
        ),
        (
            "nifi:\n  Kafka:\n    - {name: k, bootstrap_servers: 'b:1', topic: t, "
            "security_protocol: TLS}\n  OSCAR: [{name: o, service: s}]\n"
            "  connection: [{from: k, to: o}]\n",
            "nifi.Kafka[0].security_protocol",
            "Input should be",
            3,
        ),
        ("nifi:\n  GetS3:\n    - {name: s3, AWS_DEFAULT_REGION: r}\n", "nifi.GetS3[0]", "", 3),
        (
            "nifi:\n  SQS:\n    - {name: q, queue_name: x}\n",
            "nifi.SQS[0].AWS_DEFAULT_REGION",
            "",
            3,
        ),
        (
            "nifi:\n  OSCAR:\n    - {name: o, endpoint: e}\n",
            "nifi.OSCAR[0].service",
            "is required",
            3,
        ),
        (
            "nifi:\n  dCache:\n    - {name: d, endpoint: e, user: u}\n",
            "nifi.dCache[0].password",
            "is required with user",
            3,
        ),
        ("nifi:\n  dCache: {name: d}\n", "nifi.dCache", "must be a list", 2),
        ("nifi:\n  dCache:\n    - folder: /x\n", "nifi.dCache[0].name", "is required", 3),
        (
            "nifi:\n  dCache:\n    - {name: d, endpoint: e}\n"
            "  OSCAR:\n    - {name: d, service: s}\n",
            "nifi.OSCAR[0].name",
            "'d' is also the name of nifi.dCache[0]",
            5,
        ),
        (
            "nifi:\n  OSCAR: [{name: o, service: s}]\n  connection:\n    - {from: ghost, to: o}\n",
            "nifi.connection[0].from",
            "'ghost' names no element (known: o)",
            4,
        ),
        (
            "nifi:\n  Kafka:\n    - name: k\n      bootstrap_servers: b\n      topic: t\n"
            "      security_protocol: PLAINTEXT\n      alterations:\n        - Encoding: base64\n",
            "nifi.Kafka[0].alterations[0].action",
            "is required",
            8,
        ),
        ("nifi: {a: [\n", "", "invalid YAML", 2),
    ],
)
def test_malformed_files_name_the_yaml_path_and_line(
    text: str, path: str, message: str, line: int | None
) -> None:
    with pytest.raises(DcniosError) as excinfo:
        convert(text, source="flow.yaml")
    errors = {e.field: e for e in excinfo.value.errors}
    assert any(f.startswith(path) for f in errors), errors
    error = next(e for f, e in errors.items() if f.startswith(path))
    assert message in error.message
    assert error.line == line
    assert str(excinfo.value).startswith("flow.yaml: ")


def test_all_errors_of_a_file_are_reported_at_once() -> None:
    text = """\
nifi:
  Kafka:
    - {name: k1, security_protocol: PLAINTEXT}
  GetSQS:
    - {name: q}
"""
    with pytest.raises(DcniosError) as excinfo:
        convert(text)
    fields = {e.field for e in excinfo.value.errors}
    assert {
        "nifi.Kafka[0].bootstrap_servers",
        "nifi.Kafka[0].topic",
        "nifi.GetSQS[0].queue_name",
        "nifi.GetSQS[0].AWS_DEFAULT_REGION",
    } <= fields


def test_load_reads_a_file_and_reports_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(DOCS_LAYOUT)
    assert len(load(path).bridges) == 3
    with pytest.raises(DcniosError, match="cannot read the file"):
        load(tmp_path / "missing.yaml")
