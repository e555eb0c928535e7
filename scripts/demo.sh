#!/usr/bin/env bash
# The most complete end-to-end scenario Strata can run so far:
#  1. an undercloud on an embedded etcd, a rack of fake-hardware nodes
#     imported from a TripleO instackenv.json, and their whole life through
#     Ironic's provision states, driven by the strata CLI and checked with
#     the real openstack CLI;
#  2. a lab: qemu VMs behind virtual IPMI and Redfish BMCs in network
#     namespaces, with the undercloud in a namespace of its own; the nodes
#     are imported and managed (real BMC credential checks) and inspected:
#     powered on through their BMCs, they network-boot from the
#     undercloud (DHCP, TFTP for UEFI, HTTP) into the deploy ramdisk, whose
#     agent reports their hardware; then provided: the agent erases their
#     disks' metadata and they become available; then node-1 is deployed
#     with a test image and a config drive; it boots from its disk and
#     prints the meta_data.json it reads from the drive.
# Each step prints its time.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
NODES=${STRATA_DEMO_NODES:-12}

work=$(mktemp -d /tmp/strata-demo.XXXXXX)
daemon_pid=""
lab_up=""
export STRATA_LAB=demo STRATA_LAB_DIR=$work/labs
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if [ -n "$lab_up" ]; then
    "$BIN/strata" lab down >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

demo_start=$(date +%s.%N)
step_start=0
step() {
  step_start=$(date +%s.%N)
  printf '\n\033[1m==> %s\033[0m\n' "$*"
}
done_step() {
  local now
  now=$(date +%s.%N)
  printf '    (%.2fs)\n' "$(echo "$now - $step_start" | bc)"
}

step "Start the undercloud (embedded etcd, Ironic-compatible API and an OCI registry on loopback)"
printf 'registry:\n  listen: 127.0.0.1:0\n' >"$work/undercloud.yaml"
"$BIN/undercloud" run --data-dir "$work/undercloud" --listen 127.0.0.1:0 --config "$work/undercloud.yaml" \
  --conductor-name demo --log-format text --log-level warn 2>"$work/undercloud.log" &
daemon_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/undercloud/api.addr" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/undercloud.log"; exit 1; }
  sleep 0.1
done
addr=$(cat "$work/undercloud/api.addr")
export OS_AUTH_TYPE=none OS_ENDPOINT=http://$addr STRATA_POLL_INTERVAL=100ms
echo "    undercloud pid $daemon_pid, API at $OS_ENDPOINT"
curl -fsS "$OS_ENDPOINT/" | python3 -c 'import json,sys; v=json.load(sys.stdin)["default_version"]; print("    API versions", v["min_version"], "to", v["version"])'
done_step

step "Write an instackenv.json for $NODES fake-hardware nodes"
python3 - "$NODES" >"$work/instackenv.json" <<'PY'
import json, sys
n = int(sys.argv[1])
nodes = []
for i in range(n):
    nodes.append({
        "name": f"node-{i}",
        "pm_type": "fake-hardware",
        "ports": [{"address": f"52:54:00:aa:{i // 256:02x}:{i % 256:02x}", "physical_network": "ctlplane"}],
        "cpu": 4, "memory": 8192, "disk": 40, "arch": "x86_64",
        "capabilities": "profile:compute,boot_mode:uefi" if i % 3 else "profile:control,boot_mode:uefi",
    })
json.dump({"nodes": nodes}, sys.stdout, indent=1)
PY
echo "    $work/instackenv.json"
done_step

step "strata node import instackenv.json"
"$BIN/strata" node import "$work/instackenv.json" | tail -n 4
done_step

step "strata node manage --all --wait   (enroll → verifying → manageable)"
"$BIN/strata" node manage --all --wait 120 | tail -n 3
done_step

step "strata node inspect --all --wait  (manageable → inspecting → manageable)"
"$BIN/strata" node inspect --all --wait 120 | tail -n 3
done_step

