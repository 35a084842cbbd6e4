"""Checks manifests rendered by `helm template` (read from a file).

Every built-in Kubernetes object must pass kubernetes-validate's strict
schema check for KUBE_VERSION. Beyond the schemas, the pod must be what the
chart promises: the app and hookd side by side, hookd's data on a volume
claim per replica (or, a Deployment under cluster.ack = cluster, on an
emptyDir), exec probes with `hookd healthcheck`, a preStop hook and
a termination grace longer than the preStop pause plus hookd's shutdown
grace (and, in cluster mode, its park grace), and a restrictive securityContext. Finally hookd itself must accept
the config the chart renders, checked with `hookd check-config` and the
environment the chart gives the container.

usage: check_manifests.py RENDERED.yaml HOOKD_BINARY
"""

import os
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

KUBE_VERSION = "1.33.0"
# Custom resources have no built-in schema: checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}


def fail(message):
    sys.exit(f"check_manifests: {message}")


def hookd_container(pod):
    containers = pod.get("initContainers", []) + pod["containers"]
    found = [c for c in containers if c["name"] == "hookd"]
    if len(found) != 1:
        fail("the pod has no hookd container, or more than one")
    return found[0]


def check_pod(workload):
    pod = workload["spec"]["template"]["spec"]
    if pod["containers"][0]["name"] == "hookd":
        fail("the app is not the pod's first container")
    hookd = hookd_container(pod)
    native = hookd in pod.get("initContainers", [])
    if native and hookd.get("restartPolicy") != "Always":
        fail("hookd as an init container must have restartPolicy Always (a native sidecar)")
    mounts = {m["name"]: m["mountPath"] for m in hookd["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in hookd["env"]}
    if mounts.get("hookd-data") != "/var/lib/hookd":
        fail("hookd's data is not at /var/lib/hookd")
    if workload["kind"] == "StatefulSet":
        claims = [t["metadata"]["name"] for t in workload["spec"]["volumeClaimTemplates"]]
        if "hookd-data" not in claims:
            fail("hookd's /var/lib/hookd is not a volume claim per replica")
    else:
        # A Deployment loses a pod's data with the pod: only JetStream's
        # copies (ack = cluster) make that safe.
        if env.get("HOOKD_CLUSTER__ACK") != "cluster":
            fail("a Deployment without cluster.ack = cluster would lose acknowledged events with a pod")
        volumes = {v["name"]: v for v in pod["volumes"]}
        if "emptyDir" not in volumes.get("hookd-data", {}):
            fail("the Deployment's hookd-data is not an emptyDir")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = hookd.get(probe, {}).get("exec", {}).get("command", [])
        if command[:2] != ["/usr/local/bin/hookd", "healthcheck"]:
            fail(f"hookd's {probe} is not an exec of `hookd healthcheck`")
    pause = hookd["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = int(env["HOOKD_DELIVERY__SHUTDOWN_GRACE"].rstrip("s"))
    if "HOOKD_CLUSTER__NATS_URL" in env:
        grace += int(env["HOOKD_CLUSTER__PARK_GRACE"].rstrip("s"))
    if pod["terminationGracePeriodSeconds"] <= pause + grace:
        fail("the termination grace does not cover the preStop pause, hookd's shutdown grace and (cluster mode) its park grace")
    security = hookd["securityContext"]
    if not (security.get("runAsNonRoot") and security.get("readOnlyRootFilesystem")
            and security.get("allowPrivilegeEscalation") is False
            and security.get("capabilities", {}).get("drop") == ["ALL"]):
        fail("hookd's securityContext is not restrictive")
    return hookd


def check_config(config_map, hookd, binary):
    """Runs `hookd check-config` on the rendered config, with the env the
    chart sets, secret files and secretKeyRef variables filled with
    placeholders."""
    with tempfile.TemporaryDirectory() as scratch:
        text = config_map["data"]["hookd.yaml"]
        for mount in hookd["volumeMounts"]:
            if mount["name"] == "hookd-nats-credentials":
                credentials = os.path.join(scratch, "nats")
                os.makedirs(credentials)
                for variable in hookd["env"]:
                    if variable["name"] == "HOOKD_CLUSTER__CREDENTIALS_FILE":
                        placeholder = os.path.join(credentials, os.path.basename(variable["value"]))
                        with open(placeholder, "w") as file:
                            file.write("placeholder\n")
                        variable["value"] = placeholder
            if mount["name"] == "hookd-endpoint-secrets":
                secrets = os.path.join(scratch, "secrets")
                text = text.replace(mount["mountPath"], secrets)
                os.makedirs(secrets)
                for endpoint in yaml.safe_load(text).get("endpoints", []):
                    if "secret_file" in endpoint:
                        with open(endpoint["secret_file"], "w") as file:
                            file.write("whsec_cGxhY2Vob2xkZXItc2VjcmV0LWZvci10aGUtY2hlY2s=\n")
        path = os.path.join(scratch, "hookd.yaml")
        with open(path, "w") as file:
            file.write(text)
        env = {"PATH": os.environ["PATH"]}
        for variable in hookd["env"]:
            env[variable["name"]] = variable.get("value", "placeholder-from-a-secret")
        env["HOOKD_CONFIG"] = path
        env["HOOKD_STORAGE__PATH"] = os.path.join(scratch, "data")
        result = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            fail(f"hookd refuses the rendered config:\n{result.stderr}")


def main():
    rendered, binary = sys.argv[1], sys.argv[2]
    with open(rendered) as file:
        objects = [o for o in yaml.safe_load_all(file) if o]
    by_kind = {}
    for manifest in objects:
        by_kind.setdefault(manifest["kind"], []).append(manifest)
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            fail(f"{manifest['kind']} {manifest['metadata']['name']}: {error.message} at {list(error.path)}")
    for monitor in by_kind.get("ServiceMonitor", []):
        ports = [e["port"] for e in monitor["spec"]["endpoints"]]
        if ports != ["hookd-admin"]:
            fail("the ServiceMonitor does not scrape hookd's admin port")
    (workload,) = by_kind.get("StatefulSet", []) + by_kind.get("Deployment", [])
    hookd = check_pod(workload)
    (config_map,) = by_kind["ConfigMap"]
    check_config(config_map, hookd, binary)
    kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
    print(f"check_manifests: {rendered}: {kinds}: valid for Kubernetes {KUBE_VERSION}; pod, probes and config checked")


if __name__ == "__main__":
    main()
