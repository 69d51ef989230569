"""The generated project's Kubernetes manifests (deploy/kubernetes), checked by their tools.

Every overlay is rendered with `kubectl kustomize` as a user would deploy it;
each object it renders is validated against the Kubernetes API's schemas
(kubernetes-validate) and the whole through the policy linter checkov. The
settings lists are kept in step with .env.example, and the places outside the
app that must agree with its settings (the ingress's body limit, the host
the probes ask for) are checked against the rendered settings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "quickscale" / "project_templates"
KUBERNETES = TEMPLATE / "deploy" / "kubernetes"
OVERLAYS = ("dev", "prod")
# kubectl's own version (1.32, with Kustomize v5) on these machines and CI's.
KUBERNETES_VERSION = "1.32.0"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
# scripts/test installs checkov into a venv of its own (requirements-checkov.txt).
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))

# Checks of the policy linter that do not apply, each with why. A check that
# applies to one resource only is skipped on that resource instead, by an
# annotation that says why (checkov.io/skipN).
SKIPPED_CHECKS: dict[str, dict[str, str]] = {
    "every overlay": {
        # The overlays pin the project's image by tag; a release pipeline can pin a
        # digest (`kustomize edit set image project-image=NAME@sha256:...`), which
        # no file here can know in advance.
        "CKV_K8S_43": "Image should use digest",
        # The app reads its settings from the environment, as in every runtime
        # (.env); the Secret reaches only the project's pods, which mount no API token.
        "CKV_K8S_35": "Prefer using secrets as files over secrets as environment variables",
    },
    "dev": {
        # The dev image is built locally and loaded into the cluster: there is no
        # registry to pull it from (prod pulls Always).
        "CKV_K8S_15": "Image Pull Policy should be Always",
    },
}

# The app's request body limits (core/settings.py defaults) when a setting is empty.
BODY_LIMIT_DEFAULTS = {
    "BODY_LIMIT_ANONYMOUS_BYTES": 64 * 1024,
    "BODY_LIMIT_FORMS_BYTES": 256 * 1024,
    "BODY_LIMIT_WEBHOOK_BYTES": 1024 * 1024,
    "BODY_LIMIT_DEFAULT_BYTES": 1024 * 1024,
    "API_MAX_BODY_BYTES": 11 * 1024 * 1024,
    "AVATAR_MAX_BYTES": 2 * 1024 * 1024,
}
# What the settings add to AVATAR_MAX_BYTES for the profile page (BODY_LIMIT_PROFILE_BYTES).
PROFILE_FORM_OVERHEAD = 64 * 1024
# A variable holding a password, a key or a URL that may carry credentials is a secret.
SECRET_NAME = re.compile(
    r"(PASSWORD|SECRET|SECRET_KEY|API_KEY|ACCESS_KEY|TOKEN)$|^(DATABASE|REDIS)_URL$"
)


def env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of a Kustomize env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def env_example_names() -> list[str]:
    return [
        match.group(1)
        for line in (TEMPLATE / ".env.example").read_text().splitlines()
        if (match := re.match(r"([A-Z][A-Z0-9_]*)=", line))
    ]


@pytest.fixture(scope="module")
def deploy_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/kubernetes with the prod secrets filled in, as a user's would be."""
    tree = tmp_path_factory.mktemp("deploy") / "kubernetes"
    shutil.copytree(KUBERNETES, tree, ignore=shutil.ignore_patterns("secrets.env"))
    for name in ("base", "overlays/dev"):  # committed on purpose: no secret in them
        shutil.copy(KUBERNETES / name / "secrets.env", tree / name / "secrets.env")
    example = (tree / "overlays/prod/secrets.env.example").read_text()
    filled = example.replace("SECRET_KEY=", "SECRET_KEY=" + "k" * 60)
    (tree / "overlays/prod/secrets.env").write_text(filled)
    return tree


