"""template.yaml: cfn-lint clean, the resources and least-privilege policies the
function needs, function/requirements.txt in step with pyproject.toml, and a real
``sam build`` whose artifact holds the package and its dependencies only."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
FUNCTION = ROOT / "function"


def load_template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, problems = decode(str(TEMPLATE))
    assert not problems, problems
    assert template is not None
    return dict(template)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def statements(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for policy in role["Properties"]["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            out[st["Sid"]] = st
    return out


def test_cfn_lint_is_clean() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            str(TEMPLATE),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == ""


def test_function(template: dict[str, Any]) -> None:
    fn = template["Resources"]["BuilderFunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    props = fn["Properties"]
    assert props["Handler"] == "layerbuilder.handler.lambda_handler"
    assert props["Runtime"] == "python3.12"
    assert props["Timeout"] == 900
    assert props["MemorySize"] >= 2048
    # the wheels plus the zip of a 250 MB layer must fit in /tmp
    assert props["EphemeralStorage"]["Size"] >= 1024
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    assert props["CodeUri"] == "function/"
    assert props["Role"] == {"Fn::GetAtt": ["BuilderRole", "Arn"]}
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "BuilderLogGroup"}
    env = props["Environment"]["Variables"]
    assert env["LAYERBUILDER_STAGING_BUCKET"] == {"Ref": "StagingBucket"}
    assert env["LAYERBUILDER_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert env["LAYERBUILDER_INDEX_URL"] == {
        "Fn::If": ["HasIndexUrl", {"Ref": "IndexUrl"}, {"Ref": "AWS::NoValue"}]
    }
    params = template["Parameters"]
    assert params["Architecture"]["AllowedValues"] == ["x86_64", "arm64"]
    assert "INFO" in params["LogLevel"]["AllowedValues"]
    assert set(template["Outputs"]) >= {"FunctionName", "FunctionArn"}
    assert template["Outputs"]["FunctionArn"]["Value"] == {"Fn::GetAtt": ["BuilderFunction", "Arn"]}


def test_handler_and_env_names_match_the_code() -> None:
    from layerbuilder import awslog, handler, index, publish

    assert callable(handler.lambda_handler)
    text = TEMPLATE.read_text()
    for name in (publish.STAGING_BUCKET_ENV, awslog.LOG_LEVEL_ENV, "LAYERBUILDER_INDEX_URL"):
        assert f"{name}:" in text
    assert "LAYERBUILDER_INDEX_URL" in Path(index.__file__).read_text()
    # the IAM grant covers exactly the prefix staging objects are written under
    assert f"/{publish.STAGING_PREFIX}*" in text


def test_staging_bucket(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["StagingBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [sse] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == 1
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1

    policy = template["Resources"]["StagingBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "StagingBucket"}
    [deny] = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [
        {"Fn::GetAtt": ["StagingBucket", "Arn"]},
        {"Fn::Sub": "${StagingBucket.Arn}/*"},
    ]


def test_role_is_least_privilege(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    role = resources["BuilderRole"]
    assert role["Type"] == "AWS::IAM::Role"
    assert "ManagedPolicyArns" not in role["Properties"]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    sts = statements(role)
    assert set(sts) == {"PublishAndShareLayers", "StageLayerZips", "WriteOwnLogs"}
    for st in sts.values():
        assert st["Effect"] == "Allow"
        assert all(a != "*" and not a.endswith(":*") for a in st["Action"])

    layers = sts["PublishAndShareLayers"]
    assert sorted(layers["Action"]) == [
        "lambda:AddLayerVersionPermission",
        "lambda:GetLayerVersion",
        "lambda:GetLayerVersionPolicy",
        "lambda:ListLayerVersions",
        "lambda:PublishLayerVersion",
    ]
    assert layers["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:lambda:*:${AWS::AccountId}:layer:*"},
        {"Fn::Sub": "arn:${AWS::Partition}:lambda:*:${AWS::AccountId}:layer:*:*"},
    ]

    s3 = sts["StageLayerZips"]
    assert sorted(s3["Action"]) == [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:PutObject",
    ]
    assert s3["Resource"] == {"Fn::Sub": "${StagingBucket.Arn}/layerbuilder-staging/*"}

    logs = sts["WriteOwnLogs"]
    assert sorted(logs["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["Resource"] == {"Fn::GetAtt": ["BuilderLogGroup", "Arn"]}
    assert resources["BuilderLogGroup"]["Type"] == "AWS::Logs::LogGroup"


def test_function_dir_holds_only_the_package_link_and_requirements() -> None:
    assert sorted(p.name for p in FUNCTION.iterdir()) == ["layerbuilder", "requirements.txt"]
    link = FUNCTION / "layerbuilder"
    assert link.is_symlink() and os.readlink(link) == "../layerbuilder"
    assert link.resolve() == (ROOT / "layerbuilder").resolve()


def _names(reqs: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(r) for r in reqs]
    return {canonicalize_name(r.name): r for r in parsed}


def test_function_requirements_match_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"])
    lines = [
        line.strip()
        for line in (FUNCTION / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    listed = _names(lines)
    assert "boto3" in declared and "boto3" not in listed  # the runtime provides boto3
    del declared["boto3"]
    assert set(listed) == set(declared)
    for name, req in listed.items():
        assert req.specifier == declared[name].specifier, name
        assert str(req.marker) == str(declared[name].marker), name


# -- sam build ------------------------------------------------------------------------------

SAM_VENV = Path(
    os.environ.get("LAYERBUILDER_SAM_VENV", Path.home() / ".cache" / "layerbuilder-tests" / "sam")
)


def _sam() -> str:
    """``sam`` from PATH, else from a venv of its own, made once and cached.

    aws-sam-cli pins boto3, cfn-lint and others to exact versions, so it cannot
    share the dev environment; it gets its own venv under ~/.cache.
    """
    found = shutil.which("sam")
    if found:
        return found
    sam = SAM_VENV / "bin" / "sam"
    if not sam.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(SAM_VENV)
        subprocess.run(
            [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "aws-sam-cli"],
            check=True,
            timeout=1800,
        )
    return str(sam)


def _python312_dir() -> str:
    """A directory holding a working ``python3.12`` (sam build looks for one on PATH;
    a pyenv shim on PATH may not run, so each candidate is tried)."""
    candidates = [os.environ.get("LAYERBUILDER_PYTHON312", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python3.12")))
    candidates += sorted(glob.glob("/root/.pyenv/versions/3.12.*/bin/python3.12"))
    candidates += [shutil.which("python3.12") or ""]
    for exe in filter(None, candidates):
        try:
            out = subprocess.run(
                [exe, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 12)":
            return str(Path(exe).parent)
    pytest.fail("sam build for the python3.12 runtime needs a working python3.12")


@pytest.mark.slow
def test_sam_build_artifact(tmp_path: Path) -> None:
    """``sam build`` (no Docker) and what it produces.

    Trade-off: sam build's pip fetches the function's dependencies from the
    package index configured for pip on this machine.  Mirroring them on a
    loopback index would test a mirror, not the build users run, so this test is
    marked ``slow`` and lets pip's own subprocess use the index (the test
    process's socket guard covers this process only).  It runs in CI.
    """
    sam = _sam()
    env = dict(os.environ)
    env["PATH"] = _python312_dir() + os.pathsep + env.get("PATH", "")
    env["SAM_CLI_TELEMETRY"] = "0"
    build = tmp_path / "build"
    run = subprocess.run(
        [
            sam,
            "build",
            "--template-file",
            str(TEMPLATE),
            "--build-dir",
            str(build),
            "--base-dir",
            str(ROOT),
        ],
        cwd=tmp_path,  # sam writes build.toml and caches into the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Build Succeeded" in run.stdout + run.stderr

    artifact = build / "BuilderFunction"
    top = {p.name for p in artifact.iterdir()}
    # the package, as real files (the link was followed), with its data
    pkg = artifact / "layerbuilder"
    assert pkg.is_dir() and not pkg.is_symlink()
    assert (pkg / "handler.py").read_bytes() == (ROOT / "layerbuilder" / "handler.py").read_bytes()
    assert (pkg / "py.typed").exists()
    # its runtime dependencies, but not boto3 (the runtime has it)
    for dep in ("packaging", "requests", "distlib", "resolvelib", "urllib3", "idna", "certifi"):
        assert dep in top, (dep, sorted(top))
    assert not top & {"boto3", "botocore", "s3transfer"}
    # nothing of the repository beyond the package
    assert not top & {
        "tests",
        "fixtures",
        "benchmarks",
        "docs",
        "function",
        "template.yaml",
        "pyproject.toml",
        ".git",
    }
    assert not any(p.name == "__pycache__" for p in artifact.rglob("*"))
    built = (build / "template.yaml").read_text()
    assert "CodeUri: BuilderFunction" in built

    # the artifact imports on python3.12 with nothing else on the path (-I -S: no
    # site-packages; boto3 is imported lazily, only to publish)
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "import layerbuilder.handler as h, layerbuilder.build, layerbuilder.resolver\n"
        "r = h.parse_event({'ModuleName': 'requests'}, {'AWS_EXECUTION_ENV': "
        "'AWS_Lambda_python3.12'}, 'x86_64')\n"
        "assert layerbuilder.build.__file__.startswith(sys.argv[1]), layerbuilder.build.__file__\n"
        "print(r.requirement, r.target)\n"
    )
    py = Path(env["PATH"].split(os.pathsep)[0]) / "python3.12"
    check = subprocess.run(
        [str(py), "-I", "-S", "-c", code, str(artifact)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "requests python3.12 on x86_64"
