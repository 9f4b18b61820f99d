"""The Helm chart, checked offline: `helm lint --strict`, schema validation of every
rendered manifest against Kubernetes 1.33 (`kubernetes-validate --strict`), and the facts
operators rely on, for each storage mode.

Run by `make check-deploy` (part of `make test`): HELM, KUBERNETES_VALIDATE and PROMTOOL
name the tools. What only a real API server can show is `make test-k8s` (tests/k8s/run.py).
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
HELM = os.environ["HELM"]
KUBERNETES_VALIDATE = os.environ["KUBERNETES_VALIDATE"]
PROMTOOL = os.environ["PROMTOOL"]
KUBERNETES_VERSION = "1.33.0"

HS256_SECRET = "test-only-" + "s" * 32

# The value sets CI renders and validates: every storage mode and the optional parts.
SCENARIOS = {
    "defaults (SQLite)": [],
    "localvalues.yaml (minikube)": ["-f", str(CHART / "localvalues.yaml")],
    "in-chart PostgreSQL": ["--set", "postgresql.enabled=true"],
    "external database, existingSecret": [
        "--set", "externalDatabase.enabled=true",
        "--set", "secrets.existingSecret=randomize-prod",
        "--set", "secrets.databaseUrlKey=url",
        "--set", "secrets.jwtKey=jwt-es256.pem",
        "--set", "jwt.algorithm=ES256",
    ],
    "external database, owner role migrates, signing key": [
        "--set", "externalDatabase.enabled=true",
        "--set", "secrets.existingSecret=randomize-prod",
        "--set", "secrets.databaseUrlKey=app-url",
        "--set", "secrets.migrationUrlKey=owner-url",
        "--set", "secrets.signingKeyKey=audit-signing.pem",
    ],
    "external database, Ingress and HPA": [
        "--set", "externalDatabase.enabled=true",
        "--set", "externalDatabase.url=postgres://randomize:pw@db.example:5432/randomize",
        "--set", f"jwt.secret={HS256_SECRET}",
        "--set", "ingress.enabled=true",
        "--set", "ingress.className=nginx",
        "--set", "autoscaling.enabled=true",
    ],
    "in-chart PostgreSQL, 2 replicas, Prometheus Operator extras": [
        "--set", "postgresql.enabled=true",
        "--set", "replicaCount=2",
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.prometheusRule.enabled=true",
        "--set", "metrics.prometheusRule.databaseSizeBytes=10000000000",
    ],
}

# Custom resources of the Prometheus Operator: their CRDs are not Kubernetes schemas.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def helm(*args, check=True):
    return subprocess.run(
        [HELM, *args], capture_output=True, text=True, check=check, cwd=ROOT
    )


def template(*values):
    out = helm("template", "randomize", str(CHART), "--namespace", "local-dev", *values).stdout
    return out, [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def server(docs):
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs):
    return server(docs)["containers"][0]


def env(docs):
    return {e["name"]: e.get("value") for e in container(docs).get("env", [])}


class LintAndValidate(unittest.TestCase):
    def test_every_scenario_lints_strictly_and_validates(self):
        for name, values in SCENARIOS.items():
            with self.subTest(name):
                lint = helm("lint", "--strict", str(CHART), *values, check=False)
                self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
                _, docs = template(*values)
                self.assertTrue(docs)
                core = [d for d in docs if d["kind"] not in CUSTOM_KINDS]
                check = subprocess.run(
                    [KUBERNETES_VALIDATE, "-k", KUBERNETES_VERSION, "--strict", "--quiet", "-"],
                    input=yaml.safe_dump_all(core), capture_output=True, text=True,
                )
                self.assertEqual(check.returncode, 0, check.stdout + check.stderr)


class Workload(unittest.TestCase):
    def test_probes_lifecycle_and_grace_period(self):
        _, docs = template()
        c = container(docs)
        self.assertEqual(c["startupProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(c["lifecycle"]["preStop"]["exec"]["command"], ["sleep", "5"])
        config = one(docs, "ConfigMap")["data"]
        shutdown = int(config["SHUTDOWN_TIMEOUT"].rstrip("s"))
        self.assertGreater(server(docs)["terminationGracePeriodSeconds"], 5 + shutdown)
        self.assertIn("memory", c["resources"]["limits"])
        self.assertIn("cpu", c["resources"]["requests"])

    def test_hardened_security_context(self):
        _, docs = template()
        pod = server(docs)
        self.assertIs(pod["automountServiceAccountToken"], False)
        self.assertIs(one(docs, "ServiceAccount")["automountServiceAccountToken"], False)
        self.assertIs(pod["securityContext"]["runAsNonRoot"], True)
        self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
        self.assertEqual(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
        sc = container(docs)["securityContext"]
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        self.assertIn("emptyDir", tmp)
        self.assertIn({"name": "tmp", "mountPath": "/tmp"}, container(docs)["volumeMounts"])

    def test_config_checksum_rolls_pods_when_settings_change(self):
        def checksum(*values):
            _, docs = template(*values)
            return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"][
                "checksum/config"
            ]

        self.assertEqual(checksum(), checksum())
        self.assertNotEqual(checksum(), checksum("--set", "config.logLevel=debug"))


    def test_audit_retention_is_off_unless_set(self):
        def config(*values):
            _, docs = template(*values)
            return one(docs, "ConfigMap")["data"]

        self.assertNotIn("AUDIT_RETENTION", config())
        self.assertEqual(config("--set", "audit.retention=30d")["AUDIT_RETENTION"], "30d")
        refused = helm("template", "t", str(CHART), "--set", "audit.retention=soon", check=False)
        self.assertNotEqual(refused.returncode, 0)


class SqliteMode(unittest.TestCase):
    def test_pvc_single_replica_recreate(self):
        _, docs = template("--set", "replicaCount=5")
        deployment = one(docs, "Deployment")
        self.assertEqual(deployment["spec"]["replicas"], 1, "SQLite forces one replica")
        self.assertEqual(deployment["spec"]["strategy"]["type"], "Recreate")
        pvc = one(docs, "PersistentVolumeClaim")
        self.assertEqual(pvc["spec"]["accessModes"], ["ReadWriteOnce"])
        data = next(v for v in server(docs)["volumes"] if v["name"] == "data")
        self.assertEqual(data["persistentVolumeClaim"]["claimName"], pvc["metadata"]["name"])
        self.assertIn(
            {"name": "data", "mountPath": "/var/opt/myapp/instance"}, container(docs)["volumeMounts"]
        )
        self.assertEqual(
            one(docs, "ConfigMap")["data"]["DATABASE_URL"],
            "sqlite:///var/opt/myapp/instance/randomize.sqlite3",
        )
        self.assertEqual(by_kind(docs, "StatefulSet"), [])
        self.assertEqual(by_kind(docs, "HorizontalPodAutoscaler"), [])

    def test_autoscaling_on_sqlite_is_refused(self):
        result = helm("template", "randomize", str(CHART), "--set", "autoscaling.enabled=true", check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("autoscaling needs PostgreSQL", result.stderr)


class PostgresqlModes(unittest.TestCase):
    def test_in_chart_postgresql(self):
        _, docs = template("--set", "postgresql.enabled=true")
        self.assertEqual(by_kind(docs, "PersistentVolumeClaim"), [], "no app PVC")
        self.assertNotIn("data", [v["name"] for v in server(docs)["volumes"]])
        statefulset = one(docs, "StatefulSet")
        self.assertEqual(len(statefulset["spec"]["volumeClaimTemplates"]), 1)
        self.assertEqual(one(docs, "Deployment")["spec"]["strategy"]["type"], "RollingUpdate")
        self.assertNotIn("DATABASE_URL", one(docs, "ConfigMap")["data"])
        # The app's Service must not select the PostgreSQL pod, and vice versa.
        selector = next(
            s for s in by_kind(docs, "Service") if "postgresql" not in s["metadata"]["name"]
        )["spec"]["selector"]
        pg_labels = statefulset["spec"]["template"]["metadata"]["labels"]
        self.assertFalse(all(pg_labels.get(k) == v for k, v in selector.items()))
        secret = one(docs, "Secret")
        self.assertEqual(set(secret["data"]), {"postgres-password", "database-url"})

    def test_secrets_are_mounted_as_files_never_env_values(self):
        rendered, docs = template(
            "--set", "externalDatabase.enabled=true",
            "--set", "externalDatabase.url=postgres://u:hunter2@db/x",
            "--set", f"jwt.secret={HS256_SECRET}",
        )
        variables = env(docs)
        self.assertEqual(variables["DATABASE_URL_FILE"], "/var/run/secrets/randomize/database-url")
        self.assertEqual(variables["JWT_SECRET_FILE"], "/var/run/secrets/randomize/jwt-secret")
        mount = next(m for m in container(docs)["volumeMounts"] if m["name"] == "secrets")
        self.assertIs(mount["readOnly"], True)
        volume = next(v for v in server(docs)["volumes"] if v["name"] == "secrets")
        paths = {
            item["path"] for source in volume["projected"]["sources"] for item in source["secret"]["items"]
        }
        self.assertEqual(paths, {"database-url", "jwt-secret"})
        for doc in docs:
            if doc["kind"] != "Secret":
                text = yaml.safe_dump(doc)
                self.assertNotIn("hunter2", text)
                self.assertNotIn(HS256_SECRET, text)

    def test_existing_secret_renders_no_secret(self):
        _, docs = template(*SCENARIOS["external database, existingSecret"])
        self.assertEqual(by_kind(docs, "Secret"), [])
        volume = next(v for v in server(docs)["volumes"] if v["name"] == "secrets")
        items = {
            (source["secret"]["name"], item["key"], item["path"])
            for source in volume["projected"]["sources"]
            for item in source["secret"]["items"]
        }
        self.assertEqual(
            items,
            {
                ("randomize-prod", "url", "database-url"),
                ("randomize-prod", "jwt-es256.pem", "jwt-public-key"),
            },
        )
        self.assertEqual(env(docs)["JWT_PUBLIC_KEY_FILE"], "/var/run/secrets/randomize/jwt-public-key")

    def test_owner_role_migrates_in_an_init_container_the_app_never_sees(self):
        _, docs = template(*SCENARIOS["external database, owner role migrates, signing key"])
        spec = server(docs)
        [init] = spec["initContainers"]
        self.assertEqual(init["command"], ["randomize", "migrate"])
        init_env = {e["name"]: e["value"] for e in init["env"]}
        self.assertEqual(
            init_env["MIGRATION_DATABASE_URL_FILE"],
            "/var/run/secrets/randomize-migrate/migration-database-url",
        )
        self.assertEqual(env(docs)["RUN_MIGRATIONS"], "false")
        self.assertEqual(
            env(docs)["AUDIT_SIGNING_KEY_FILE"], "/var/run/secrets/randomize/audit-signing-key"
        )
        app_mounts = {m["name"] for m in container(docs)["volumeMounts"]}
        self.assertNotIn("migration-secret", app_mounts, "the app never mounts the owner's URL")
        volumes = {v["name"]: v for v in spec["volumes"]}
        owner = {
            (source["secret"]["name"], item["key"])
            for source in volumes["migration-secret"]["projected"]["sources"]
            for item in source["secret"]["items"]
        }
        self.assertEqual(owner, {("randomize-prod", "owner-url")})
        app = {
            item["key"]
            for source in volumes["secrets"]["projected"]["sources"]
            for item in source["secret"]["items"]
        }
        self.assertEqual(app, {"app-url", "audit-signing.pem"})
        config = one(docs, "ConfigMap")["data"]
        self.assertEqual(config["CHECKPOINT_INTERVAL"], "60s")
        # Without a migration role nothing changes: the entrypoint migrates as the app.
        _, plain = template(*SCENARIOS["external database, Ingress and HPA"])
        self.assertNotIn("initContainers", server(plain))
        self.assertNotIn("RUN_MIGRATIONS", env(plain))

    def test_inline_signing_key_and_migration_url_stay_in_the_secret(self):
        key = "-----BEGIN PRIVATE KEY-----\ntest-only\n-----END PRIVATE KEY-----"
        _, docs = template(
            "--set", "externalDatabase.enabled=true",
            "--set", "externalDatabase.url=postgres://app:pw@db/x",
            "--set", "externalDatabase.migrationUrl=postgres://owner:s3cret@db/x",
            "--set-string", f"audit.signingKey={key}",
        )
        secret = one(docs, "Secret")["data"]
        self.assertIn("audit-signing-key", secret)
        self.assertIn("migration-database-url", secret)
        for doc in docs:
            if doc["kind"] != "Secret":
                self.assertNotIn("s3cret", yaml.safe_dump(doc))
                self.assertNotIn("test-only", yaml.safe_dump(doc))

    def test_ingress_and_hpa(self):
        _, docs = template(*SCENARIOS["external database, Ingress and HPA"])
        self.assertNotIn("replicas", one(docs, "Deployment")["spec"], "the HPA owns replicas")
        hpa = one(docs, "HorizontalPodAutoscaler")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], one(docs, "Deployment")["metadata"]["name"])
        backend = one(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        self.assertEqual(backend["port"]["name"], "http")

    def test_contradictory_or_missing_database_values_are_refused(self):
        both = helm(
            "template", "r", str(CHART),
            "--set", "postgresql.enabled=true", "--set", "externalDatabase.enabled=true",
            check=False,
        )
        self.assertIn("choose one of", both.stderr)
        no_url = helm("template", "r", str(CHART), "--set", "externalDatabase.enabled=true", check=False)
        self.assertIn("externalDatabase.enabled needs", no_url.stderr)
        typo = helm("template", "r", str(CHART), "--set", "replicaCont=3", check=False)
        self.assertNotEqual(typo.returncode, 0, "values.schema.json rejects unknown keys")


def pg_template(*values):
    return template("--set", "postgresql.enabled=true", *values)[1]


def annotations(doc):
    return doc["spec"]["template"]["metadata"]["annotations"]


class WhatARealClusterFound(unittest.TestCase):
    """The defects `make test-k8s` found on the 1.20 lab, kept from coming back offline."""

    def test_every_port_names_its_protocol(self):
        # Server-side apply refuses a Service port without `protocol` (a list-map key).
        for name, values in SCENARIOS.items():
            _, docs = template(*values)
            for doc in docs:
                with self.subTest(name, kind=doc["kind"]):
                    if doc["kind"] == "Service":
                        for port in doc["spec"]["ports"]:
                            self.assertEqual(port.get("protocol"), "TCP", port)
                    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
                    for c in spec.get("containers", []) + spec.get("initContainers", []):
                        for port in c.get("ports", []):
                            self.assertEqual(port.get("protocol"), "TCP", port)

    def test_secret_checksums_are_stable_and_move_only_their_own_pods(self):
        def checksums(*values):
            docs = pg_template(*values)
            return (annotations(one(docs, "Deployment"))["checksum/secret"],
                    annotations(one(docs, "StatefulSet"))["checksum/secret"])

        # Generated passwords (randAlphaNum) must not reach the checksums: each render would
        # differ and the first `helm upgrade` would restart everything for nothing.
        self.assertEqual(checksums(), checksums())
        server, postgres = checksums()
        changed = checksums("--set", f"jwt.secret={HS256_SECRET}")
        self.assertNotEqual(changed[0], server)
        self.assertEqual(changed[1], postgres, "a JWT change must not restart PostgreSQL")
        self.assertNotEqual(checksums("--set", "postgresql.password=pw-of-the-operator")[1], postgres)

    def test_old_clusters_are_refused_and_1_20_gets_its_api_versions(self):
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        self.assertIn("kubeVersion", chart)
        old = helm("template", "r", str(CHART), "--kube-version", "1.19.0", check=False)
        self.assertNotEqual(old.returncode, 0)
        self.assertIn("kubeVersion", old.stderr)
        _, docs = template("--kube-version", "1.20.0", "--set", "externalDatabase.enabled=true",
                           "--set", "externalDatabase.url=postgres://u:p@db:5432/r",
                           "--set", "replicaCount=2", "--set", "autoscaling.enabled=true")
        self.assertEqual(one(docs, "PodDisruptionBudget")["apiVersion"], "policy/v1beta1")
        self.assertEqual(one(docs, "HorizontalPodAutoscaler")["apiVersion"], "autoscaling/v2beta2")
        _, docs = template("--set", "externalDatabase.enabled=true",
                           "--set", "externalDatabase.url=postgres://u:p@db:5432/r",
                           "--set", "replicaCount=2", "--set", "autoscaling.enabled=true")
        self.assertEqual(one(docs, "PodDisruptionBudget")["apiVersion"], "policy/v1")
        self.assertEqual(one(docs, "HorizontalPodAutoscaler")["apiVersion"], "autoscaling/v2")

    def test_workers_follow_the_cpu_request_not_the_node(self):
        def workers(*values):
            _, docs = template(*values)
            return one(docs, "ConfigMap")["data"]["WORKERS"]

        self.assertEqual(workers("--set", "resources.requests.cpu=250m"), "1")
        self.assertEqual(workers("--set", "resources.requests.cpu=1500m"), "2")
        self.assertEqual(workers("--set", "resources.requests.cpu=4"), "4")
        self.assertEqual(workers("--set", "config.workers=3"), "3")

    def test_extra_env_reaches_the_server(self):
        _, docs = template("--set", "extraEnv[0].name=RUST_BACKTRACE", "--set-string", "extraEnv[0].value=1")
        self.assertEqual(env(docs).get("RUST_BACKTRACE"), "1")

    def test_in_chart_postgresql_survives_a_long_recovery_and_admits_only_the_server(self):
        docs = pg_template()
        pg = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
        startup = pg["startupProbe"]
        self.assertGreaterEqual(startup["periodSeconds"] * startup["failureThreshold"], 300)
        self.assertNotIn("initialDelaySeconds", pg["livenessProbe"])
        policy = one(docs, "NetworkPolicy")
        self.assertEqual(policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
                         "postgresql")
        admitted = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        self.assertEqual(admitted, one(docs, "Deployment")["spec"]["selector"]["matchLabels"])
        self.assertEqual(policy["spec"]["ingress"][0]["ports"], [{"port": 5432, "protocol": "TCP"}])
        self.assertEqual(by_kind(pg_template("--set", "postgresql.networkPolicy.enabled=false"),
                                 "NetworkPolicy"), [])


class ProductionKnobs(unittest.TestCase):
    def test_disruption_budget_only_where_it_can_hold(self):
        self.assertEqual(by_kind(template()[1], "PodDisruptionBudget"), [], "SQLite: one pod")
        self.assertEqual(by_kind(pg_template("--set", "replicaCount=1"), "PodDisruptionBudget"), [],
                         "one replica")
        docs = pg_template("--set", "replicaCount=3")
        pdb = one(docs, "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"],
                         one(docs, "Deployment")["spec"]["selector"]["matchLabels"])
        self.assertEqual(by_kind(pg_template("--set", "replicaCount=3", "--set", "pdb.enabled=false"),
                                 "PodDisruptionBudget"), [])

    def test_rate_limit_is_off_unless_set_and_checked(self):
        def config(*values):
            return one(template(*values)[1], "ConfigMap")["data"]

        self.assertEqual(config()["RATE_LIMIT"], "")
        self.assertEqual(config("--set", "config.rateLimit=200/s")["RATE_LIMIT"], "200/s")
        self.assertEqual(config()["REQUEST_TIMEOUT"], "10s")
        bad = helm("template", "r", str(CHART), "--set", "config.rateLimit=lots", check=False)
        self.assertNotEqual(bad.returncode, 0, "the schema refuses what RATE_LIMIT would")

    def test_replicas_spread_over_nodes_and_zones(self):
        self.assertNotIn("topologySpreadConstraints", server(template()[1]), "SQLite: one pod")
        spread = server(pg_template("--set", "replicaCount=2"))["topologySpreadConstraints"]
        self.assertEqual({c["topologyKey"] for c in spread},
                         {"kubernetes.io/hostname", "topology.kubernetes.io/zone"})
        self.assertTrue(all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in spread))

    def test_image_digest_pins_every_container(self):
        digest = "sha256:" + "ab" * 32
        docs = pg_template("--set", f"image.digest={digest}")
        pod = server(docs)
        for c in pod["containers"] + pod.get("initContainers", []):
            self.assertTrue(c["image"].endswith(f"@{digest}"), c["image"])
            self.assertNotIn(":" + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] + "@",
                             c["image"])

    def test_security_contexts_are_settable(self):
        _, docs = template("--set", "podSecurityContext.runAsUser=20000",
                           "--set", "podSecurityContext.fsGroup=20000",
                           "--set", "containerSecurityContext.runAsGroup=20000")
        self.assertEqual(server(docs)["securityContext"]["runAsUser"], 20000)
        self.assertEqual(server(docs)["securityContext"]["fsGroup"], 20000)
        self.assertEqual(container(docs)["securityContext"]["runAsGroup"], 20000)
        pg = one(pg_template("--set", "postgresql.podSecurityContext.runAsUser=30000"), "StatefulSet")
        self.assertEqual(pg["spec"]["template"]["spec"]["securityContext"]["runAsUser"], 30000)


class PrometheusOperator(unittest.TestCase):
    VALUES = ["--set", "metrics.serviceMonitor.enabled=true",
              "--set", "metrics.prometheusRule.enabled=true",
              "--set", "metrics.prometheusRule.databaseSizeBytes=1000000"]

    def test_off_by_default(self):
        _, docs = template()
        self.assertEqual([d for d in docs if d["kind"] in CUSTOM_KINDS], [])

    def test_service_monitor_scrapes_the_metrics_endpoint(self):
        _, docs = template(*self.VALUES)
        monitor = one(docs, "ServiceMonitor")
        service = one(docs, "Service")
        labels = service["metadata"]["labels"]
        for key, value in monitor["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(key), value)
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"])
        self.assertEqual(monitor["spec"]["endpoints"][0]["path"], "/metrics")

    def test_alerts_fire_when_they_should_and_only_then(self):
        """tests/deploy/alerts.test.yaml through `promtool test rules`, on the rendered groups."""
        _, docs = template(*self.VALUES)
        groups = one(docs, "PrometheusRule")["spec"]
        with tempfile.TemporaryDirectory() as tmp:
            rules = Path(tmp) / "rules.yaml"
            rules.write_text(yaml.safe_dump(groups))
            shutil.copy(ROOT / "tests" / "deploy" / "alerts.test.yaml", tmp)
            check = subprocess.run([PROMTOOL, "check", "rules", str(rules)],
                                   capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            test = subprocess.run([PROMTOOL, "test", "rules", "alerts.test.yaml"],
                                  capture_output=True, text=True, cwd=tmp)
            self.assertEqual(test.returncode, 0, test.stdout + test.stderr)
        alerts = {r["alert"] for g in groups["groups"] for r in g["rules"]}
        tested = (ROOT / "tests" / "deploy" / "alerts.test.yaml").read_text()
        for alert in alerts:
            self.assertIn(f"alertname: {alert}", tested, f"{alert} has no promtool test")


class Operators(unittest.TestCase):
    def test_helm_test_pod_round_trips_with_a_pinned_image(self):
        _, docs = template()
        pod = one(docs, "Pod")
        self.assertEqual(pod["metadata"]["annotations"]["helm.sh/hook"], "test")
        image = pod["spec"]["containers"][0]["image"]
        self.assertRegex(image, r":[0-9]+\.[0-9]+\.[0-9]+$|@sha256:")
        script = pod["spec"]["containers"][0]["command"][-1]
        self.assertIn("POST", script)
        self.assertIn('"original":"helm-test"', script)

    def test_notes_name_the_port_forward_for_local_dev(self):
        out = helm(
            "install", "randomize", str(CHART), "--dry-run=client",
            "--namespace", "local-dev", "-f", str(CHART / "localvalues.yaml"),
        ).stdout
        notes = out[out.index("NOTES:"):]
        self.assertIn("kubectl --namespace local-dev port-forward service/randomize 8080:5000", notes)
        self.assertIn("helm test randomize --namespace local-dev", notes)

    def test_localvalues_never_pull(self):
        _, docs = template("-f", str(CHART / "localvalues.yaml"))
        c = container(docs)
        self.assertEqual(c["imagePullPolicy"], "Never")
        self.assertTrue(c["image"].startswith("my/app:"))

    def test_every_value_is_documented(self):
        documented = {
            line.split()[2]
            for line in (CHART / "values.yaml").read_text().splitlines()
            if line.startswith("## @param ")
        }

        def leaves(node, prefix=""):
            for key, value in node.items():
                path = f"{prefix}{key}"
                if isinstance(value, dict) and value and path + "" not in documented:
                    yield from leaves(value, path + ".")
                else:
                    yield path

        values = yaml.safe_load((CHART / "values.yaml").read_text())
        undocumented = [p for p in leaves(values) if p not in documented]
        self.assertEqual(undocumented, [])
        schema = json.loads((CHART / "values.schema.json").read_text())
        self.assertEqual(set(values), set(schema["properties"]), "schema covers every value")


if __name__ == "__main__":
    unittest.main()
