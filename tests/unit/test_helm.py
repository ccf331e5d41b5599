"""The Helm chart, linted and rendered by Helm's own Go SDK (helm-python-sdk), no helm binary.

Every value set renders, lints clean and validates against the Kubernetes schemas
(kubernetes-validate, strict) and the Prometheus Operator CRD models; every container is locked
down; no password reaches anything but a Secret; the PrometheusRules are the rule files of
alerts/ and the dashboard ConfigMaps the files of dashboards/json, byte for byte; the config the
chart writes is accepted by pgradar's own config loader; the sidecar examples are what the chart
prints; bad values fail with the schema's message. Nothing here opens a socket.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from pgradar.agent.settings import config as configuration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pgradar"
EXAMPLES = CHART / "examples"

_spec = importlib.util.spec_from_file_location("helm_render", ROOT / "scripts" / "helm_render.py")
assert _spec and _spec.loader
hr = sys.modules["helm_render"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hr)

PASSWORD = "Kn0wn-pw/for+tests="  # the password the tests hunt for
STANDBY_PASSWORD = "st4ndby-pw-S3cret"

EVERYTHING = hr.merge(
    hr.load_values([EXAMPLES / "standalone.yaml"]),
    {
        "auth": {
            "existingSecret": "",
            "passwords": {"primary": PASSWORD, "standby": STANDBY_PASSWORD, "bouncer": PASSWORD},
        },
        "replicaCount": 2,
        "config": {
            "thresholds": {"long_query_warning_s": 30},
            "snapshots_kept": 3,
            "databases": {"exclude": ["template*"]},
        },
        "podAnnotations": {"team": "dba"},
        "imagePullSecrets": [{"name": "registry"}],
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "monitoring", "effect": "NoSchedule"}],
    },
)
VALUE_SETS = {
    "defaults": {},
    "standalone-example": hr.load_values([EXAMPLES / "standalone.yaml"]),
    "everything": EVERYTHING,
    "zalando-sidecar": hr.load_values([EXAMPLES / "zalando" / "values.yaml"]),
    "bitnami-sidecar": hr.load_values([EXAMPLES / "bitnami" / "values.yaml"]),
    "custom-queries": {
        "customQueries": {
            "files": {"queries.yaml": "pg_x:\n  query: SELECT 1 AS n\n  metrics:\n    - n: {usage: GAUGE}\n"}
        }
    },
    "sharded": hr.merge(hr.load_values([EXAMPLES / "standalone.yaml"]), {"shards": 3}),
}


def rule_files(folder: Path = ROOT / "alerts") -> dict[str, Any]:
    """Every Prometheus rule file of alerts/ (YAML with `groups`), parsed, by path under alerts/."""
    found = {}
    for path in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "groups" in data:
            found[f"alerts/{path.relative_to(folder)}"] = data
    return found


def containers(rendered: Any) -> list[dict[str, Any]]:
    return [
        c
        for d in [*rendered.of_kind("Deployment"), *rendered.of_kind("StatefulSet")]
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def sidecar_snippet(notes: str) -> dict[str, Any]:
    """The YAML that NOTES.txt prints for sidecar mode."""
    _, marker, snippet = notes.partition("# --- sidecar spec ---")
    assert marker, notes
    return yaml.safe_load(snippet)


# --- one source: the chart's files are links to alerts/ and dashboards/json ----------------------


def test_chart_files_are_links_to_the_one_source() -> None:
    assert (CHART / "files" / "alerts").is_symlink()
    assert (CHART / "files" / "alerts").resolve() == ROOT / "alerts"
    assert (CHART / "files" / "dashboards").is_symlink()
    assert (CHART / "files" / "dashboards").resolve() == ROOT / "dashboards" / "json"


# --- every value set: lint, render, validate ---------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_value_set_lints_clean_and_every_manifest_validates(name: str) -> None:
    values = VALUE_SETS[name]
    assert hr.lint(values) == []
    rendered = hr.render(values, namespace="db")
    kinds = {m["kind"] for m in rendered.manifests}
    assert {"ConfigMap", "Service"} <= kinds
    workload = "StatefulSet" if values.get("shards", 1) > 1 else "Deployment"
    assert (workload in kinds) == (values.get("mode", "standalone") == "standalone")
    assert [p for m in rendered.manifests if (p := hr.validate(m))] == []
    # ... and on the oldest Kubernetes the chart admits (Chart.yaml kubeVersion)
    oldest = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"].removeprefix(">=").rsplit(".", 1)[0]
    assert [p for m in rendered.manifests if (p := hr.validate(m, oldest))] == []


def test_everything_renders_every_optional_object() -> None:
    rendered = hr.render(EVERYTHING)
    assert {m["kind"] for m in rendered.manifests} == {
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
    }
    assert rendered.one("Deployment")["spec"]["replicas"] == 2
    monitor = rendered.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= rendered.one("Service")["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == rendered.one("Service")["spec"]["ports"][0]["name"]


def test_validation_catches_what_it_should() -> None:
    """The validators are not rubber stamps: an unknown field or a wrong type is reported."""
    rendered = hr.render(EVERYTHING)
    deployment = json.loads(json.dumps(rendered.one("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    assert "readOnlyRootFS" in (hr.validate(deployment) or "")
    service = json.loads(json.dumps(rendered.one("Service")))
    service["spec"]["ports"][0]["port"] = "http"
    assert hr.validate(service)
    monitor = json.loads(json.dumps(rendered.one("ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["interval"] = "every minute"
    assert hr.validate(monitor)
    monitor["spec"]["endpoints"][0]["interval"] = "30s"
    monitor["spec"]["endpoints"][0]["scrape_interval"] = "30s"
    assert "unknown" in (hr.validate(monitor) or "")
    rule = json.loads(json.dumps(rendered.of_kind("PrometheusRule")[0]))
    rule["spec"]["groups"][0]["rules"][0]["for"] = 5
    assert hr.validate(rule)


# --- security --------------------------------------------------------------------------------


def assert_locked_down(container: dict[str, Any]) -> None:
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # the read-only root filesystem leaves /tmp writable through an emptyDir
    assert {"name": "pgradar-tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["mountPath"] != "/tmp")


@pytest.mark.parametrize("name", [n for n, v in VALUE_SETS.items() if v.get("mode", "standalone") == "standalone"])
def test_every_container_is_locked_down(name: str) -> None:
    rendered = hr.render(VALUE_SETS[name])
    workloads = [*rendered.of_kind("Deployment"), *rendered.of_kind("StatefulSet")]
    assert len(workloads) == 1
    for deployment in workloads:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert not pod.get("hostNetwork") and not pod.get("hostPID")
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            assert_locked_down(container)


def test_the_bitnami_sidecar_is_the_deployment_container() -> None:
    """One definition of the container: the sidecar printed for container-spec charts is the same."""
    notes = hr.render(VALUE_SETS["bitnami-sidecar"]).notes
    (sidecar,) = sidecar_snippet(notes)["sidecars"]
    assert_locked_down(sidecar)
    (deployed,) = containers(hr.render(hr.merge(VALUE_SETS["bitnami-sidecar"], {"mode": "standalone"})))
    assert sidecar == deployed


def test_no_password_outside_secrets() -> None:
    rendered = hr.render(EVERYTHING)
    needles = [
        PASSWORD,
        STANDBY_PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(STANDBY_PASSWORD.encode()).decode(),
    ]
    for manifest in rendered.manifests:
        if manifest["kind"] != "Secret":
            text = yaml.safe_dump(manifest)
            assert not [n for n in needles if n in text], f"a password is in {manifest['kind']}"
    assert not [n for n in needles if n in rendered.notes]
    secret = rendered.one("Secret")
    assert base64.b64decode(secret["data"]["primary"]).decode() == PASSWORD
    assert base64.b64decode(secret["data"]["standby"]).decode() == STANDBY_PASSWORD
    # ... and the Secret is what the pod mounts, read-only
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert {
        "name": "pgradar-secrets",
        "secret": {"secretName": secret["metadata"]["name"], "defaultMode": 0o440},
    } in pod["volumes"]


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://pgradar:hunter2@db:5432/postgres",
        "postgresql://pgradar@db:5432/postgres?sslmode=require&password=hunter2",
        "host=db user=pgradar password=hunter2 dbname=postgres",
    ],
)
def test_a_dsn_with_a_password_is_refused(dsn: str) -> None:
    values = {"targets": [{"name": "primary", "dsn": dsn}]}
    with pytest.raises(helm.HelmRenderError, match=r"targets\[0\]\.dsn: the DSN carries a password"):
        hr.render(values)


# --- the config the chart writes is pgradar's ------------------------------------------------


def test_config_is_accepted_by_the_agent(tmp_path: Path) -> None:
    rendered = hr.render(EVERYTHING)
    (config_map,) = [m for m in rendered.of_kind("ConfigMap") if "config.yaml" in m.get("data", {})]
    text = config_map["data"]["config.yaml"]
    data = yaml.safe_load(text)
    secret = {k: base64.b64decode(v).decode() for k, v in rendered.one("Secret")["data"].items()}
    for item in [*data["targets"], *data["pgbouncers"]]:  # the Secret's files, as the volume mounts them
        path = Path(item["password_file"])
        assert path.parent == Path("/etc/pgradar/secrets")
        (tmp_path / path.name).write_text(secret[path.name])
        item["password_file"] = str(tmp_path / path.name)
    cfg = configuration.build(data)
    assert [t.name for t in cfg.targets] == ["primary", "standby"]
    assert [t.name for t in cfg.pgbouncers] == ["bouncer"]
    assert "hunter2" not in text and PASSWORD not in text
    assert f"password={PASSWORD}" in cfg.targets[0].dsn or PASSWORD in cfg.targets[0].dsn
    assert cfg.targets[0].databases.include == ("app*",)
    assert cfg.listen.port == EVERYTHING.get("port", 9188)
    assert cfg.top_statements == 50 and cfg.snapshots_kept == 3
    container = containers(rendered)[0]
    assert {"name": "PGRADAR_CONFIG", "value": "/etc/pgradar/config/config.yaml"} in container["env"]
    assert container["ports"][0]["containerPort"] == cfg.listen.port


def test_schema_knows_exactly_the_agent_config_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    from_values = set(schema["properties"]["config"]["properties"])
    assert from_values == set(configuration.SCHEMA) - {"targets", "pgbouncers", "listen"}, (
        "values.schema.json config keys differ from pgradar.agent.settings.config.SCHEMA"
    )
    assert set(schema["properties"]["targets"]["items"]["properties"]) - {"passwordKey"} == set(
        configuration.SCHEMA["targets"][0]
    ) - {"password_file"}


# --- alerts and dashboards: the one source ----------------------------------------------------


def test_prometheus_rules_are_the_rule_files_exactly() -> None:
    files = rule_files()
    assert files, "alerts/ holds no rule file"
    rules = hr.render({"prometheusRule": {"enabled": True, "labels": {"release": "prom"}}}).of_kind("PrometheusRule")
    by_file = {r["metadata"]["annotations"]["pgradar.io/rule-file"]: r for r in rules}
    assert set(by_file) == set(files)
    for path, data in files.items():
        assert by_file[path]["spec"] == data, path
        assert by_file[path]["metadata"]["labels"]["release"] == "prom"
    assert not hr.render({}).of_kind("PrometheusRule")


def test_only_rule_files_become_prometheus_rules(tmp_path: Path) -> None:
    """A promtool test file (no `groups`) next to the rules is not packaged; nested rule files are."""
    chart = tmp_path / "pgradar"
    shutil.copytree(CHART, chart, symlinks=False)
    alerts = chart / "files" / "alerts"
    (alerts / "tests").mkdir(exist_ok=True)
    (alerts / "tests" / "target_down.test.yml").write_text("rule_files: [../pgradar.rules.yml]\ntests: []\n")
    (alerts / "tests" / "extra.rules.yaml").write_text(
        "groups:\n  - name: extra\n    rules:\n      - record: x:y\n        expr: vector(1)\n"
    )
    rendered = hr.render({"prometheusRule": {"enabled": True}}, chart=chart)
    expected = rule_files(alerts)
    assert "alerts/tests/extra.rules.yaml" in expected and len(expected) == len(rule_files()) + 1
    assert {
        r["metadata"]["annotations"]["pgradar.io/rule-file"]: r["spec"] for r in rendered.of_kind("PrometheusRule")
    } == expected


def dashboard_config_maps(rendered: Any) -> dict[str, dict[str, Any]]:
    return {
        m["metadata"]["name"]: m
        for m in rendered.of_kind("ConfigMap")
        if m["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    }


def test_dashboard_config_maps_are_the_committed_json_exactly() -> None:
    rendered = hr.render({"dashboards": {"enabled": True}})
    files = {p.name: p.read_text() for p in sorted((ROOT / "dashboards" / "json").glob("*.json"))}
    found = {name: text for cm in dashboard_config_maps(rendered).values() for name, text in cm["data"].items()}
    assert found == files  # none yet (issue 6 writes them): then no ConfigMap at all


def test_dashboard_config_maps_from_json_files(tmp_path: Path) -> None:
    chart = tmp_path / "pgradar"
    shutil.copytree(CHART, chart, symlinks=False)
    folder = chart / "files" / "dashboards"
    for existing in folder.glob("*.json"):  # only this test's files
        existing.unlink()
    dashboards = {
        "pgradar-overview.json": json.dumps(
            {
                "uid": "pgradar-overview",
                "title": "pgradar / Overview",
                "panels": [{"title": '<b>p99 & "lag"</b> — µs'}],
            },
            indent=2,
        )
        + "\n",
        "pgradar_statements.json": json.dumps({"uid": "pgradar-statements", "templating": {"list": []}}),
    }
    for name, text in dashboards.items():
        (folder / name).write_text(text)
    values = {"dashboards": {"enabled": True, "folder": "PostgreSQL", "namespace": "grafana"}}
    rendered = hr.render(values, chart=chart)
    maps = dashboard_config_maps(rendered)
    assert sorted(maps) == ["pgradar-dashboard-pgradar-overview", "pgradar-dashboard-pgradar-statements"]
    assert {n: t for cm in maps.values() for n, t in cm["data"].items()} == dashboards
    for cm in maps.values():
        assert cm["metadata"]["namespace"] == "grafana"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "PostgreSQL"}
        assert hr.validate(cm) is None
    assert not dashboard_config_maps(hr.render({}, chart=chart))


# --- sidecar mode ------------------------------------------------------------------------------


def test_zalando_example_is_what_the_chart_prints() -> None:
    rendered = hr.render(VALUE_SETS["zalando-sidecar"])
    printed = sidecar_snippet(rendered.notes)["spec"]
    cluster = yaml.safe_load((EXAMPLES / "zalando" / "postgresql.yaml").read_text())
    assert cluster["kind"] == "postgresql" and cluster["apiVersion"] == "acid.zalan.do/v1"
    assert printed == {k: cluster["spec"][k] for k in ("sidecars", "additionalVolumes")}
    # the operator's Sidecar type takes these fields only
    assert {k for s in printed["sidecars"] for k in s} <= {"name", "image", "resources", "ports", "env", "command"}
    # as the operator assembles it, the container and its volumes make a valid pod
    volumes = cluster["spec"]["additionalVolumes"]
    (sidecar,) = cluster["spec"]["sidecars"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "acid-main-0"},
        "spec": {
            "containers": [
                {
                    **sidecar,
                    "volumeMounts": [
                        {"name": v["name"], "mountPath": v["mountPath"]}
                        for v in volumes
                        if sidecar["name"] in v["targetContainers"]
                    ],
                }
            ],
            "volumes": [{"name": v["name"], **v["volumeSource"]} for v in volumes],
        },
    }
    assert hr.validate(pod) is None
    assert_config_names_the_mounted_secret(rendered, pod["spec"]["containers"][0], pod["spec"]["volumes"])


def test_bitnami_example_is_what_the_chart_prints() -> None:
    rendered = hr.render(VALUE_SETS["bitnami-sidecar"])
    printed = sidecar_snippet(rendered.notes)
    values = yaml.safe_load((EXAMPLES / "bitnami" / "postgresql-values.yaml").read_text())
    assert printed == {"sidecars": values["primary"]["sidecars"], "extraVolumes": values["primary"]["extraVolumes"]}
    (sidecar,) = printed["sidecars"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "db-postgresql-0"},
        "spec": {"containers": [sidecar], "volumes": printed["extraVolumes"]},
    }
    assert hr.validate(pod) is None
    assert_config_names_the_mounted_secret(rendered, sidecar, printed["extraVolumes"])


def assert_config_names_the_mounted_secret(
    rendered: Any, container: dict[str, Any], volumes: list[dict[str, Any]]
) -> None:
    """Over localhost, and the password file is a key of the Secret the sidecar mounts."""
    config = yaml.safe_load(rendered.one("ConfigMap")["data"]["config.yaml"])
    (target,) = config["targets"]
    assert "@localhost:" in target["dsn"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "pgradar-secrets"]
    assert Path(target["password_file"]).parent == Path(mount["mountPath"])
    (volume,) = [v for v in volumes if v["name"] == "pgradar-secrets"]
    assert volume["secret"]["secretName"]
    (config_volume,) = [v for v in volumes if v["name"] == "pgradar-config"]
    assert config_volume["configMap"]["name"] == rendered.one("ConfigMap")["metadata"]["name"]


def test_sidecar_mode_selects_the_database_pods() -> None:
    values = VALUE_SETS["zalando-sidecar"]
    rendered = hr.render(values)
    assert not rendered.of_kind("Deployment") and not rendered.of_kind("ServiceAccount")
    assert rendered.one("Service")["spec"]["selector"] == values["sidecar"]["podSelector"]
    with pytest.raises(helm.HelmRenderError, match=r"networkPolicy\.enabled: the NetworkPolicy is for standalone mode"):
        hr.render(hr.merge(values, {"networkPolicy": {"enabled": True}}))


# --- bad values fail with a clear message -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('replicaCount: "two"\n', "at '/replicaCount': got string, want integer"),
        ("mode: daemonset\n", "at '/mode': value must be one of 'standalone', 'sidecar'"),
        ("config:\n  log_levl: DEBUG\n", "at '/config': additional properties 'log_levl' not allowed"),
        ("targets:\n  - {name: primary}\n", "missing property 'dsn'"),
        ("mode: sidecar\n", "at '/sidecar/podSelector'"),
        ("serviceMonitor: {enabled: yes, interval: 1min}\n", "at '/serviceMonitor/interval'"),
    ],
)
def test_bad_values_file_fails_with_the_schema_message(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    values = hr.load_values([path])
    with pytest.raises(helm.HelmValuesError) as refused:
        hr.render(values)
    assert message in str(refused.value)
    assert [p for p in hr.lint(values) if message in p], "lint reports it too"
    assert hr.main(["-f", str(path), "--output", str(tmp_path / "out.yaml")]) == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"targets": [], "pgbouncers": []}, "targets: standalone mode needs at least one target"),
        (
            {"targets": [{"name": "a", "dsn": "postgresql://x@h/db"}, {"name": "a", "dsn": "postgresql://x@i/db"}]},
            'targets[1].name: "a" is used twice',
        ),
        ({"auth": {"passwords": {"other": "pw"}}}, 'auth.passwords: no password for targets[0] (key "primary")'),
    ],
)
def test_values_the_templates_refuse(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as refused:
        hr.render(values)
    assert message in str(refused.value)


def test_render_script_writes_valid_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "manifests.yaml"
    assert hr.main(["-f", str(EXAMPLES / "standalone.yaml"), "--namespace", "monitoring", "--output", str(out)]) == 0
    docs = list(yaml.safe_load_all(out.read_text()))
    assert {d["kind"] for d in docs} >= {"Deployment", "ServiceMonitor", "PrometheusRule", "NetworkPolicy"}
    assert "lint clean" in capsys.readouterr().err


def test_render_script_names_the_kubernetes_versions_it_knows(capsys: pytest.CaptureFixture[str]) -> None:
    assert hr.main(["--kube-version", "1.9"]) == 2
    assert "knows 1.25, 1.26, " in capsys.readouterr().err
    assert hr.KUBE_VERSION in {hr.utils.major_minor(v) for v in hr.utils.all_versions()}


def test_packaged_chart_carries_the_rule_files(tmp_path: Path) -> None:
    """`helm package` follows the links: the archive holds the rule files themselves."""
    archive = Path(helm.package(str(CHART), destination=str(tmp_path)))
    assert archive.name == "pgradar-0.1.0.tgz"
    helm.expand(tmp_path / "expanded", archive)
    unpacked = tmp_path / "expanded" / "pgradar"
    assert not (unpacked / "files" / "alerts").is_symlink()
    rules = hr.render({"prometheusRule": {"enabled": True}}, chart=unpacked).of_kind("PrometheusRule")
    assert {r["metadata"]["annotations"]["pgradar.io/rule-file"]: r["spec"] for r in rules} == rule_files()


def test_helmignore_keeps_python_out_of_the_package(tmp_path: Path) -> None:
    """alerts/ is also the pgradar.alerts Python package: its code stays out of the chart."""
    chart = tmp_path / "src" / "pgradar"
    shutil.copytree(CHART, chart, symlinks=False)
    (chart / "files" / "alerts" / "__init__.py").write_text("")
    (chart / "files" / "alerts" / "__pycache__").mkdir()
    (chart / "files" / "alerts" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    archive = helm.package(str(chart), destination=str(tmp_path))
    helm.expand(tmp_path / "expanded", archive)
    packed = {p.name for p in (tmp_path / "expanded" / "pgradar" / "files").rglob("*") if p.is_file()}
    assert packed and not {n for n in packed if n.endswith((".py", ".pyc", ".gitkeep"))}
    assert {p.name for p in (ROOT / "alerts").glob("*.rules.yml")} <= packed


def test_readme_render_commands_work_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `scripts/helm_render.py` command of docs/deployment.md, run as written."""
    readme = (ROOT / "docs" / "deployment.md").read_text()
    commands = [
        line.split("#")[0].split()
        for line in readme.splitlines()
        if line.startswith(".venv/bin/python scripts/helm_render.py")
    ]
    assert len(commands) >= 2
    monkeypatch.chdir(tmp_path)
    for example in EXAMPLES.rglob("*.yaml"):  # the page's paths are relative to the repository
        (tmp_path / example.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / example.relative_to(ROOT)).write_text(example.read_text())
    (tmp_path / "build" / "chart").mkdir(parents=True)
    for words in commands:
        args = words[2:]
        if ">" in args:
            args = [*args[: args.index(">")], "--output", args[args.index(">") + 1]]
        assert hr.main(args) == 0, words
        output = tmp_path / args[args.index("--output") + 1]
        assert {d["kind"] for d in yaml.safe_load_all(output.read_text())} >= {"ConfigMap", "Service"}
    assert hr.main(["-f", "no-such-values.yaml"]) == 2