step "strata node provide --all --wait  (manageable → cleaning → available)"
"$BIN/strata" node provide --all --wait 120 | tail -n 3
done_step

step "Deploy node-0 and node-1 (available → deploying → active)"
for n in node-0 node-1; do
  "$BIN/strata" node set "$n" --instance-info image_source=http://192.168.24.1:8088/overcloud.raw \
    --instance-info image_checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000
done
"$BIN/strata" node deploy node-0 node-1 --wait 120
done_step

step "openstack baremetal node list   (the real python-ironicclient, same API)"
/usr/bin/openstack baremetal node list --sort name
done_step

step "An active node can not be deleted (Ironic's rule, a clear error)"
"$BIN/strata" node delete node-0 || echo "    refused, as it should be"
done_step

step "strata node undeploy node-0 --wait (active → deleting → cleaning → available)"
"$BIN/strata" node undeploy node-0 --wait 120
done_step

step "strata node history node-0"
"$BIN/strata" node history node-0
done_step

step "Restart the undercloud: every node keeps its state (it is all in etcd)"
before=$("$BIN/strata" node list -f value -c name -c provision_state | sort)
kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
rm -f "$work/undercloud/api.addr"
"$BIN/undercloud" run --data-dir "$work/undercloud" --listen 127.0.0.1:0 --config "$work/undercloud.yaml" \
  --conductor-name demo --log-format text --log-level warn 2>>"$work/undercloud.log" &
daemon_pid=$!
for _ in $(seq 1 300); do [ -s "$work/undercloud/api.addr" ] && break; sleep 0.1; done
export OS_ENDPOINT=http://$(cat "$work/undercloud/api.addr")
after=$("$BIN/strata" node list -f value -c name -c provision_state | sort)
if [ "$before" = "$after" ]; then echo "    all $NODES nodes as they were"; else echo "    state changed across restart"; exit 1; fi
done_step

step "strata overcloud validate   (roles and networks checked, then matched to the available nodes by profile)"
# The demo cloud: a controller with etcd, identity and the network API;
# two compute nodes with the L2 agent. (strata overcloud roles generate
# prints the shipped roles to start from.)
cat >"$work/roles.yaml" <<'YAML'
- name: Controller
  count: 1
  match: {profile: control}
  networks: [External, InternalApi]
  services: [etcd, identity, network-api]
- name: Compute
  count: 2
  match: {profile: compute}
  networks: [InternalApi, Tenant]
  services: [network-l2-agent]
YAML
"$BIN/strata" overcloud networks generate >"$work/networks.yaml"
"$BIN/strata" overcloud validate --roles "$work/roles.yaml" --networks "$work/networks.yaml" -c hostname -c role -c node
done_step

step "strata container image build   (the overcloud's service images, into the undercloud's registry)"
export STRATA_REGISTRY=$(cat "$work/undercloud/registry.addr")
"$BIN/strata" container image build --version demo -c service -c digest -c size
"$BIN/strata" container image list
done_step

kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
unset OS_AUTH_TYPE OS_ENDPOINT

step "strata lab up   (namespaces, bridges, 2 qemu VMs: node-0 SeaBIOS behind IPMI, node-1 UEFI behind Redfish; an undercloud)"
lab_up=1
cat >"$work/lab.yaml" <<'YAML'
nodes:
  - {name: node-0, bmc: ipmi, firmware: bios, cpus: 1, memory_mb: 512}
  - {name: node-1, bmc: redfish, firmware: uefi, cpus: 2, memory_mb: 1536,
     disks: [{size: 4GiB, serial: node-1-disk0}, {size: 8GiB, serial: node-1-disk1}]}
YAML
"$BIN/strata" lab up "$work/lab.yaml"
eval "$("$BIN/strata" lab env)"
lab_prefix=$("$BIN/strata" lab status -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["prefix"])')
done_step

step "strata lab status"
"$BIN/strata" lab status
done_step