def render(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def rendered(deploy_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each overlay rendered to a file of its own."""
    out = tmp_path_factory.mktemp("rendered")
    files = {}
    for overlay in OVERLAYS:
        done = render(deploy_tree / "overlays" / overlay)
        assert done.returncode == 0, done.stderr
        files[overlay] = out / f"{overlay}.yaml"
        files[overlay].write_text(done.stdout)
    return files


def objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = find(docs, "ConfigMap", "app-config-")["data"]
    return data


# Rendering, schemas, policies


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_objects_valid_against_the_kubernetes_schemas(rendered, overlay):
    docs = objects(rendered[overlay])
    kinds = {doc["kind"] for doc in docs}
    assert {
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    } <= kinds
    for doc in docs:
        # strict: an unknown or misspelt field is an error, not silently dropped.
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_catches_a_misspelt_field(rendered):
    web = find(objects(rendered["prod"]), "Deployment", "web")
    web["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module")
def linted(rendered, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list]]:
    """checkov's findings for each overlay and for a broken web Deployment, in one run.

    One run for all (checkov takes seconds to start): dev.yaml, prod.yaml and
    root.yaml, the prod web Deployment made to run as root, which must fail.
    """
    assert CHECKOV.exists(), (
        f"{CHECKOV} is missing: scripts/test installs it (its install_checkov step), "
        "or set CHECKOV to a checkov executable"
    )
    folder = tmp_path_factory.mktemp("checkov")
    for overlay, path in rendered.items():
        shutil.copy(path, folder / f"{overlay}.yaml")
    web = find(objects(rendered["prod"]), "Deployment", "web")
    pod = web["spec"]["template"]["spec"]
    pod["securityContext"]["runAsNonRoot"] = False
    pod["securityContext"]["runAsUser"] = 0
    with (folder / "root.yaml").open("w") as stream:
        YAML(typ="safe").dump(web, stream)
    skipped = ",".join(sorted(SKIPPED_CHECKS["every overlay"]))
    command = [str(CHECKOV), "--directory", str(folder), "--framework", "kubernetes"]
    done = subprocess.run(
        [*command, "--output", "json", "--skip-check", skipped],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["parsing_errors"] == 0
    findings: dict[str, dict[str, list]] = {
        name: {"failed": [], "passed": [], "skipped": []} for name in [*rendered, "root"]
    }
    for outcome in ("failed", "passed", "skipped"):
        for check in report["results"].get(f"{outcome}_checks", []):
            findings[Path(check["file_path"]).stem][outcome].append(check)
    return findings


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_the_policy_linter(linted, overlay):
    waived = SKIPPED_CHECKS.get(overlay, {})
    failed = [
        f"{check['check_id']} {check['check_name']}: {check['resource']}"
        for check in linted[overlay]["failed"]
        if check["check_id"] not in waived
    ]
    assert failed == []
    assert len(linted[overlay]["passed"]) > 100  # it did look at every object
    # Skips by annotation name their reason in the manifest.
    for check in linted[overlay]["skipped"]:
        assert len(check["check_result"]["suppress_comment"]) > 20, check["check_id"]


def test_the_policy_linter_catches_a_root_container(linted):
    assert "CKV_K8S_23" in {check["check_id"] for check in linted["root"]["failed"]}


# Settings: the ConfigMap and the Secret hold .env.example's variables


def test_every_env_example_variable_is_in_exactly_one_of_the_configmap_and_the_secret():
    names = env_example_names()
    configured = env_file(KUBERNETES / "base" / "config.env")
    secret = env_file(KUBERNETES / "base" / "secrets.env")
    assert names, "the settings come from .env.example"
    assert set(configured) & set(secret) == set(), "in both base/config.env and base/secrets.env"
    missing = [name for name in names if name not in configured and name not in secret]
    assert missing == [], (
        "add these .env.example variables to deploy/kubernetes/base/config.env, or to "
        "base/secrets.env (empty) and overlays/prod/secrets.env.example if secret"
    )
    assert set(configured) | set(secret) <= set(names), "not in .env.example (any more)"


def test_secrets_are_in_the_secret_and_committed_without_a_value():
    configured = env_file(KUBERNETES / "base" / "config.env")
    secret = env_file(KUBERNETES / "base" / "secrets.env")
    assert {name for name in configured if SECRET_NAME.search(name)} == set()
    assert {"SECRET_KEY", "DB_PASSWORD", "STRIPE_SECRET_KEY", "DATABASE_URL"} <= set(secret)
    assert set(secret.values()) == {""}
    # The prod overlay's template lists the same secrets, and only those.
    example = env_file(KUBERNETES / "overlays" / "prod" / "secrets.env.example")
    assert set(example) == set(secret)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_set_only_known_variables(overlay):
    known = set(env_example_names())
    for name in ("config.env", "secrets.env"):
        path = KUBERNETES / "overlays" / overlay / name
        if path.exists():
            assert set(env_file(path)) - known == set(), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_configmap_and_secret_hold_every_variable(rendered, overlay):
    docs = objects(rendered[overlay])
    secret = find(docs, "Secret", "app-secrets-")
    assert set(config(docs)) | set(secret["data"]) == set(env_example_names())


def test_the_prod_secrets_file_stays_out_of_git_and_out_of_the_image(tmp_path):
    project = tmp_path / "project"
    secrets = project / "deploy/kubernetes/overlays/prod/secrets.env"
    secrets.parent.mkdir(parents=True)
    shutil.copy(TEMPLATE / ".gitignore", project / ".gitignore")
    secrets.write_text("SECRET_KEY=x\n")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    ignored = subprocess.run(
        ["git", "-C", str(project), "check-ignore", "-q", str(secrets)], check=False
    )
    assert ignored.returncode == 0
    assert "deploy" in (TEMPLATE / ".dockerignore").read_text().split()


# What must agree with the app's settings


def largest_body_limit(settings: dict[str, str]) -> int:
    """The largest request body the app accepts on any route (core/body_limit.py)."""
    value = {
        name: int(settings.get(name) or default) for name, default in BODY_LIMIT_DEFAULTS.items()
    }
    profile = value.pop("AVATAR_MAX_BYTES") + PROFILE_FORM_OVERHEAD
    return max(*value.values(), profile)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_refuses_bodies_over_the_apps_largest_limit(rendered, overlay):
    docs = objects(rendered[overlay])
    ingress = find(docs, "Ingress", "web")
    limit = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(limit) == largest_body_limit(config(docs))


def test_the_ingress_limit_follows_the_setting(deploy_tree, tmp_path):
    tree = tmp_path / "kubernetes"
    shutil.copytree(deploy_tree, tree)
    with (tree / "overlays/prod/config.env").open("a") as stream:
        stream.write("API_MAX_BODY_BYTES=20971520\n")
    done = render(tree / "overlays" / "prod")
    assert done.returncode == 0, done.stderr
    ingress = find([d for d in YAML(typ="safe").load_all(done.stdout) if d], "Ingress", "web")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == (
        "20971520"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_ingress_use_the_first_allowed_host(rendered, overlay):
    docs = objects(rendered[overlay])
    host = config(docs)["ALLOWED_HOSTS"].split(",")[0].strip()
    assert re.fullmatch(r"[a-z0-9.-]+", host), "Django refuses a Host header like " + host
    ingress = find(docs, "Ingress", "web")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [host]
    for tls in ingress["spec"].get("tls", []):
        assert tls["hosts"] == [host]
    web = find(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/health/"
    assert web["livenessProbe"]["httpGet"]["path"] == "/health/live/"
    for probe in (web["readinessProbe"], web["livenessProbe"]):
        assert probe["httpGet"]["httpHeaders"] == [{"name": "Host", "value": host}]


def test_prod_serves_https_behind_the_ingress(rendered):
    docs = objects(rendered["prod"])
    settings = config(docs)
    assert settings["IS_PRODUCTION"] == "True"
    assert settings["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"
    assert settings["TRUSTED_PROXY_COUNT"] == "1"  # the client is one hop back: ingress-nginx
    assert find(docs, "Ingress", "web")["spec"]["tls"][0]["secretName"]


# Workloads


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_unprivileged_on_a_read_only_root(rendered, overlay):
    docs = objects(rendered[overlay])
    claim_templates = {
        claim["metadata"]["name"]
        for doc in docs
        if doc["kind"] == "StatefulSet"
        for claim in doc["spec"].get("volumeClaimTemplates", [])
    }
    for name, pod in pod_specs(docs):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        volumes = {volume["name"] for volume in pod.get("volumes", [])} | claim_templates
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            for key in ("cpu", "memory"):
                assert resources["requests"][key] and resources["limits"][key], name
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{name}: temporary files need a writable /tmp"
            for mount in container["volumeMounts"]:
                assert mount["name"] in volumes, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_apps_writable_paths_are_volumes(rendered, overlay):
    # With a read-only root, every path the app writes must be a mounted volume.
    docs = objects(rendered[overlay])
    settings = config(docs)
    for name in ("web", "worker"):
        container = find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        mounts = [mount["mountPath"] for mount in container["volumeMounts"]]
        for path in (settings["MEDIA_ROOT"], str(Path(settings["MAIL_LOG_PATH"]).parent)):
            assert path in mounts, f"{name} cannot write {path}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_once_in_a_job_and_new_web_pods_wait_for_them(rendered, overlay):
    docs = objects(rendered[overlay])
    # The entrypoint's own start-up work is off: the Job runs it, once per release.
    assert config(docs)["QUICKSCALE_SKIP_BOOTSTRAP"] == "1"
    job = find(docs, "Job", "migrate")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["python", "manage.py", "bootstrap", "--skip-collectstatic"]
    pod = find(docs, "Deployment", "web")["spec"]["template"]["spec"]
    (wait,) = pod["initContainers"]
    assert "manage.py migrate --check" in " ".join(wait["args"])
    assert wait["image"] == pod["containers"][0]["image"] == job["image"]
    assert pod["containers"][0]["args"] == ["web"]
    worker = find(docs, "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["worker"]  # entrypoint.sh: waits for the migrations itself


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_and_disruption_budgets_cover_the_workloads(rendered, overlay):
    docs = objects(rendered[overlay])
    hpa = find(docs, "HorizontalPodAutoscaler", "web")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # The autoscaler owns the count: an apply must not reset it.
    assert "replicas" not in find(docs, "Deployment", "web")["spec"]
    for name in ("web", "worker"):
        labels = find(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        selector = find(docs, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
    service = find(docs, "Service", "web")
    web_labels = find(docs, "Deployment", "web")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= web_labels.items()