# --- custom SQL collectors: files from a ConfigMap ---------------------------------------------


def test_custom_query_files_come_from_a_config_map_the_agent_reads(tmp_path: Path) -> None:
    """postgres_exporter's queries.yaml, given as a value, reaches the agent byte for byte and is loaded."""
    text = (ROOT / "tests" / "unit" / "fixtures" / "custom_queries" / "queries.yaml").read_text()
    values = hr.merge(
        EVERYTHING,
        {
            "customQueries": {"files": {"queries.yaml": text}},
            "config": {
                "custom_queries": [
                    {
                        "name": "inline",
                        "sql": "SELECT 1 AS n",
                        "columns": [{"name": "n", "usage": "gauge", "help": "one"}],
                    }
                ]
            },
        },
    )
    rendered = hr.render(values)
    maps = {m["metadata"]["name"]: m["data"] for m in rendered.of_kind("ConfigMap")}
    assert maps["pgradar-custom-queries"] == {"queries.yaml": text}
    data = yaml.safe_load(maps["pgradar-config"]["config.yaml"])
    assert data["custom_queries"][1] == {"file": "/etc/pgradar/custom-queries/queries.yaml"}
    pod = rendered.of_kind("Deployment")[0]["spec"]["template"]
    assert {"name": "pgradar-custom-queries", "configMap": {"name": "pgradar-custom-queries"}} in pod["spec"]["volumes"]
    assert {"name": "pgradar-custom-queries", "mountPath": "/etc/pgradar/custom-queries", "readOnly": True} in pod[
        "spec"
    ]["containers"][0]["volumeMounts"]
    assert "checksum/custom-queries" in pod["metadata"]["annotations"]  # a changed file restarts the pod
    (tmp_path / "queries.yaml").write_text(maps["pgradar-custom-queries"]["queries.yaml"])  # as mounted
    data["custom_queries"][1]["file"] = str(tmp_path / "queries.yaml")
    for item in [*data["targets"], *data["pgbouncers"]]:
        item.pop("password_file")
    cfg = configuration.build(data)
    names = [q.name for q in cfg.custom_queries]
    assert names[0] == "inline" and "pg_stat_user_tables" in names and len(names) == 9


