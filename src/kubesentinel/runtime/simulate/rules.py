"""Facts from the rules files: each rule's name, priority, tags and output template.

falcosecurity/rules falco_rules.yaml, falco-incubating_rules.yaml, falco-sandbox_rules.yaml and
falcosecurity/plugins k8saudit k8s_audit_rules.yaml. Nothing is read at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Most syscall outputs end with the same process fields; they are spelled once here.
_PROC: Final = (
    "evt_type=%evt.type user=%user.name user_uid=%user.uid user_loginuid=%user.loginuid "
    "process=%proc.name proc_exepath=%proc.exepath parent=%proc.pname command=%proc.cmdline "
    "terminal=%proc.tty"
)
_EXE: Final = _PROC + " exe_flags=%evt.arg.flags"
_NET: Final = (
    "connection=%fd.name lport=%fd.lport rport=%fd.rport fd_type=%fd.type fd_proto=%fd.l4proto "
)
_ANCESTORS: Final = "gparent=%proc.aname[2] ggparent=%proc.aname[3] gggparent=%proc.aname[4] "


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    priority: str  # as the rules file spells it
    tags: tuple[str, ...]
    output: str
    source: str = "syscall"


def _rule(name: str, priority: str, tags: str, output: str, source: str = "syscall") -> Rule:
    return Rule(name, priority, tuple(tags.split()), output, source)


# fmt: off
RULES: Final = {r.name: r for r in (
    _rule("Terminal shell in container", "NOTICE",
          "maturity_stable container shell mitre_execution T1059",
          f"A shell was spawned in a container with an attached terminal | {_EXE}"),
    _rule("Run shell untrusted", "NOTICE",
          "maturity_stable host container process shell mitre_execution T1059.004",
          "Shell spawned by untrusted binary | parent_exe=%proc.pexe parent_exepath=%proc.pexepath "
          "pcmdline=%proc.pcmdline gparent=%proc.aname[2] ggparent=%proc.aname[3] "
          "aname[4]=%proc.aname[4] aname[5]=%proc.aname[5] aname[6]=%proc.aname[6] "
          f"aname[7]=%proc.aname[7] {_EXE}"),
    _rule("Read sensitive file untrusted", "WARNING",
          "maturity_stable host container filesystem mitre_credential_access T1555",
          "Sensitive file opened for reading by non-trusted program | file=%fd.name "
          f"{_ANCESTORS}{_PROC}"),
    _rule("Contact K8S API Server From Container", "NOTICE",
          "maturity_stable container network k8s mitre_discovery T1565",
          f"Unexpected connection to K8s API Server from container | {_NET}{_PROC}"),
    _rule("Redirect STDOUT/STDIN to Network Connection in Container", "NOTICE",
          "maturity_stable container network process mitre_execution T1059",
          f"Redirect stdout/stdin to network connection | {_ANCESTORS}fd.sip=%fd.sip "
          f"{_NET}{_PROC}"),
    _rule("Search Private Keys or Passwords", "WARNING",
          "maturity_stable host container process filesystem mitre_credential_access T1552.001",
          f"Grep private keys or passwords activities found | {_EXE}"),
    _rule("Detect release_agent File Container Escapes", "CRITICAL",
          "maturity_stable container process mitre_privilege_escalation T1611",
          "Detect an attempt to exploit a container escape using release_agent file | "
          f"file=%fd.name cap_effective=%thread.cap_effective {_PROC}"),
    _rule("Drop and execute new binary in container", "CRITICAL",
          "maturity_stable container process mitre_persistence TA0003 PCI_DSS_11.5.1",
          "Executing binary not part of base image | proc_exe=%proc.exe proc_sname=%proc.sname "
          "gparent=%proc.aname[2] proc_exe_ino_ctime=%proc.exe_ino.ctime "
          "proc_exe_ino_mtime=%proc.exe_ino.mtime "
          "proc_exe_ino_ctime_duration_proc_start=%proc.exe_ino.ctime_duration_proc_start "
          f"proc_cwd=%proc.cwd container_start_ts=%container.start_ts {_EXE}"),
    _rule("DB program spawned process", "NOTICE",
          "maturity_incubating host container process database mitre_execution T1190",
          f"Database-related program spawned process other than itself | {_EXE}"),
    _rule("Contact cloud metadata service from container", "NOTICE",
          "maturity_incubating network container mitre_discovery T1565",
          f"Outbound connection to cloud instance metadata service | {_NET}{_PROC}"),
    _rule("Launch Package Management Process in Container", "ERROR",
          "maturity_incubating container process software_mgmt mitre_persistence T1505",
          f"Package management process launched in container | {_EXE}"),
    _rule("Launch Remote File Copy Tools in Container", "NOTICE",
          "maturity_incubating container network process mitre_exfiltration T1020",
          f"Remote file copy tool launched in container | {_EXE}"),
    _rule("Launch Ingress Remote File Copy Tools in Container", "NOTICE",
          "maturity_incubating container network process mitre_command_and_control TA0011",
          f"Ingress remote file copy tool launched in container | {_EXE}"),
    _rule("Mount Launched in Privileged Container", "WARNING",
          "maturity_incubating container cis filesystem mitre_privilege_escalation T1611",
          f"Mount was executed inside a privileged container | {_EXE}"),
    _rule("Exfiltrating Artifacts via Kubernetes Control Plane", "NOTICE",
          "maturity_incubating container filesystem mitre_exfiltration TA0010",
          f"Exfiltrating Artifacts via Kubernetes Control Plane | file=%fd.name {_PROC}"),
    _rule("Detect crypto miners using the Stratum protocol", "CRITICAL",
          "maturity_sandbox host container process mitre_impact T1496",
          f"Possible miner running | {_EXE}"),
    _rule("Attach/Exec Pod", "NOTICE", "k8s",
          "Attach/Exec to pod (user=%ka.user.name pod=%ka.target.name resource=%ka.target.resource "
          "ns=%ka.target.namespace action=%ka.target.subresource command=%ka.uri.param[command])",
          "k8s_audit"),
    _rule("Disallowed K8s User", "WARNING", "k8s",
          "K8s Operation performed by user not in allowed list of users (user=%ka.user.name "
          "target=%ka.target.name/%ka.target.resource verb=%ka.verb uri=%ka.uri "
          "resp=%ka.response.code)",
          "k8s_audit"),
)}
# fmt: on

# Falco's default falco.yaml (0.41+) appends this to every syscall rule's output.
APPEND_SYSCALL: Final = (
    "container_id=%container.id container_name=%container.name "
    "container_image_repository=%container.image.repository "
    "container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name"
)
FIELD: Final = re.compile(r"%([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+(?:\[[^\]]*\])?)")
