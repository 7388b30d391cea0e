#!/usr/bin/python3
"""Checks ops/ without Docker: every YAML and JSON file parses; images are pinned; the
metrics port is the same in the Dockerfile, docker-compose, Prometheus and Kubernetes; the
probes use /healthz and /readyz; files mounted by docker-compose exist. With
--exported FILE (sample names scraped from a running herald, one per line), every herald_*
metric that an alert or a dashboard panel uses must be one of them.
Prints 'N passed, N failed' and exits 1 on any failure."""
import argparse
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = os.path.join(ROOT, "ops")
failures = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)


def load_yaml(path, multi=False):
    with open(os.path.join(OPS, path)) as f:
        return list(yaml.safe_load_all(f)) if multi else yaml.safe_load(f)


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--exported", help="file with the sample names a live herald exports")
    args = parser.parse_args()

    compose = load_yaml("docker-compose.yml")
    prometheus = load_yaml("prometheus/prometheus.yml")
    alerts = load_yaml("prometheus/alerts.yml")
    k8s = [d for d in load_yaml("kubernetes/deployment.yaml", multi=True) if d]
    secret = load_yaml("kubernetes/secret.example.yaml")
    for p in ["grafana/provisioning/datasources/prometheus.yml", "grafana/provisioning/dashboards/herald.yml"]:
        check(isinstance(load_yaml(p), dict), f"{p} parses to a mapping")
    with open(os.path.join(OPS, "grafana/dashboards/herald.json")) as f:
        dashboard = json.load(f)

    services = compose["services"]
    for name in ["kafka", "redis", "postgres", "mailpit", "prometheus", "grafana", "herald"]:
        check(name in services, f"docker-compose has service {name}")
    for name, s in services.items():
        if "image" in s:
            image = s["image"]
            check(":" in image and not image.endswith(":latest"), f"{name}: image {image} is pinned")
    check(services["kafka"]["environment"].get("KAFKA_PROCESS_ROLES") == "broker,controller", "kafka runs in KRaft mode")
    herald = services["herald"]
    check(os.path.exists(os.path.join(OPS, herald["build"]["context"], herald["build"]["dockerfile"])), "herald's Dockerfile exists")
    with open(os.path.join(OPS, "Dockerfile")) as f:
        dockerfile = f.read()
    exposed = int(re.search(r"^EXPOSE (\d+)", dockerfile, re.M).group(1))
    http = port_of(herald["environment"]["HERALD_HTTP_ADDRESS"])
    check(http == exposed, f"compose HERALD_HTTP_ADDRESS port {http} == Dockerfile EXPOSE {exposed}")
    check(f"{http}:{http}" in herald.get("ports", []), "compose publishes herald's metrics port")
    targets = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    check(f"herald:{http}" in targets, f"prometheus scrapes herald:{http}")
    check(services["herald"]["environment"]["HERALD_KAFKA_BROKERS"] == "kafka:9092", "herald points at the compose broker")
    check(services["herald"]["environment"]["HERALD_SMTP_URL"].startswith("smtp://mailpit:"), "herald sends to mailpit")
    for name in ["prometheus", "grafana"]:
        for volume in services[name].get("volumes", []):
            source = volume.split(":", 1)[0]
            check(os.path.exists(os.path.join(OPS, source)), f"{name} mounts {source}, which exists")
    rule_files = prometheus.get("rule_files", [])
    check(any(r.endswith("alerts.yml") for r in rule_files), "prometheus loads alerts.yml")

    deployment = next(d for d in k8s if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    check(port_of(env["HERALD_HTTP_ADDRESS"]) == exposed, "kubernetes HERALD_HTTP_ADDRESS matches EXPOSE")
    check(container["ports"][0]["containerPort"] == exposed, "kubernetes containerPort matches EXPOSE")
    check(container["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe on /healthz")
    check(container["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe on /readyz")
    check("limits" in container["resources"] and "requests" in container["resources"], "resources have requests and limits")
    check(any("secretRef" in e for e in container.get("envFrom", [])), "configuration comes from a Secret")
    check(secret["kind"] == "Secret" and secret["metadata"]["name"] == container["envFrom"][0]["secretRef"]["name"], "the Secret's name matches")

    expressions = [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    alert_names = {r["alert"] for g in alerts["groups"] for r in g["rules"]}
    for wanted in ["HeraldConsumerLagHigh", "HeraldPartitionStalled", "HeraldPartitionWaitingOnDependency", "HeraldDeadLettersGrowing", "HeraldMailAbandoned", "HeraldMailQueueOld", "HeraldNotReady"]:
        check(wanted in alert_names, f"alert {wanted} exists")
    expressions += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = sorted({m for e in expressions for m in re.findall(r"\bherald_[a-z0-9_]+", e)})
    check(len(used) >= 10, f"alerts and panels use herald metrics ({len(used)})")
    if args.exported:
        with open(args.exported) as f:
            exported = {line.strip() for line in f if line.strip()}
        for name in used:
            check(name in exported, f"{name} (used by an alert or a panel) is exported by herald")

    for f in failures:
        print(f"FAIL: {f}")
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