def test_custom_queries_from_an_existing_config_map() -> None:
    rendered = hr.render({"customQueries": {"existingConfigMap": "team-queries", "keys": ["a.yaml", "b.yaml"]}})
    assert not [m for m in rendered.of_kind("ConfigMap") if m["metadata"]["name"].endswith("custom-queries")]
    config = yaml.safe_load(
        next(m for m in rendered.of_kind("ConfigMap") if "config.yaml" in m["data"])["data"]["config.yaml"]
    )
    assert config["custom_queries"] == [
        {"file": "/etc/pgradar/custom-queries/a.yaml"},
        {"file": "/etc/pgradar/custom-queries/b.yaml"},
    ]
    pod = rendered.of_kind("Deployment")[0]["spec"]["template"]["spec"]
    assert {"name": "pgradar-custom-queries", "configMap": {"name": "team-queries"}} in pod["volumes"]
    assert "custom_queries" not in yaml.safe_load(
        next(m for m in hr.render({}).of_kind("ConfigMap") if "config.yaml" in m["data"])["data"]["config.yaml"]
    )


def test_shards_are_a_statefulset_of_scrape_targets_each_watching_its_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """shards: 3 renders 3 agents; pod i takes shard i of 3 from its name, and together they watch every target once."""
    values = hr.merge(
        VALUE_SETS["sharded"],
        {
            "targets": [{"name": f"db{n:02d}", "dsn": f"postgresql://m@db{n}/postgres"} for n in range(30)],
            "pgbouncers": [],
            "auth": {"existingSecret": "", "passwords": {}},
        },
    )
    rendered = hr.render(values)
    assert not rendered.of_kind("Deployment")
    sts = rendered.one("StatefulSet")
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["serviceName"] == rendered.one("Service")["metadata"]["name"]
    assert rendered.one("Service")["spec"]["clusterIP"] == "None"  # each pod is scraped at its own address
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PGRADAR_SHARD"] == "ordinal/3"
    config_file = tmp_path / "config.yaml"
    (config_map,) = [m for m in rendered.of_kind("ConfigMap") if "config.yaml" in m.get("data", {})]
    config_file.write_text(config_map["data"]["config.yaml"])
    from pgradar.agent.runtime.agent import Agent

    watched: list[str] = []
    for ordinal in range(3):
        cfg = configuration.load(
            str(config_file),
            {**env, "PGRADAR_CONFIG": str(config_file), "HOSTNAME": f"{sts['metadata']['name']}-{ordinal}"},
            configuration.Overrides(),
        )
        watched += list(Agent(cfg).runtimes)
    assert sorted(watched) == [f"db{n:02d}" for n in range(30)]
    with pytest.raises(Exception, match="shards: sharding is for standalone mode"):
        hr.render(hr.merge(VALUE_SETS["zalando-sidecar"], {"shards": 2}))