step "strata node import the lab's instackenv.json (node-0 on IPMI, node-1 on Redfish)"
"$BIN/strata" node import "$STRATA_LAB_DIR/demo/instackenv.json"
done_step

step "strata node manage --all --wait   (the undercloud checks each BMC: ipmitool, gofish)"
"$BIN/strata" node manage --all --wait 300
done_step

step "strata node inspect --all --wait   (PXE through the BMCs → DHCP → iPXE → the deploy ramdisk's agent reports the hardware)"
"$BIN/strata" node inspect --all --wait 600
done_step

step "node-1's serial console: UEFI PXE fetches iPXE over TFTP, iPXE chains the undercloud's script over HTTP, the agent comes up"
"$BIN/strata" lab console node-1 | tr -d '\r' | grep -a -E "PXE over|NBP filename|Filename:|booting the deploy|deploy\.(kernel|initramfs)|strata-agent:" | head -14 || true
done_step

step "What inspection found: the nodes' properties, node-1's inventory and the ports it created"
"$BIN/strata" node list -c name -c provision_state -c power_state
for n in node-0 node-1; do
  echo "    $n: $("$BIN/strata" node show $n -f json -c properties | python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"])')"
done
"$BIN/strata" node inventory node-1
"$BIN/strata" port list
done_step

step "strata node provide --all --wait   (cleaning: the ramdisk's agent erases the disks' partition tables and signatures)"
"$BIN/strata" node provide --all --wait 600
"$BIN/strata" lab console node-0 | tr -d '\r' | grep -a -E "strata-agent: (clean|erased)" | head -4 || true
"$BIN/strata" node list -c name -c provision_state -c power_state
done_step

step "strata node deploy node-1 --config-drive ... --wait   (the agent writes the lab's test image and a config drive; node-1 reboots from its disk)"
img_url=$("$BIN/strata" lab status -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["test_image_url"])')
img_sha=$("$BIN/strata" lab status -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["test_image_sha256"])')
echo "    image_source=$img_url"
/usr/bin/openstack baremetal node set node-1 --instance-info image_source="$img_url" \
  --instance-info image_os_hash_algo=sha256 --instance-info image_os_hash_value="$img_sha"
# The user data (the test image runs it, as cloud-init would) writes the
# same image onto node-1's spare disk with busybox's wget and dd: the
# agent's rate beside dd's.
drive=$(IMG="$img_url" python3 -c 'import json,os
script = "#!/bin/sh\necho wget and dd of the image onto /dev/vdb:\ntime -p sh -c \"wget -q -O - %s | dd of=/dev/vdb bs=4M conv=fsync\"\n" % os.environ["IMG"]
print(json.dumps({"meta_data": {"public_keys": {"demo": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIdemo demo"}}, "user_data": script}))')
"$BIN/strata" node deploy node-1 --wait 900 --config-drive "$drive"
for _ in $(seq 1 900); do
  "$BIN/strata" lab console node-1 2>/dev/null | grep -a -q -E "STRATA-TEST-IMAGE: (user data: exit|no config drive)" && break
  sleep 1
done
"$BIN/strata" lab console node-1 | tr -d '\r' | grep -a -E "strata-agent: (writing|wrote|deploy)|STRATA-TEST-IMAGE|wget and dd|^real " | tail -10 || true
"$BIN/strata" node list -c name -c provision_state -c power_state
done_step

step "strata lab down   (removes every namespace, bridge, tap and process)"
"$BIN/strata" lab down
lab_up=""
# The lab's namespaces all start with its prefix; other labs may come and
# go on this machine meanwhile.
left=$(ip netns list | awk '{print $1}' | grep -c "^$lab_prefix-" || true)
echo "    namespaces the lab made that are left: $left"
[ "$left" -eq 0 ]
done_step

printf '\n\033[1mDemo finished in %.1fs\033[0m\n' "$(echo "$(date +%s.%N) - $demo_start" | bc)"
